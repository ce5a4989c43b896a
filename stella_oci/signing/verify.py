"""Offline verification of DSSE signatures over an export, against a local trust root only.

Two entry points:

* :func:`verify_envelope`: one envelope against a trust root: at least one of its signatures
  must verify, over the DSSE v1 PAE, with a trusted key (picked by ``keyid`` when the keyid
  names one, else every trusted key is tried).
* :func:`verify_export_signatures`: everything signature-shaped that travels with an export:
  the ``*.dsse.json`` envelopes, ``provenance.json`` (bare in-toto Statement or a DSSE envelope
  around one) and the ``integrity.httpHeaders`` ``Digest`` / ``X-Stella-Signature`` values of
  export.json. Each must *bind* to export.json, i.e. say something about these very bytes.

Every failure is a :class:`~stella_oci.errors.VerificationError` (exit 3) whose message names
the file and the check that failed. Nothing is ever fetched: no key server, no transparency
log, no certificate chain.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.bundle import is_signature_path
from stella_oci.export.canonical import manifest_digest
from stella_oci.export.models import ExportManifest
from stella_oci.jsonio import load_json
from stella_oci.signing.dsse import (
    MAX_ENVELOPE_BYTES,
    PAYLOAD_TYPE_EXPORT_MANIFEST,
    PAYLOAD_TYPE_IN_TOTO,
    Envelope,
    b64decode_any,
    envelope_from_json,
    looks_like_envelope,
    parse_envelope,
)
from stella_oci.signing.models import (
    PROVENANCE_JSON,
    EnvelopeResult,
    ProvenanceResult,
    SignatureReport,
    SigstoreBundleResult,
    VerifiedEnvelope,
)
from stella_oci.signing.trust import TrustRoot

if TYPE_CHECKING:
    from stella_oci.signing.sigstore_bundles import SigstoreTrust

EXPORT_JSON = "export.json"
#: Sigstore bundles carried in a bundle directory: ``signatures/**/*.sigstore.json``.
SIGSTORE_BUNDLE_SUFFIX = ".sigstore.json"
DIGEST_HEADER = "Digest"
SIGNATURE_HEADER = "X-Stella-Signature"
DIGEST_HEADER_PREFIX = "sha-256="
SIGNATURE_HEADER_PREFIX = "dsse-b64="
IN_TOTO_STATEMENT_TYPE_PREFIX = "https://in-toto.io/Statement/"


# ---------------------------------------------------------------------------------------------
# one envelope


def verify_envelope(envelope_bytes: bytes, trust_root: TrustRoot, *, source: str) -> VerifiedEnvelope:
    """Parse a DSSE envelope and verify it with ``trust_root``; raise VerificationError naming
    ``source`` and the check that failed."""
    return _verify_parsed(parse_envelope(envelope_bytes, source=source), trust_root, source=source)


def _verify_parsed(env: Envelope, trust_root: TrustRoot, *, source: str) -> VerifiedEnvelope:
    if not len(trust_root):
        raise VerificationError(
            f"{source}: the trust root {trust_root.source} holds no key",
            hint="give a trust root with at least one public key (a Sigstore trusted_root.json verifies "
            "Sigstore bundles only: put the PEM keys beside it in one directory)",
        )
    message = env.pae()
    problems: list[str] = []
    for index, sig in enumerate(env.signatures):
        named = trust_root.select(sig.keyid) if sig.keyid else []
        candidates = named or list(trust_root.keys)
        for key in candidates:
            if key.verify(sig.sig, message):
                return VerifiedEnvelope(
                    source=source,
                    payload_type=env.payload_type,
                    payload=env.payload,
                    key_id=key.key_id,
                    key_name=key.name,
                    signature_index=index,
                )
        label = f"signatures[{index}]" if len(env.signatures) > 1 else "signature"
        if named:
            problems.append(
                f"{label} does not verify with trusted key {sig.keyid!r} "
                f"({', '.join(k.name for k in named)}) named by its keyid"
            )
        elif sig.keyid:
            problems.append(
                f"{label} by key {sig.keyid!r} not in the trust root "
                f"(and it verifies with none of its {len(trust_root)} keys)"
            )
        else:
            problems.append(
                f"{label} does not verify with any trusted key "
                f"(tried all {len(trust_root)} keys of {trust_root.source})"
            )
    raise VerificationError(
        f"{source}: " + "; ".join(problems),
        hint="the envelope or its payload was altered, or it was signed by a key that is not in the trust "
        "root; add the signer's public key to the trust root only if you trust it",
        details={"trustRoot": trust_root.key_ids},
    )


# ---------------------------------------------------------------------------------------------
# binding payloads to export.json


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_digest_hex(doc: dict[str, Any]) -> str:
    """hex SHA-256 of the JCS form of export.json without ``integrity`` (CONTRACT section 2)."""
    value = manifest_digest(doc)
    return value.split(":", 1)[1] if value.startswith("sha256:") else value


def parse_statement(payload: bytes, *, source: str) -> dict[str, Any]:
    """Parse an in-toto Statement (v0.1 or v1) far enough to read its subjects."""
    try:
        doc = load_json(payload, f"{source}: in-toto Statement", error=VerificationError)
    except VerificationError as exc:
        raise VerificationError(f"{source}: in-toto Statement is not valid JSON ({exc.message})") from None
    if not isinstance(doc, dict):
        raise VerificationError(f"{source}: in-toto Statement must be a JSON object")
    stype = doc.get("_type")
    if not isinstance(stype, str) or not stype.startswith(IN_TOTO_STATEMENT_TYPE_PREFIX):
        raise VerificationError(
            f"{source}: not an in-toto Statement: _type is {stype!r}, expected "
            f"{IN_TOTO_STATEMENT_TYPE_PREFIX}v1 (or v0.1)"
        )
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError(f"{source}: in-toto Statement has no subject list")
    for i, subject in enumerate(subjects):
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            raise VerificationError(f"{source}: in-toto Statement subject[{i}] has no digest object")
    return doc


def _is_export_json_name(name: object) -> bool:
    return isinstance(name, str) and (name == EXPORT_JSON or name.endswith("/" + EXPORT_JSON))


def _subject_sha256(subject: dict[str, Any]) -> str | None:
    value = subject.get("digest", {}).get("sha256")
    return value.lower() if isinstance(value, str) else None


def _check_statement_binds(
    statement: dict[str, Any], *, source: str, what: str, accepted: Mapping[str, str], export_hex: str
) -> tuple[str, str]:
    """The Statement names export.json with an accepted sha256; return its subject name and the
    description of the digest it matched.

    ``accepted`` maps an acceptable hex digest to a description of it."""
    named = [s for s in statement["subject"] if _is_export_json_name(s.get("name"))]
    if not named:
        names = [s.get("name") for s in statement["subject"]]
        raise VerificationError(
            f"{source}: {what} names no export.json subject (subjects: {names})",
            hint="the Statement must list export.json with its sha256 digest",
        )
    for subject in named:
        digest = _subject_sha256(subject)
        if digest is not None and digest in accepted:
            return str(subject["name"]), accepted[digest]
    digest = _subject_sha256(named[0])
    if digest is None:
        raise VerificationError(f"{source}: {what} subject {named[0]['name']} has no sha256 digest")
    raise VerificationError(
        f"{source}: {what} subject {named[0]['name']} has sha256 {digest}, "
        f"export.json hashes to {export_hex}"
        + "".join(f" ({desc} {hx})" for hx, desc in accepted.items() if hx != export_hex),
        hint="the signature or provenance belongs to another export.json, or export.json was altered",
    )


def _check_other_subjects(
    statement: dict[str, Any], contents: Mapping[str, str], *, source: str
) -> list[str]:
    """Subjects that name a file listed in export.json contents must carry its digest."""
    checked: list[str] = []
    for subject in statement["subject"]:
        name = subject.get("name")
        if not isinstance(name, str) or _is_export_json_name(name):
            continue
        path = name[2:] if name.startswith("./") else name
        if path not in contents:
            continue
        want = contents[path]
        got = _subject_sha256(subject)
        if got is None:
            raise VerificationError(f"{source}: subject {name} has no sha256 digest")
        if got != want:
            raise VerificationError(
                f"{source}: subject {name} has sha256 {got}, export.json contents lists {want}",
                hint="provenance.json describes other bytes than this export",
            )
        checked.append(path)
    return checked


def _binding(
    env: Envelope,
    *,
    source: str,
    export_json: bytes,
    export_hex: str,
    canonical_hex: str | None,
    contents: Mapping[str, str],
) -> str:
    """Check that the envelope's payload binds to export.json; return how.

    ``canonical_hex`` (the manifest digest) is given for the X-Stella-Signature envelope only:
    it lives inside export.json, so it cannot sign export.json's exact bytes and signs the
    canonical manifest (export.json without ``integrity``) instead."""
    if env.payload_type == PAYLOAD_TYPE_EXPORT_MANIFEST:
        if env.payload == export_json:
            return "payload is export.json"
        if canonical_hex is not None:
            try:
                other = load_json(env.payload, "DSSE payload", error=VerificationError)
                if isinstance(other, dict) and _manifest_digest_hex(other) == canonical_hex:
                    return "payload has export.json's manifest digest"
            except VerificationError:
                pass
        raise VerificationError(
            f"{source}: payload ({PAYLOAD_TYPE_EXPORT_MANIFEST}) is not export.json: it hashes to sha256 "
            f"{_sha256_hex(env.payload)}, export.json hashes to {export_hex}"
            + (f" (manifest digest {canonical_hex})" if canonical_hex else ""),
            hint="the envelope signs another export.json, or export.json was altered after signing",
        )
    if env.payload_type == PAYLOAD_TYPE_IN_TOTO:
        statement = parse_statement(env.payload, source=source)
        accepted = {export_hex: "export.json bytes"}
        if canonical_hex is not None:
            accepted.setdefault(canonical_hex, "manifest digest")
        name, how = _check_statement_binds(
            statement, source=source, what="in-toto Statement", accepted=accepted, export_hex=export_hex
        )
        _check_other_subjects(statement, contents, source=source)
        return f"in-toto subject {name} ({how})"
    raise VerificationError(
        f"{source}: payloadType {env.payload_type!r} is not one stella-oci understands",
        hint=f"sign export.json as {PAYLOAD_TYPE_EXPORT_MANIFEST} or an in-toto Statement "
        f"({PAYLOAD_TYPE_IN_TOTO}) naming export.json",
    )


def _check_envelope(
    env: Envelope,
    *,
    name: str,
    trust_root: TrustRoot | None,
    export_json: bytes,
    export_hex: str,
    canonical_hex: str | None,
    contents: Mapping[str, str],
) -> EnvelopeResult:
    key_id = key_name = None
    if trust_root is not None:
        verified = _verify_parsed(env, trust_root, source=name)
        key_id, key_name = verified.key_id, verified.key_name
    binding = _binding(
        env,
        source=name,
        export_json=export_json,
        export_hex=export_hex,
        canonical_hex=canonical_hex,
        contents=contents,
    )
    return EnvelopeResult(
        name=name,
        payload_type=env.payload_type,
        key_id=key_id,
        key_name=key_name,
        keyid_hints=[s.keyid for s in env.signatures if s.keyid],
        verified=key_id is not None,
        binds_to_export=True,
        binding=binding,
        status="verified" if key_id is not None else "unverified",
    )


# ---------------------------------------------------------------------------------------------
# the whole export


def _contents_digests(export: ExportManifest) -> dict[str, str]:
    """export.json ``contents``: path -> hex sha256."""
    return {entry.path: entry.digest.split(":", 1)[1] for entry in export.contents}


def _check_provenance(
    provenance: bytes,
    *,
    trust_root: TrustRoot | None,
    export_json: bytes,
    export_hex: str,
    contents: Mapping[str, str],
) -> ProvenanceResult:
    source = PROVENANCE_JSON
    try:
        doc = load_json(provenance, source, error=VerificationError)
    except VerificationError as exc:
        raise VerificationError(f"{source}: not valid JSON ({exc.message})") from None
    envelope_result: EnvelopeResult | None = None
    if looks_like_envelope(doc):
        env = envelope_from_json(doc, source=source)
        if env.payload_type != PAYLOAD_TYPE_IN_TOTO:
            raise VerificationError(
                f"{source}: DSSE payloadType is {env.payload_type!r}, "
                f"provenance must be an in-toto Statement ({PAYLOAD_TYPE_IN_TOTO})"
            )
        key_id = key_name = None
        if trust_root is not None:
            verified = _verify_parsed(env, trust_root, source=source)
            key_id, key_name = verified.key_id, verified.key_name
        statement_bytes = env.payload
        envelope_result = EnvelopeResult(
            name=source,
            payload_type=env.payload_type,
            key_id=key_id,
            key_name=key_name,
            keyid_hints=[s.keyid for s in env.signatures if s.keyid],
            verified=key_id is not None,
            binds_to_export=True,
            binding="in-toto subject export.json",
            status="verified" if key_id is not None else "unverified",
        )
    else:
        statement_bytes = provenance
    statement = parse_statement(statement_bytes, source=source)
    name, _ = _check_statement_binds(
        statement,
        source=source,
        what="provenance",
        accepted={export_hex: "export.json bytes"},
        export_hex=export_hex,
    )
    if envelope_result is not None:
        envelope_result = envelope_result.model_copy(update={"binding": f"in-toto subject {name}"})
    checked = _check_other_subjects(statement, contents, source=source)
    predicate_type = statement.get("predicateType")
    return ProvenanceResult(
        enveloped=envelope_result is not None,
        predicate_type=predicate_type if isinstance(predicate_type, str) else None,
        export_json_subject=name,
        subjects_checked=checked,
        envelope=envelope_result,
    )


def _check_headers(
    export: ExportManifest, *, trust_root: TrustRoot | None, export_json: bytes, export_hex: str
) -> tuple[str | None, EnvelopeResult | None, str | None]:
    headers = export.integrity.http_headers if export.integrity else None
    if headers is None:
        return None, None, None
    where = f"{EXPORT_JSON} integrity.httpHeaders"
    digest_value: str | None = headers.digest
    sig_value: str | None = headers.x_stella_signature
    canonical_hex = export.manifest_digest.split(":", 1)[1]
    if digest_value is not None:
        expected = DIGEST_HEADER_PREFIX + base64.b64encode(bytes.fromhex(canonical_hex)).decode("ascii")
        if digest_value != expected:
            raise VerificationError(
                f"{where}.{DIGEST_HEADER} is {digest_value!r}, but the manifest digest "
                f"sha256:{canonical_hex} of export.json gives {expected!r}",
                hint="export.json was altered after its integrity block was written",
            )
    stella_sig: EnvelopeResult | None = None
    if sig_value is not None:
        name = f"{where}.{SIGNATURE_HEADER}"
        if not isinstance(sig_value, str) or not sig_value.startswith(SIGNATURE_HEADER_PREFIX):
            raise VerificationError(
                f"{name} must be '{SIGNATURE_HEADER_PREFIX}' followed by a base64 DSSE "
                f"envelope, found {str(sig_value)[:40]!r}"
            )
        raw = b64decode_any(sig_value[len(SIGNATURE_HEADER_PREFIX) :], what=name)
        env = parse_envelope(raw, source=name)
        stella_sig = _check_envelope(
            env,
            name=name,
            trust_root=trust_root,
            export_json=export_json,
            export_hex=export_hex,
            canonical_hex=canonical_hex,
            contents=_contents_digests(export),
        )
    return digest_value, stella_sig, canonical_hex


def verify_export_signatures(
    *,
    export_json: bytes,
    envelopes: Sequence[tuple[str, bytes]],
    provenance: bytes | None,
    trust_root: TrustRoot | None,
    require: bool,
    sigstore_bundles: Sequence[tuple[str, bytes]] = (),
    sigstore: SigstoreTrust | None = None,
    manifest_digest: str | None = None,
) -> SignatureReport:
    """Check every signature that travels with an export; raise VerificationError on the first
    failure.

    * each ``(name, bytes)`` envelope is parsed; with a trust root, one of its signatures must
      verify with a trusted key; its payload must bind to ``export_json`` (the exact bytes for a
      ``application/vnd.stellaops.export.manifest.v1+json`` payload, a subject ``export.json``
      with this sha256 for an in-toto Statement);
    * ``provenance`` (a Statement, or a DSSE envelope around one, verified like the others) must
      name export.json with its sha256; subjects naming files of export.json ``contents`` must
      carry their digests;
    * export.json ``integrity.httpHeaders.Digest`` must be ``sha-256=`` + base64 of the manifest
      digest; ``X-Stella-Signature`` a ``dsse-b64=`` envelope checked like the others;
    * each ``(name, bytes)`` of ``sigstore_bundles`` (cosign ``--bundle`` / ``--new-bundle-format``)
      is verified offline against ``sigstore`` (a Sigstore trusted root with the required
      certificate identity and issuer) and must sign export.json, the manifest ``manifest_digest``
      or a payload binding to export.json; without ``sigstore`` it is reported ``unverified``;
    * ``require``: a trust root must be given (else exit 2) and at least one envelope must verify.

    Without a trust root (and ``require`` False) envelopes are checked for form and binding
    only and reported as ``unverified``.
    """
    try:
        doc = load_json(export_json, EXPORT_JSON)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{EXPORT_JSON} is not valid JSON ({exc.message})") from None
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{EXPORT_JSON} must be a JSON object")
    export = ExportManifest.from_json_obj(doc, source=EXPORT_JSON)
    if require and trust_root is None and sigstore is None:
        raise InvalidInputError(
            "signatures are required but no trust root was given, so none can be verified",
            hint="give --trust-root FILE-or-DIR with the signers' public keys",
        )
    export_hex = _sha256_hex(export_json)
    digest_header, stella_sig, _ = _check_headers(
        export, trust_root=trust_root, export_json=export_json, export_hex=export_hex
    )

    results: list[EnvelopeResult] = []
    for name, data in sorted(envelopes, key=lambda item: item[0]):
        env = parse_envelope(data, source=name)
        results.append(
            _check_envelope(
                env,
                name=name,
                trust_root=trust_root,
                export_json=export_json,
                export_hex=export_hex,
                canonical_hex=None,  # bundle envelopes sign the exact export.json bytes
                contents=_contents_digests(export),
            )
        )

    prov: ProvenanceResult | None = None
    if provenance is not None:
        prov = _check_provenance(
            provenance,
            trust_root=trust_root,
            export_json=export_json,
            export_hex=export_hex,
            contents=_contents_digests(export),
        )

    bundles = _check_sigstore_bundles(
        sigstore_bundles,
        sigstore=sigstore,
        export_json=export_json,
        export_hex=export_hex,
        manifest_digest=manifest_digest,
        contents=_contents_digests(export),
    )

    report = SignatureReport(
        export_json_sha256=export_hex,
        trust_root=trust_root.key_ids if trust_root is not None else [],
        required=require,
        envelopes=results,
        provenance=prov,
        digest_header=digest_header,
        stella_signature=stella_sig,
        sigstore_bundles=bundles,
    )
    if require and report.verified_count == 0:
        raise VerificationError(
            "signatures are required, but the export carries no DSSE envelope (no *.dsse.json, no signed "
            "provenance.json, no X-Stella-Signature)"
            + (" and no Sigstore bundle" if sigstore is not None else ""),
            hint="sign export.json (e.g. cosign attest-blob / the export center signer) or drop the "
            "requirement",
        )
    return report


def _check_sigstore_bundles(
    bundles: Sequence[tuple[str, bytes]],
    *,
    sigstore: SigstoreTrust | None,
    export_json: bytes,
    export_hex: str,
    manifest_digest: str | None,
    contents: Mapping[str, str],
) -> list[SigstoreBundleResult]:
    """Each Sigstore bundle verified offline (with a Sigstore trusted root), else listed unverified."""
    results: list[SigstoreBundleResult] = []
    for name, data in sorted(bundles, key=lambda item: item[0]):
        if sigstore is None:
            results.append(SigstoreBundleResult(name=name, kind="unknown", verified=False, status="unverified"))
            continue
        from stella_oci.signing.sigstore_bundles import Binding, verify_sigstore_bundle

        def payload_binding(payload_type: str, payload: bytes, name: str = name) -> str:
            return _binding(
                Envelope(payload_type, payload, ()),
                source=name,
                export_json=export_json,
                export_hex=export_hex,
                canonical_hex=None,
                contents=contents,
            )

        bind = Binding(export_json=export_json, manifest_digest=manifest_digest, payload_binding=payload_binding)
        results.append(verify_sigstore_bundle(data, name=name, trust=sigstore, bind=bind))
    return results


def _read_capped(path: Path, limit: int, what: str) -> bytes:
    size = path.stat().st_size
    if size > limit:
        raise VerificationError(f"{what} is {size} bytes, more than the {limit} a signature file may have")
    return path.read_bytes()


def verify_bundle_signatures(
    bundle_dir: Path, *, trust_root: TrustRoot | None, require: bool, sigstore: SigstoreTrust | None = None
) -> SignatureReport:
    """:func:`verify_export_signatures` for a bundle directory on disk: reads ``export.json``,
    ``provenance.json`` when present, and the envelopes ``*.dsse.json`` at the top level and
    under ``signatures/`` (named by their bundle-relative POSIX path). Symlinks are not followed."""
    bundle_dir = Path(bundle_dir)
    export_path = bundle_dir / EXPORT_JSON
    if not export_path.is_file():
        raise InvalidInputError(f"{export_path} does not exist", hint="give a bundle directory")
    export_json = export_path.read_bytes()
    # The same rule as the bundle scan that decides what a push sends as DSSE layers.
    found = [
        p for p in bundle_dir.rglob("*.dsse.json") if is_signature_path(p.relative_to(bundle_dir).as_posix())
    ]
    envelopes: list[tuple[str, bytes]] = []
    for path in sorted(found):
        name = path.relative_to(bundle_dir).as_posix()
        if path.is_symlink() or not path.is_file():
            raise VerificationError(f"{name}: a signature file must be a regular file, not a link")
        envelopes.append((name, _read_capped(path, MAX_ENVELOPE_BYTES, name)))
    prov_path = bundle_dir / PROVENANCE_JSON
    provenance = _read_capped(prov_path, MAX_ENVELOPE_BYTES, PROVENANCE_JSON) if prov_path.is_file() else None
    sigstore_bundles: list[tuple[str, bytes]] = []
    signatures_dir = bundle_dir / "signatures"
    if signatures_dir.is_dir() and not signatures_dir.is_symlink():
        for path in sorted(signatures_dir.rglob("*" + SIGSTORE_BUNDLE_SUFFIX)):
            name = path.relative_to(bundle_dir).as_posix()
            if path.is_symlink() or not path.is_file():
                raise VerificationError(f"{name}: a signature file must be a regular file, not a link")
            sigstore_bundles.append((name, _read_capped(path, MAX_ENVELOPE_BYTES, name)))
    return verify_export_signatures(
        export_json=export_json,
        envelopes=envelopes,
        provenance=provenance,
        trust_root=trust_root,
        require=require,
        sigstore_bundles=sigstore_bundles,
        sigstore=sigstore,
    )
