"""Trust roots from PEM files, multi-key PEM bundles, certificates and directories."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from stella_oci.errors import InvalidInputError
from stella_oci.signing import TrustRoot, verify_envelope
from tests.support.signing import sign_envelope

KEYS = Path(__file__).resolve().parent.parent / "examples" / "keys"
PTYPE = "application/vnd.stellaops.export.manifest.v1+json"


def _pub_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _priv_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_key_id_is_sha256_of_der_spki() -> None:
    root = TrustRoot.load(KEYS / "EXAMPLE-ONLY-ecdsa-p256.pub")
    pem = (KEYS / "EXAMPLE-ONLY-ecdsa-p256.pub").read_bytes()
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert root.keys[0].key_id == hashlib.sha256(der).hexdigest()
    assert root.keys[0].key_id == "0be42b4b93e833541d7e90e3ce1c1010f06706fd466d2ef5852960024e3a17e6"


def test_directory_reads_pem_and_pub_not_private_keys(tmp_path: Path) -> None:
    a, b = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "b-signer.pem").write_bytes(_pub_pem(b))
    (tmp_path / "a-signer.pub").write_bytes(_pub_pem(a))
    (tmp_path / "a-signer.key").write_bytes(_priv_pem(a))  # not a trust-root suffix: ignored
    (tmp_path / "notes.txt").write_text("ignored")
    root = TrustRoot.load(tmp_path)
    assert [k.name for k in root] == ["a-signer.pub", "b-signer.pem"]
    assert [k.algorithm for k in root] == ["ecdsa-p256-sha256", "ed25519"]
    env = sign_envelope(PTYPE, b"x", _priv_pem(b))
    assert verify_envelope(env, root, source="e").key_name == "b-signer.pem"


def test_multi_key_pem_with_certificate_and_rsa(tmp_path: Path) -> None:
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(cert_key.public_key())
        .serial_number(1)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=1))  # expired: dates are not checked
        .sign(cert_key, hashes.SHA256())
    )
    bundle = (
        b"# comment lines between blocks are fine\n"
        + _pub_pem(ecdsa)
        + b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
        + _pub_pem(rsa_key)
        + cert.public_bytes(serialization.Encoding.PEM)
        + _pub_pem(ecdsa)  # duplicate: kept once
    )
    path = tmp_path / "trust.pem"
    path.write_bytes(bundle)
    root = TrustRoot.load(path)
    assert [k.name for k in root] == ["trust.pem#1", "trust.pem#2", "trust.pem#3"]
    assert [k.algorithm for k in root] == ["ecdsa-p256-sha256", "rsa-2048-sha256", "ecdsa-p256-sha256"]
    assert root.keys[0].aliases == ("trust.pem#4",)
    env = sign_envelope(PTYPE, b"x", _priv_pem(cert_key))
    assert verify_envelope(env, root, source="e").key_name == "trust.pem#3"
    # the file name (without #N) selects every key of the file
    assert len(root.select("trust.pem")) == 3


def test_private_key_in_trust_root_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "oops.pem"
    path.write_bytes((KEYS / "EXAMPLE-ONLY-ed25519.key").read_bytes())
    with pytest.raises(InvalidInputError, match=r"oops\.pem holds a private key") as info:
        TrustRoot.load(path)
    assert info.value.exit_code == 2
    assert "BEGIN" not in str(info.value)  # never echo key material


def test_empty_missing_and_weak_trust_roots(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        TrustRoot.load(tmp_path / "nope.pem")
    (tmp_path / "empty.pem").write_text("no pem here\n")
    with pytest.raises(InvalidInputError, match="holds no public key"):
        TrustRoot.load(tmp_path / "empty.pem")
    empty_dir = tmp_path / "d"
    empty_dir.mkdir()
    with pytest.raises(InvalidInputError, match=r"holds no \*\.pem"):
        TrustRoot.load(empty_dir)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "weak.pem").write_bytes(_pub_pem(weak))
    with pytest.raises(InvalidInputError, match="1024 bits is too weak"):
        TrustRoot.load(tmp_path / "weak.pem")
    (tmp_path / "k1.pem").write_bytes(_pub_pem(ec.generate_private_key(ec.SECP256K1())))
    with pytest.raises(InvalidInputError, match="curve secp256k1 is not supported"):
        TrustRoot.load(tmp_path / "k1.pem")


def test_example_keys_directory() -> None:
    root = TrustRoot.load(KEYS)
    assert {k.name for k in root} == {"EXAMPLE-ONLY-ecdsa-p256.pub", "EXAMPLE-ONLY-ed25519.pub"}
