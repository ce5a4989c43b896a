"""Local trust roots: the public keys a signature may verify with. Nothing is ever fetched.

A trust root is a PEM file holding one or more ``PUBLIC KEY`` blocks (SubjectPublicKeyInfo,
as ``cosign generate-key-pair`` and ``openssl pkey -pubout`` write them), ``RSA PUBLIC KEY``
(PKCS#1) blocks, or ``CERTIFICATE`` blocks (X.509: the certificate's key is taken, nothing
else of the certificate is checked for export signatures: no chain, no validity dates, no
identity; a certificate's ``notBefore``/``notAfter`` are kept as the key's validity window, which
time-anchor trust roots enforce, :mod:`stella_oci.airgap.timeanchor`), or a directory of such files (``*.pem``, ``*.pub``, ``*.crt``; not recursive; read in name order).

Key types: ECDSA on P-256 (SHA-256; also P-384 with SHA-384 and P-521 with SHA-512), Ed25519,
and RSA of at least 2048 bits (SHA-256, PKCS#1 v1.5 or PSS).

Each key gets a stable id: the lowercase hex SHA-256 of its DER SubjectPublicKeyInfo (the
same value whichever PEM file, certificate or directory it came from). The name of the file it
came from is kept too. An envelope signature's ``keyid`` picks the key when it equals the key
id, ``sha256:<key id>``, the file name or the file name without its extension.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from stella_oci.errors import InvalidInputError

TRUST_ROOT_SUFFIXES = (".pem", ".pub", ".crt")
MIN_RSA_BITS = 2048
#: A trust root file larger than this is refused (a PEM bundle of keys is a few KiB).
MAX_TRUST_FILE_BYTES = 4 * 1024 * 1024

_PEM_BLOCK_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_EC_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id_of(key: PublicKey) -> str:
    """The stable key id: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(spki_der(key)).hexdigest()


