"""Sigstore bundles (cosign ``--bundle`` / ``--new-bundle-format``), verified offline against a
Sigstore trusted root (``trusted_root.json``) with the ``sigstore`` library.

Nothing is fetched: the :class:`sigstore.verify.Verifier` is built from the given trusted root
file (never ``Verifier.production()``, which would refresh it over TUF), and the library's
verification path reads only the bundle: the certificate chain to a CA of the trusted root at the
log's integrated time, the embedded SCT against a CT log key of the trusted root, the
certificate's identity (SAN) and OIDC issuer against ``--certificate-identity`` /
``--certificate-oidc-issuer``, the transparency-log entry (Merkle inclusion proof, checkpoint
signed by a log key of the trusted root, signed entry timestamp), the signature over the signed
bytes, and the log entry's consistency with them.

Then the bundle must *bind* to the export: a message signature signs export.json's bytes (``cosign
sign-blob export.json``) or the OCI manifest of the export (its digest); a DSSE envelope carries
export.json itself or an in-toto Statement naming export.json (or the manifest digest, as ``cosign
sign --new-bundle-format`` writes it).

The ``sigstore`` package is imported only here, and this module only when a Sigstore trusted root
or bundle is met (start-up stays fast).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.signing.models import SigstoreBundleResult

#: cosign's referrer artifactType and layer media type for a bundle (protobuf-specs v0.3).
SIGSTORE_BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGSTORE_BUNDLE_MEDIA_TYPES = (
    SIGSTORE_BUNDLE_MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
)
#: File names of a bundle carried in an export (``signatures/export.json.sigstore.json``).
SIGSTORE_BUNDLE_SUFFIX = ".sigstore.json"
TRUSTED_ROOT_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.trustedroot+json"
TRUSTED_ROOT_FILE = "trusted_root.json"
#: A trusted root is a few KiB (Sigstore's public-good one about 8 KiB); refuse anything huge.
MAX_TRUSTED_ROOT_BYTES = 4 * 1024 * 1024
IDENTITY_FLAG = "--certificate-identity"
ISSUER_FLAG = "--certificate-oidc-issuer"


def is_sigstore_bundle_media_type(media_type: str | None) -> bool:
    return media_type in SIGSTORE_BUNDLE_MEDIA_TYPES


def read_trusted_root_json(path: Path) -> dict[str, Any] | None:
    """The parsed JSON of ``path`` when it is a Sigstore trusted root, else None (not JSON, or
    JSON of another kind). Bounded read."""
    try:
        size = path.stat().st_size
        if size > MAX_TRUSTED_ROOT_BYTES:
            return None
        with path.open("rb") as fh:
            head = fh.read(1)
            if head != b"{":
                return None
            data = head + fh.read(MAX_TRUSTED_ROOT_BYTES)
        doc = json.loads(data)
    except (OSError, ValueError):
        return None
    if isinstance(doc, dict) and str(doc.get("mediaType", "")).startswith(TRUSTED_ROOT_MEDIA_TYPE_PREFIX):
        return doc
    return None


def find_trusted_root(path: Path) -> Path | None:
    """The Sigstore trusted root a ``--trust-root`` names: the file itself, or ``trusted_root.json``
    in the directory (beside PEM keys); None when there is none."""
    path = Path(path)
    if path.is_dir():
        candidate = path / TRUSTED_ROOT_FILE
        return candidate if candidate.is_file() and read_trusted_root_json(candidate) is not None else None
    if path.is_file() and read_trusted_root_json(path) is not None:
        return path
    return None


@dataclass
class SigstoreTrust:
    """A Sigstore trusted root and the certificate identity / issuer a bundle must carry."""

    path: Path
    identity: str
    issuer: str
    _verifier: Any = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path, *, identity: str | None, issuer: str | None) -> SigstoreTrust:
        """Load ``path`` (a ``trusted_root.json``) now, so a bad one is exit 2 before anything is
        fetched. Identity and issuer are required (exit 2 naming the flags)."""
        missing = [flag for flag, value in ((IDENTITY_FLAG, identity), (ISSUER_FLAG, issuer)) if not value]
        if missing:
            raise InvalidInputError(
                f"the trust root {path} is a Sigstore trusted root: {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} required to say whose certificate to accept",
                hint=f"give {IDENTITY_FLAG} (the signer's e-mail or workflow URI, the certificate SAN) and "
                f"{ISSUER_FLAG} (e.g. https://token.actions.githubusercontent.com)",
            )
        assert identity is not None and issuer is not None
        trust = cls(Path(path), identity, issuer)
        trust.verifier()
        return trust

    def verifier(self) -> Any:
        """The ``sigstore`` Verifier built from the trusted root file alone (no TUF, no network)."""
        if self._verifier is None:
            try:
                from sigstore.errors import Error as SigstoreError
                from sigstore.models import TrustedRoot
                from sigstore.verify import Verifier
            except ImportError as exc:  # pragma: no cover - the dependency is declared
                raise InvalidInputError(
                    f"the trust root {self.path} is a Sigstore trusted root, but the sigstore library "
                    f"is not installed ({exc})",
                    hint="pip install 'stella-oci[sigstore]' (or: pip install sigstore)",
                ) from None
            try:
                root = TrustedRoot.from_file(str(self.path))
                self._verifier = Verifier(trusted_root=root)
                # read every CA certificate and log key now: a broken one is exit 2, not exit 3 later
                root.get_fulcio_certs()
                for what, keyring, listed in (
                    ("CT log", root.ct_keyring(_verify_purpose()), root._inner.ctlogs),
                    ("transparency log", root.rekor_keyring(_verify_purpose()), root._inner.tlogs),
                ):
                    # the library skips a key it cannot read (with a warning): refuse it instead
                    distinct = {log.public_key.raw_bytes for log in listed}
                    if len(getattr(keyring, "_keyring", distinct)) < len(distinct):
                        raise ValueError(f"a {what} public key cannot be read")
            except (SigstoreError, ValueError) as exc:
                raise InvalidInputError(
                    f"Sigstore trusted root {self.path} cannot be used: {exc}",
                    hint="give the trusted_root.json of your Sigstore instance (cosign trusted-root create, "
                    "or the one TUF distributes), with its CA certificates, Rekor and CT log keys",
                ) from None
        return self._verifier


def _verify_purpose() -> Any:
    from sigstore._internal.trust import KeyringPurpose

    return KeyringPurpose.VERIFY


#: sigstore's failure messages -> the check they are about (first match wins).
_CHECK_NAMES: tuple[tuple[str, str], ...] = (
    ("SANs do not match", "certificate identity does not match " + IDENTITY_FLAG),
    ("OIDCIssuer", "certificate OIDC issuer does not match " + ISSUER_FLAG),
    ("does not contain OIDCIssuer", "certificate has no OIDC issuer"),
    ("message digest mismatch", "signature is not over these bytes"),
    ("Signature is invalid", "signature does not verify over these bytes"),
    ("DSSE", "DSSE envelope signature"),
    ("inconsistent with other materials", "transparency-log entry does not match the signature"),
    ("does not match bundle", "transparency-log entry does not match the signature"),
    ("SCT", "certificate transparency (SCT) check failed"),
    ("certificate chain", "certificate does not chain to a CA of the trusted root"),
    ("expired at time of signing", "certificate was not valid when the log recorded the signature"),
    ("invalid log entry", "transparency-log entry check failed"),
    ("time", "no verified signing time (log inclusion promise)"),
)


def _check_name(message: str) -> str:
    for needle, name in _CHECK_NAMES:
        if needle in message:
            return name
    return "verification failed"


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Binding:
    """What the export offers to bind a signature to."""

    export_json: bytes
    manifest_digest: str | None = None
    """``sha256:<hex>`` of the OCI manifest the bundle refers to (None for a bundle directory)."""
    payload_binding: Callable[[str, bytes], str] | None = None
    """Checks a DSSE payload (type, bytes) binds to export.json; returns how (raises when not)."""


def verify_sigstore_bundle(
    data: bytes, *, name: str, trust: SigstoreTrust, bind: Binding
) -> SigstoreBundleResult:
    """Verify one Sigstore bundle offline and check it binds to the export; VerificationError
    (exit 3) naming ``name`` and the failed check otherwise."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import policy

    try:
        bundle = Bundle.from_json(data)
    except (SigstoreError, ValueError) as exc:
        raise VerificationError(
            f"{name}: not a valid Sigstore bundle ({exc})",
            hint="a Sigstore bundle v0.3 JSON, as cosign writes with --bundle --new-bundle-format",
        ) from None
    wanted = policy.Identity(identity=trust.identity, issuer=trust.issuer)
    verifier = trust.verifier()
    try:
        if bundle._inner.message_signature is not None:
            kind = "messageSignature"
            signed, binding = _message_input(bundle, name=name, bind=bind)
            verifier.verify_artifact(signed, bundle, wanted)
        else:
            kind = "dsse"
            payload_type, payload = verifier.verify_dsse(bundle, wanted)
            binding = _dsse_binding(payload_type, payload, name=name, bind=bind)
    except SigstoreError as exc:
        message = str(exc)
        raise VerificationError(
            f"{name}: Sigstore bundle does not verify: {_check_name(message)}: {message}",
            hint=f"the bundle, its certificate or the signed bytes were altered, or it was signed by another "
            f"identity than {trust.identity} (issuer {trust.issuer}) or under another Sigstore instance than "
            f"{trust.path}",
            details={"identity": trust.identity, "issuer": trust.issuer},
        ) from None
    entry = bundle.log_entry._inner
    return SigstoreBundleResult(
        name=name,
        kind=kind,
        identity=trust.identity,
        issuer=trust.issuer,
        log_index=int(entry.log_index),
        integrated_time=int(entry.integrated_time) if entry.integrated_time else None,
        binding=binding,
        verified=True,
        status="verified",
    )


