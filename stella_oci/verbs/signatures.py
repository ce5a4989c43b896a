"""Signature checks for pull and verify (``--trust-root``, ``--require-signature``).

:func:`signature_check` builds the :data:`~stella_oci.verbs.pull.ExtraCheck` that pull and
verify run once the manifest and export.json passed their own checks, before any other blob
moves. It gathers everything signature-shaped that travels with the export:

* the manifest's layers: DSSE envelopes (``*.dsse.json``, ``application/vnd.dsse.envelope.v1+json``),
  provenance.json (``application/vnd.in-toto+json``) and Sigstore bundles
  (``signatures/*.sigstore.json``, ``application/vnd.dev.sigstore.bundle.v0.3+json``);
* the subject's referrers of artifactType ``application/vnd.dsse.envelope.v1+json`` (envelopes),
  ``application/vnd.in-toto+json`` (provenance Statements) and
  ``application/vnd.dev.sigstore.bundle.v0.3+json`` (cosign ``--new-bundle-format``), from the
  referrers API, the ``sha256-<hex>`` fallback tag, or the OCI layout / archive;
* for a bundle directory: the files beside export.json (``*.dsse.json``, ``signatures/**``,
  provenance.json);

fetches each (at most :data:`~stella_oci.signing.dsse.MAX_ENVELOPE_BYTES`, verified against
its descriptor's digest and size while it streams) and hands them to
:func:`~stella_oci.signing.verify.verify_export_signatures`. Keys come only from the trust
root file or directory (PEM keys, and/or a Sigstore ``trusted_root.json``): nothing is fetched
to find a key, a certificate or a log entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.annotations import DSSE_MEDIA_TYPE, IN_TOTO_MEDIA_TYPE
from stella_oci.oci.manifest import Descriptor, parse_manifest
from stella_oci.results import SignatureSourceInfo, SignaturesResult
from stella_oci.signing.dsse import MAX_ENVELOPE_BYTES
from stella_oci.signing.models import ProvenanceResult, SignatureReport
from stella_oci.signing.sigstore_bundles import (
    SIGSTORE_BUNDLE_MEDIA_TYPE,
    SIGSTORE_BUNDLE_MEDIA_TYPES,
    SIGSTORE_BUNDLE_SUFFIX,
    SigstoreTrust,
    find_trusted_root,
    is_sigstore_bundle_media_type,
)
from stella_oci.signing.trust import TRUST_ROOT_SUFFIXES, TrustRoot
from stella_oci.signing.verify import (
    verify_bundle_signatures,
    verify_export_signatures,
)
from stella_oci.targets.base import BlobFetcher
from stella_oci.targets.verified import read_blob, read_manifest
from stella_oci.verbs.pull import ExtraCheck, FetchedExport

#: Referrers (of one artifactType) looked at, at most; more is refused as a flood.
MAX_SIGNATURE_REFERRERS = 256
PROVENANCE_TITLE = "provenance.json"


@dataclass
class SignatureSource:
    """Where one checked document came from."""

    name: str
    """The name used in the report and in error messages."""
    kind: str
    """``envelope``, ``provenance`` or ``sigstore`` (a Sigstore bundle)."""
    found_as: list[str]
    """``layer <title>`` and/or ``referrer <digest>``."""
    digest: str


@dataclass
class SignatureMaterial:
    """The signature documents of one export, each once (deduplicated by blob digest)."""

    envelopes: list[tuple[str, bytes]] = field(default_factory=list)
    provenance: list[tuple[str, bytes]] = field(default_factory=list)
    sigstore_bundles: list[tuple[str, bytes]] = field(default_factory=list)
    sources: list[SignatureSource] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Referrer entries that were listed but are not about this subject."""
    _by_digest: dict[str, SignatureSource] = field(default_factory=dict)

    def add(self, kind: str, name: str, digest: str, found_as: str, data: bytes | None) -> None:
        known = self._by_digest.get(digest)
        if known is not None:
            known.found_as.append(found_as)
            return
        if data is None:
            return
        src = SignatureSource(name=name, kind=kind, found_as=[found_as], digest=digest)
        self._by_digest[digest] = src
        self.sources.append(src)
        found = {"envelope": self.envelopes, "provenance": self.provenance, "sigstore": self.sigstore_bundles}
        found[kind].append((name, data))


def read_small_blob(src: BlobFetcher, desc: Descriptor, what: str, limit: int = MAX_ENVELOPE_BYTES) -> bytes:
    """A signature document: at most ``limit`` bytes (checked from the descriptor before any
    byte is read), verified against ``desc`` through the one verifying reader."""
    return read_blob(src, desc, limit=limit, what=f"{what} ({desc.digest})")


