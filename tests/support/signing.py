"""Signing, FOR TESTS AND EXAMPLES ONLY (not part of the stella_oci package).

stella-oci verifies signatures; it does not sign exports in production (the Export Center's
signer, or cosign, does). These helpers exist so that the test suite can make real envelopes
with real keys, and so that the committed examples can be (re)generated. Do not build a
release process on them: they hold private keys in memory and do nothing about key custody.

Envelope JSON is deterministic (sorted keys, compact, trailing newline), and so are the
signatures: Ed25519 by construction, ECDSA because it is signed the RFC 6979 deterministic way
where the installed ``cryptography``/OpenSSL supports it (cryptography >= 43, OpenSSL >= 3.2;
otherwise ECDSA falls back to randomized signatures, which verify the same but differ per run).
RSA PKCS#1 v1.5 is deterministic; PSS is randomized.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from stella_oci.errors import InvalidInputError
from stella_oci.export.canonical import manifest_digest
from stella_oci.signing.dsse import (
    PAYLOAD_TYPE_EXPORT_MANIFEST,
    PAYLOAD_TYPE_IN_TOTO,
    EnvelopeSignature,
    encode_envelope,
    pae,
)

IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
EXPORT_SIGNATURE_FILE = "export.json.dsse.json"
PROVENANCE_SIGNATURE_FILE = "provenance.dsse.json"
SIGNATURE_HEADER_PREFIX = "dsse-b64="
#: predicateType of the Statement inside X-Stella-Signature (made up here, for examples).
MANIFEST_DIGEST_PREDICATE = "https://stellaops.io/export-center/manifest-digest/v1"


def _load_private_key(
    private_key_pem: bytes,
) -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"cannot read the private key PEM ({type(exc).__name__})",
            hint="give an unencrypted PKCS#8 PEM private key",
        ) from exc
    if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        return key
    raise InvalidInputError(
        f"private key type {type(key).__name__} is not supported", hint="use ECDSA P-256, Ed25519 or RSA"
    )


def sign_bytes(message: bytes, private_key_pem: bytes, *, rsa_pss: bool = False) -> bytes:
    """Sign ``message``: ECDSA -> ASN.1 DER over SHA-256 (SHA-384/512 for P-384/P-521),
    Ed25519 -> raw 64 bytes, RSA -> PKCS#1 v1.5 (or PSS with ``rsa_pss``) over SHA-256."""
    key = _load_private_key(private_key_pem)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algo: hashes.HashAlgorithm = {"secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}.get(
            key.curve.name, hashes.SHA256()
        )
        try:  # RFC 6979 deterministic ECDSA (cryptography >= 43, OpenSSL >= 3.2): stable examples
            return key.sign(message, ec.ECDSA(algo, deterministic_signing=True))
        except (TypeError, UnsupportedAlgorithm):
            return key.sign(message, ec.ECDSA(algo))
    if rsa_pss:
        return key.sign(
            message,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def sign_envelope(
    payload_type: str, payload: bytes, private_key_pem: bytes, keyid: str = "", *, rsa_pss: bool = False
) -> bytes:
    """A DSSE envelope (JSON bytes) over ``payload``, signed over the DSSE v1 PAE.

    ``keyid`` "" writes an empty keyid, as cosign does."""
    sig = sign_bytes(pae(payload_type, payload), private_key_pem, rsa_pss=rsa_pss)
    return encode_envelope(payload_type, payload, [EnvelopeSignature(keyid=keyid, sig=sig)])


def in_toto_statement(subjects: Mapping[str, str], predicate_type: str, predicate: dict[str, Any]) -> bytes:
    """An in-toto Statement v1 (deterministic JSON) naming ``subjects`` (name -> sha256 hex),
    listed in name order."""
    subject_list = []
    for name in sorted(subjects):
        digest = subjects[name].lower()
        if digest.startswith("sha256:"):
            digest = digest[len("sha256:") :]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidInputError(f"subject {name}: {subjects[name]!r} is not a sha256 hex digest")
        subject_list.append({"name": name, "digest": {"sha256": digest}})
    doc = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": subject_list,
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def public_key_pem(private_key_pem: bytes) -> bytes:
    """The SubjectPublicKeyInfo PEM of a private key (what goes into a trust root)."""
    return (
        _load_private_key(private_key_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def x_stella_signature(doc: Mapping[str, Any], private_key_pem: bytes, keyid: str = "") -> str:
    """The ``integrity.httpHeaders.X-Stella-Signature`` value for an export manifest:
    ``dsse-b64=`` + base64 of a DSSE envelope over a small in-toto Statement whose subject
    ``export.json`` carries the *manifest digest* (SHA-256 of the RFC 8785 form of ``doc``
    without ``integrity``, the ``io.stellaops.export.manifest-digest`` value) rather than the
    file's digest: the header lives inside export.json, so it cannot sign the file's final bytes.
    The Statement stays a few hundred bytes whatever the size of the export, so the value fits
    in an HTTP header. FOR EXAMPLES AND TESTS ONLY.
    """
    digest = manifest_digest(dict(doc))
    statement = in_toto_statement(
        {"export.json": digest},
        MANIFEST_DIGEST_PREDICATE,
        {"manifestDigest": digest, "exportId": doc.get("exportId")},
    )
    envelope = sign_envelope(PAYLOAD_TYPE_IN_TOTO, statement, private_key_pem, keyid)
    return SIGNATURE_HEADER_PREFIX + base64.b64encode(envelope).decode("ascii")


def sign_example_bundle(bundle_dir: Path, key_pem: Path) -> list[Path]:
    """Sign an example bundle in place: write ``export.json.dsse.json`` (payload: the export.json
    bytes, payloadType ``application/vnd.stellaops.export.manifest.v1+json``) and
    ``provenance.dsse.json`` (payloadType ``application/vnd.in-toto+json``): its payload is the
    bundle's ``provenance.json`` bytes when there is one (so it must already name export.json's
    final sha256), else a Statement made here naming export.json and every ``contents`` file
    with its sha256 (predicate: SLSA provenance v1 built from export.json fields, no wall-clock
    value). Run it after export.json and provenance.json are final. Returns the paths written,
    in that order. With Ed25519 (or deterministic ECDSA) keys the output is byte-stable.
    FOR EXAMPLES AND TESTS ONLY.
    """
    bundle_dir = Path(bundle_dir)
    export_bytes = (bundle_dir / "export.json").read_bytes()
    doc = json.loads(export_bytes)
    key = Path(key_pem).read_bytes()

    provenance_file = bundle_dir / "provenance.json"
    subjects = {"export.json": hashlib.sha256(export_bytes).hexdigest()}
    for entry in doc.get("contents", []):
        subjects[entry["path"]] = entry["digest"].split(":", 1)[1]
    predicate = {
        "buildDefinition": {
            "buildType": "https://stellaops.io/export-center/export/v1",
            "externalParameters": {
                "exportId": doc.get("exportId"),
                "profile": doc.get("profile"),
                "tenant": doc.get("tenant"),
            },
            "internalParameters": {},
            "resolvedDependencies": [],
        },
        "runDetails": {
            "builder": {"id": "https://stellaops.io/export-center/EXAMPLE-ONLY"},
            "metadata": {
                "invocationId": doc.get("runId", doc.get("exportId")),
                "finishedOn": doc.get("generatedAt"),
            },
        },
    }
    if provenance_file.is_file():
        statement = provenance_file.read_bytes()
    else:
        statement = in_toto_statement(subjects, SLSA_PROVENANCE_V1, predicate)

    written = []
    target = bundle_dir / EXPORT_SIGNATURE_FILE
    target.write_bytes(sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_bytes, key))
    written.append(target)
    target = bundle_dir / PROVENANCE_SIGNATURE_FILE
    target.write_bytes(sign_envelope(PAYLOAD_TYPE_IN_TOTO, statement, key))
    written.append(target)
    return written
