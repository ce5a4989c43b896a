"""Signing with a local private key: DSSE envelopes over stella-oci's own documents (the
inventory of a ``save`` archive, a signed time anchor: ``stella-oci time-anchor sign``). Export signatures are not made here: the Export Center's
signer (or cosign) makes those; stella-oci only verifies them (:mod:`stella_oci.signing.verify`).

The key is a PEM private key of the types a trust root accepts (:mod:`stella_oci.signing.trust`):
ECDSA P-256/P-384/P-521, Ed25519, RSA of at least 2048 bits; PKCS#8 (``BEGIN PRIVATE KEY``, as
``openssl genpkey`` writes it) or the traditional ``BEGIN EC/RSA PRIVATE KEY`` forms. An
encrypted PEM is opened with the password in ``$STELLA_OCI_SIGN_KEY_PASSWORD``. The envelope's
``keyid`` is the trust root key id of the matching public key (hex SHA-256 of its DER
SubjectPublicKeyInfo), so ``verify_envelope`` picks the right key from a trust root directory.

ECDSA signatures are ASN.1 DER (as cosign writes them), RSA ones PKCS#1 v1.5 with SHA-256.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from stella_oci.errors import InvalidInputError
from stella_oci.signing.dsse import EnvelopeSignature, encode_envelope, pae
from stella_oci.signing.trust import _EC_HASHES, MAX_TRUST_FILE_BYTES, MIN_RSA_BITS, key_id_of

PASSWORD_ENV = "STELLA_OCI_SIGN_KEY_PASSWORD"  # noqa: S105 (the name of the variable)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Signer:
    """A private key and the trust root key id of its public half."""

    key_id: str
    source: str
    key: PrivateKey = field(repr=False, compare=False)

    def sign(self, message: bytes) -> bytes:
        key = self.key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(_EC_HASHES[key.curve.name]()))
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def envelope(self, payload_type: str, payload: bytes) -> bytes:
        """A DSSE envelope over ``payload`` with one signature (deterministic JSON)."""
        sig = self.sign(pae(payload_type, payload))
        return encode_envelope(payload_type, payload, [EnvelopeSignature(keyid=self.key_id, sig=sig)])


def load_signer(path: str | Path) -> Signer:
    """Read a PEM private key (exit 2 naming the file and the fix when it cannot be used)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TRUST_FILE_BYTES:
            raise InvalidInputError(f"signing key {path} is {size} bytes; a PEM private key is a few KiB")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(
            f"signing key {path} cannot be read ({exc.strerror})", hint="give a PEM private key file"
        ) from None
    password = os.environ.get(PASSWORD_ENV)
    try:
        key = serialization.load_pem_private_key(data, password=password.encode() if password else None)
    except TypeError:
        raise InvalidInputError(
            f"signing key {path} is encrypted"
            + (" and " + PASSWORD_ENV + " is set for a plain key" if password else ""),
            hint=f"put its password in ${PASSWORD_ENV}" if not password else f"unset ${PASSWORD_ENV}",
        ) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInputError(
            f"signing key {path} is not a usable PEM private key ({str(exc).splitlines()[0][:200]})",
            hint="give a PKCS#8 PEM private key (openssl genpkey -algorithm ed25519 -out KEY); a cosign "
            "key: convert it first (cosign's encrypted format is not read)",
        ) from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in _EC_HASHES:
        raise InvalidInputError(
            f"signing key {path}: ECDSA curve {key.curve.name} is not supported",
            hint="use P-256, P-384 or P-521",
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidInputError(
            f"signing key {path}: RSA key of {key.key_size} bits is too weak",
            hint=f"use at least {MIN_RSA_BITS} bits, or Ed25519 / ECDSA P-256",
        )
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise InvalidInputError(
            f"signing key {path}: key type {type(key).__name__} is not supported",
            hint="use Ed25519, ECDSA P-256 or RSA",
        )
    return Signer(key_id=key_id_of(key.public_key()), source=str(path), key=key)


__all__ = ["PASSWORD_ENV", "Signer", "load_signer"]