def _is_envelope_layer(d: Descriptor) -> bool:
    title = d.title or ""
    return d.media_type == DSSE_MEDIA_TYPE or title.endswith(".dsse.json")


def _is_sigstore_layer(d: Descriptor) -> bool:
    return is_sigstore_bundle_media_type(d.media_type) or (d.title or "").endswith(SIGSTORE_BUNDLE_SUFFIX)


def _is_provenance_layer(d: Descriptor) -> bool:
    return d.title == PROVENANCE_TITLE


def gather_signature_material(f: FetchedExport) -> SignatureMaterial:
    """Every DSSE envelope and provenance statement of the export in ``f.src``: layers first,
    then the subject's referrers (each blob fetched once, bounded and digest-verified)."""
    if f.src is None:
        raise InvalidInputError("gather_signature_material needs a source target (not a bundle directory)")
    src = f.src
    m = SignatureMaterial()
    for layer in f.manifest.layers:
        if _is_provenance_layer(layer):
            kind = "provenance"
        elif _is_sigstore_layer(layer):
            kind = "sigstore"
        elif _is_envelope_layer(layer):
            kind = "envelope"
        else:
            continue
        title = layer.title or layer.digest
        data = read_small_blob(src, layer, f"layer {title}")
        m.add(kind, title, layer.digest, f"layer {title}", data)

    from stella_oci.verbs.referrers import list_referrers

    _, listed = list_referrers(src, f.desc)  # one listing (API or fallback tag), filtered here
    kinds = (
        (DSSE_MEDIA_TYPE, "envelope"),
        (IN_TOTO_MEDIA_TYPE, "provenance"),
        (SIGSTORE_BUNDLE_MEDIA_TYPE, "sigstore"),
    )
    for artifact_type, kind in kinds:
        types = SIGSTORE_BUNDLE_MEDIA_TYPES if kind == "sigstore" else (artifact_type,)
        found = [d for d in listed if d.artifact_type in types]
        if len(found) > MAX_SIGNATURE_REFERRERS:
            raise VerificationError(
                f"{src.name}@{f.desc.digest}: {len(found)} referrers of type {artifact_type}, more than "
                f"the {MAX_SIGNATURE_REFERRERS} looked at",
                hint="remove stale referrers from the registry (or the sha256-<hex> fallback tag)",
            )
        for ref_desc in found:
            where = f"referrer {ref_desc.digest}"
            data = read_manifest(src, ref_desc, what=where)
            manifest = parse_manifest(data, where)
            if manifest.subject is None or manifest.subject.digest != f.desc.digest:
                m.ignored.append(
                    f"{where}: listed as a referrer of {f.desc.digest} but its subject is "
                    f"{manifest.subject.digest if manifest.subject else 'absent'}"
                )
                continue
            if (manifest.artifact_type or manifest.config.media_type) not in types:
                m.ignored.append(f"{where}: listed as {artifact_type} but is {manifest.artifact_type}")
                continue
            for layer in manifest.layers:
                title = layer.title or layer.digest
                name = f"referrer {ref_desc.digest} ({title})"
                blob = (
                    None
                    if layer.digest in m._by_digest
                    else read_small_blob(src, layer, f"referrer {ref_desc.digest} layer {title}")
                )
                m.add(kind, name, layer.digest, f"referrer {ref_desc.digest}", blob)
    return m


def _prefixed(exc: VerificationError, where: str) -> VerificationError:
    return VerificationError(f"{where}: {exc.message}", hint=exc.hint, details=exc.details)