def _message_input(bundle: Any, *, name: str, bind: Binding) -> tuple[Any, str]:
    """The bytes a message signature must be over: export.json, or the OCI manifest (by digest)."""
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    export_hex = _sha256_hex(bind.export_json)
    md = bundle._inner.message_signature.message_digest
    if md is None or md.digest.hex() == export_hex:
        return bind.export_json, "message signature over export.json"
    manifest_hex = bind.manifest_digest.split(":", 1)[1] if bind.manifest_digest else None
    if manifest_hex is not None and md.digest.hex() == manifest_hex:
        return Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(manifest_hex)), (
            f"message signature over the manifest {bind.manifest_digest}"
        )
    raise VerificationError(
        f"{name}: Sigstore bundle signs sha256 {md.digest.hex()}, export.json hashes to {export_hex}"
        + (f" and the manifest is {bind.manifest_digest}" if bind.manifest_digest else ""),
        hint="the bundle signs other bytes (another export.json), or export.json was altered after signing",
    )


def _dsse_binding(payload_type: str, payload: bytes, *, name: str, bind: Binding) -> str:
    manifest_hex = bind.manifest_digest.split(":", 1)[1] if bind.manifest_digest else None
    if manifest_hex and payload_type == "application/vnd.in-toto+json":
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        subjects = doc.get("subject") if isinstance(doc, dict) else None
        for subject in subjects if isinstance(subjects, list) else []:
            digest = subject.get("digest") if isinstance(subject, dict) else None
            if isinstance(digest, dict) and str(digest.get("sha256", "")).lower() == manifest_hex:
                return f"in-toto subject {subject.get('name')} (the manifest {bind.manifest_digest})"
    if bind.payload_binding is None:  # pragma: no cover - always given by the callers
        raise VerificationError(f"{name}: cannot relate the DSSE payload to export.json")
    return bind.payload_binding(payload_type, payload)


__all__ = [
    "SIGSTORE_BUNDLE_MEDIA_TYPE",
    "SIGSTORE_BUNDLE_MEDIA_TYPES",
    "SIGSTORE_BUNDLE_SUFFIX",
    "TRUSTED_ROOT_FILE",
    "Binding",
    "SigstoreTrust",
    "find_trusted_root",
    "is_sigstore_bundle_media_type",
    "read_trusted_root_json",
    "verify_sigstore_bundle",
]