def _algorithm_of(key: PublicKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {
            "secp256r1": "ecdsa-p256-sha256",
            "secp384r1": "ecdsa-p384-sha384",
            "secp521r1": "ecdsa-p521-sha512",
        }[key.curve.name]
    return f"rsa-{key.key_size}-sha256"


@dataclass(frozen=True)
class TrustedKey:
    """One trusted public key."""

    key_id: str
    name: str
    """Where the key came from: the file name, with ``#N`` (1-based) when the file holds several."""
    algorithm: str
    public_key: PublicKey = field(repr=False, compare=False)
    aliases: tuple[str, ...] = ()
    """Other file names that held the very same key."""
    validity: tuple[tuple[datetime, datetime], ...] = ()
    """``(notBefore, notAfter)`` (UTC) of every certificate that carried this key; empty when it
    came only as a bare public key (no window)."""

    def valid_at(self, when: datetime) -> bool:
        """Is ``when`` inside one of the key's validity windows (bounds included)?"""
        return any(start <= when <= end for start, end in self.validity)

    def matches(self, keyid: str) -> bool:
        """Does an envelope ``keyid`` name this key?"""
        if not keyid:
            return False
        wanted = keyid.strip()
        low = wanted.lower()
        if low in (self.key_id, "sha256:" + self.key_id):
            return True
        for name in (self.name, *self.aliases):
            base = name.split("#", 1)[0]
            if wanted in (name, base, Path(base).stem):
                return True
        return False

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is a valid signature of ``data`` by this key.

        ECDSA: ASN.1 DER (as cosign writes it), or the raw ``r || s`` concatenation (as the DSSE
        reference implementation writes it). Ed25519: the raw 64 bytes. RSA: PKCS#1 v1.5, then
        PSS with MGF1-SHA-256 and any salt length, both over SHA-256.
        """
        key = self.public_key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                if len(signature) != 64:
                    return False
                key.verify(signature, data)
                return True
            if isinstance(key, ec.EllipticCurvePublicKey):
                algo = ec.ECDSA(_EC_HASHES[key.curve.name]())
                try:
                    key.verify(signature, data, algo)
                    return True
                except (InvalidSignature, ValueError):
                    size = (key.curve.key_size + 7) // 8
                    if len(signature) != 2 * size:
                        return False
                    r = int.from_bytes(signature[:size], "big")
                    s = int.from_bytes(signature[size:], "big")
                    key.verify(utils.encode_dss_signature(r, s), data, algo)
                    return True
            try:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
                return True
            except InvalidSignature:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                key.verify(signature, data, pss, hashes.SHA256())
                return True
        except (InvalidSignature, ValueError):
            return False


Window = tuple[datetime, datetime]


def _load_block(kind: str, block: bytes, where: str) -> tuple[PublicKey, Window | None] | None:
    window: Window | None = None
    try:
        if kind == "CERTIFICATE":
            cert = x509.load_pem_x509_certificate(block)
            window = (cert.not_valid_before_utc, cert.not_valid_after_utc)
            loaded: object = cert.public_key()
        elif kind in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            loaded = serialization.load_pem_public_key(block)
        elif "PRIVATE KEY" in kind:
            raise InvalidInputError(
                f"trust root {where} holds a private key ({kind}); a trust root holds public keys only",
                hint="extract the public key: openssl pkey -in KEY -pubout -out KEY.pub "
                "(or cosign public-key --key KEY)",
            )
        else:
            return None  # e.g. "EC PARAMETERS" written by openssl ecparam: not a key, skip it
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInputError(
            f"trust root {where}: cannot read the {kind} block ({exc})",
            hint="give a PEM SubjectPublicKeyInfo (PUBLIC KEY) or X.509 certificate",
        ) from exc
    return _supported(loaded, where), window


def _supported(loaded: object, where: str) -> PublicKey:
    if isinstance(loaded, ed25519.Ed25519PublicKey):
        return loaded
    if isinstance(loaded, ec.EllipticCurvePublicKey):
        if loaded.curve.name not in _EC_HASHES:
            raise InvalidInputError(
                f"trust root {where}: ECDSA curve {loaded.curve.name} is not supported",
                hint="use P-256 (what cosign generates), P-384 or P-521",
            )
        return loaded
    if isinstance(loaded, rsa.RSAPublicKey):
        if loaded.key_size < MIN_RSA_BITS:
            raise InvalidInputError(
                f"trust root {where}: RSA key of {loaded.key_size} bits is too weak",
                hint=f"use an RSA key of at least {MIN_RSA_BITS} bits, or ECDSA P-256",
            )
        return loaded
    raise InvalidInputError(
        f"trust root {where}: key type {type(loaded).__name__} is not supported",
        hint="use ECDSA P-256, Ed25519 or RSA keys",
    )


def _keys_from_pem(data: bytes, name: str) -> list[tuple[str, PublicKey, Window | None]]:
    found: list[tuple[str, PublicKey, Window | None]] = []
    blocks = list(_PEM_BLOCK_RE.finditer(data))
    for index, match in enumerate(blocks, start=1):
        kind = match.group(1).decode("ascii")
        where = name if len(blocks) == 1 else f"{name} (PEM block {index})"
        loaded = _load_block(kind, match.group(0), where)
        if loaded is not None:
            found.append((name, *loaded))
    if len(found) > 1:
        found = [(f"{n}#{i}", k, w) for i, (n, k, w) in enumerate(found, start=1)]
    return found


class TrustRoot:
    """An ordered, de-duplicated set of trusted public keys."""

    def __init__(self, keys: Iterable[TrustedKey], *, source: str = "<memory>"):
        self.keys: tuple[TrustedKey, ...] = tuple(keys)
        self.source = source

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[TrustedKey]:
        return iter(self.keys)

    def __repr__(self) -> str:
        return f"TrustRoot({self.source!r}, keys={[k.key_id[:12] + ' ' + k.name for k in self.keys]})"

    @property
    def key_ids(self) -> list[str]:
        return [k.key_id for k in self.keys]

    def select(self, keyid: str) -> list[TrustedKey]:
        """The keys an envelope ``keyid`` names (empty when it names none, or is empty)."""
        return [k for k in self.keys if k.matches(keyid)]

    def get(self, key_id: str) -> TrustedKey | None:
        for k in self.keys:
            if k.key_id == key_id:
                return k
        return None

    @classmethod
    def from_pem(cls, data: bytes, *, name: str = "<memory>") -> TrustRoot:
        """A trust root from PEM bytes (one or more blocks). No key in them: exit 2."""
        root = cls._build(_keys_from_pem(data, name), source=name)
        if not root.keys:
            raise InvalidInputError(
                f"trust root {name} holds no public key (no PUBLIC KEY or CERTIFICATE PEM block)",
                hint="give a PEM file written by cosign generate-key-pair (the .pub) or openssl pkey -pubout",
            )
        return root

    @classmethod
    def from_public_keys(
        cls, keys: Iterable[tuple[str, PublicKey]], *, source: str = "<memory>"
    ) -> TrustRoot:
        return cls._build([(name, key, None) for name, key in keys], source=source)

    @classmethod
    def load(cls, path: Path) -> TrustRoot:
        """Load a trust root from a PEM file or a directory of PEM files. Local files only."""
        path = Path(path)
        if not path.exists():
            raise InvalidInputError(
                f"trust root {path} does not exist",
                hint="give a PEM public key file or a directory of *.pem / *.pub files",
            )
        entries: list[tuple[str, PublicKey, Window | None]] = []
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TRUST_ROOT_SUFFIXES
            )
            if not files:
                raise InvalidInputError(
                    f"trust root directory {path} holds no *.pem, *.pub or *.crt file",
                    hint="put the public keys (PEM) in that directory",
                )
            for f in files:
                entries.extend(_keys_from_pem(_read_small(f), f.name))
        else:
            entries.extend(_keys_from_pem(_read_small(path), path.name))
        root = cls._build(entries, source=str(path))
        if not root.keys:
            raise InvalidInputError(
                f"trust root {path} holds no public key (no PUBLIC KEY or CERTIFICATE PEM block)",
                hint="give a PEM file written by cosign generate-key-pair (the .pub) or openssl pkey -pubout",
            )
        return root

    @classmethod
    def _build(cls, entries: list[tuple[str, PublicKey, Window | None]], *, source: str) -> TrustRoot:
        by_id: dict[str, TrustedKey] = {}
        for name, key, window in entries:
            kid = key_id_of(key)
            windows = () if window is None else (window,)
            if kid in by_id:
                prev = by_id[kid]
                by_id[kid] = TrustedKey(
                    kid, prev.name, prev.algorithm, prev.public_key, (*prev.aliases, name),
                    (*prev.validity, *windows),
                )
            else:
                by_id[kid] = TrustedKey(kid, name, _algorithm_of(key), key, (), windows)
        return cls(by_id.values(), source=source)


def _read_small(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_TRUST_FILE_BYTES:
        raise InvalidInputError(
            f"trust root file {path} is {size} bytes, more than {MAX_TRUST_FILE_BYTES}",
            hint="a trust root holds PEM public keys, a few KiB",
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"trust root file {path} cannot be read ({exc.strerror})") from exc