def verify_fetched_signatures(
    f: FetchedExport, trust_root: TrustRoot | None, require: bool, sigstore: SigstoreTrust | None = None
) -> SignaturesResult:
    """Gather and verify the export's signatures; the report (the result's ``signatures``)."""
    if f.export_json is None:
        raise InvalidInputError("signature check: export.json was not fetched")
    if f.src is None:
        local = verify_bundle_signatures(
            f.export_json.parent, trust_root=trust_root, require=require, sigstore=sigstore
        )
        return SignaturesResult.of(local, verified_count=local.verified_count)

    material = gather_signature_material(f)
    export_json = f.export_json.read_bytes()  # parsed whole before (at most 64 MiB)
    first_prov = material.provenance[0] if material.provenance else None
    try:
        report: SignatureReport = verify_export_signatures(
            export_json=export_json,
            envelopes=material.envelopes,
            provenance=first_prov[1] if first_prov else None,
            trust_root=trust_root,
            require=require,
            sigstore_bundles=material.sigstore_bundles,
            sigstore=sigstore,
            manifest_digest=f.desc.digest,
        )
    except VerificationError as exc:
        # provenance problems are reported as "provenance.json: ...": name a referrer instead
        if first_prov and first_prov[0] != PROVENANCE_TITLE and exc.message.startswith(PROVENANCE_TITLE):
            raise _prefixed(exc, first_prov[0]) from None
        raise
    extra_prov: list[ProvenanceResult] = []
    for name, data in material.provenance[1:]:
        try:
            more = verify_export_signatures(
                export_json=export_json, envelopes=[], provenance=data, trust_root=trust_root, require=False
            )
        except VerificationError as exc:
            raise _prefixed(exc, name) from None
        if more.provenance is not None:
            extra_prov.append(more.provenance.model_copy(update={"name": name}))
    provenance = report.provenance
    if provenance is not None and first_prov is not None:
        provenance = provenance.model_copy(update={"name": first_prov[0]})
    return SignaturesResult.of(
        report,
        provenance=provenance,
        verified_count=report.verified_count
        + sum(1 for p in extra_prov if p.envelope is not None and p.envelope.verified),
        additional_provenance=extra_prov,
        sources=[
            SignatureSourceInfo(name=s.name, kind=s.kind, digest=s.digest, found_as=list(s.found_as))
            for s in material.sources
        ],
        ignored_referrers=list(material.ignored),
    )


def load_trust(
    trust_root: Path, *, identity: str | None = None, issuer: str | None = None
) -> tuple[TrustRoot, SigstoreTrust | None]:
    """The keys and the Sigstore trusted root a ``--trust-root`` names: a PEM file (keys), a
    ``trusted_root.json`` (Sigstore; no keys), or a directory of PEM keys with or without a
    ``trusted_root.json``. Exit 2 for a bad one, and for a Sigstore root without identity and
    issuer, or identity / issuer without a Sigstore root."""
    path = Path(trust_root)
    sigstore_file = find_trusted_root(path)
    if sigstore_file is None:
        if identity or issuer:
            raise InvalidInputError(
                f"--certificate-identity / --certificate-oidc-issuer apply to a Sigstore trusted root, and "
                f"the trust root {path} holds none (no trusted_root.json)",
                hint="give --trust-root trusted_root.json (or a directory holding it), or drop those flags",
            )
        return TrustRoot.load(path), None
    sigstore = SigstoreTrust.load(sigstore_file, identity=identity, issuer=issuer)
    has_keys = path.is_dir() and any(
        p.is_file() and p.suffix.lower() in TRUST_ROOT_SUFFIXES for p in path.iterdir()
    )
    keys = TrustRoot.load(path) if has_keys else TrustRoot((), source=str(path))
    return keys, sigstore


def signature_check(
    trust_root: Path | None, require: bool, *, identity: str | None = None, issuer: str | None = None
) -> ExtraCheck:
    """The pull / verify hook for ``--trust-root`` / ``--require-signature`` (and, with a Sigstore
    trusted root, ``--certificate-identity`` / ``--certificate-oidc-issuer``).

    The trust root (a PEM file or a directory of them, a Sigstore ``trusted_root.json``, or a
    directory holding both) is loaded now, so a bad one fails (exit 2) before anything is
    fetched. ``require`` without a trust root is exit 2. The returned check raises
    VerificationError (exit 3) naming the document and the failed check, and otherwise returns
    ``{"signatures": report}`` for the result.
    """
    if require and trust_root is None:
        raise InvalidInputError(
            "--require-signature needs --trust-root: without trusted keys no signature can be verified",
            hint="give --trust-root FILE-or-DIR with the signers' public keys (PEM) or a Sigstore trusted_root.json",
        )
    if trust_root is None and (identity or issuer):
        raise InvalidInputError(
            "--certificate-identity / --certificate-oidc-issuer need --trust-root with a Sigstore trusted root",
            hint="give --trust-root trusted_root.json",
        )
    root, sigstore = (
        load_trust(Path(trust_root), identity=identity, issuer=issuer) if trust_root is not None else (None, None)
    )

    def check(f: FetchedExport) -> dict[str, Any]:
        from stella_oci.verbs.pull import CHECK_SIGNATURES

        return {
            "signatures": verify_fetched_signatures(f, root, require, sigstore),
            "checks": [CHECK_SIGNATURES],
        }

    return check


__all__ = [
    "SignatureMaterial",
    "SignatureSource",
    "gather_signature_material",
    "load_trust",
    "read_small_blob",
    "signature_check",
    "verify_fetched_signatures",
]
