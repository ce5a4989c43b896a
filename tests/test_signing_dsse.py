"""DSSE envelope format, PAE and single-envelope verification with real keys."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from stella_oci.errors import VerificationError
from stella_oci.signing import TrustRoot, key_id_of, pae, parse_envelope, verify_envelope
from stella_oci.signing.dsse import b64decode_any
from tests.support.signing import public_key_pem, sign_envelope

KEYS = Path(__file__).resolve().parent.parent / "examples" / "keys"
ECDSA_KEY = KEYS / "EXAMPLE-ONLY-ecdsa-p256.key"
ECDSA_PUB = KEYS / "EXAMPLE-ONLY-ecdsa-p256.pub"
ED25519_KEY = KEYS / "EXAMPLE-ONLY-ed25519.key"
ED25519_PUB = KEYS / "EXAMPLE-ONLY-ed25519.pub"
PTYPE = "application/vnd.stellaops.export.manifest.v1+json"


def _pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_key_pem() -> bytes:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


# --- PAE known answers ------------------------------------------------------------------------


def test_pae_matches_dsse_spec_example() -> None:
    # protocol.md, "Test Vectors"
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters_and_handles_empty_body() -> None:
    assert pae("application/vnd.ex\u00e4mple+json", b"x") == (
        b"DSSEv1 29 application/vnd.ex\xc3\xa4mple+json 1 x"
    )
    assert pae("application/vnd.in-toto+json", b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "


def test_dsse_spec_ecdsa_example_verifies() -> None:
    """The envelope printed in the DSSE protocol spec (raw r||s ECDSA P-256 signature) verifies
    with the spec's key; flipping one payload byte does not."""
    x = 46950820868899156662930047687818585632848591499744589407958293238635476079160
    y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
    pub = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    root = TrustRoot.from_public_keys([("dsse-spec.pub", pub)])
    envelope = json.dumps(
        {
            "payload": "aGVsbG8gd29ybGQ=",
            "payloadType": "http://example.com/HelloWorld",
            "signatures": [
                {
                    "sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAaj"
                    "abZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="
                }
            ],
        }
    ).encode()
    verified = verify_envelope(envelope, root, source="spec.dsse.json")
    assert verified.payload == b"hello world"
    assert verified.key_id == key_id_of(pub)
    with pytest.raises(VerificationError, match="does not verify with any trusted key"):
        verify_envelope(envelope.replace(b"aGVsbG8gd29ybGQ=", b"aGVsbG8gd29ybGU="), root, source="spec")


def test_ed25519_rfc8032_key_gives_known_signature() -> None:
    """Ed25519 is deterministic: RFC 8032 test key 1 over the PAE of a minimal in-toto Statement
    gives the signature published in the DSSE test vectors."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    body = b'{"_type":"https://in-toto.io/Statement/v1"}'
    env = json.loads(sign_envelope("application/vnd.in-toto+json", body, _pem(key), keyid="A"))
    assert env["signatures"][0]["sig"] == (
        "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA=="
    )
    root = TrustRoot.from_public_keys([("A.pub", key.public_key())])
    assert verify_envelope(json.dumps(env).encode(), root, source="v").payload == body


# --- envelope form ----------------------------------------------------------------------------


def test_sign_envelope_is_deterministic_json() -> None:
    data = sign_envelope(PTYPE, b"{}", ED25519_KEY.read_bytes(), keyid="k1")
    assert data == sign_envelope(PTYPE, b"{}", ED25519_KEY.read_bytes(), keyid="k1")
    assert data.endswith(b"}\n")
    doc = json.loads(data)
    assert list(doc) == ["payload", "payloadType", "signatures"]
    assert doc["payload"] == "e30="
    assert len(base64.b64decode(doc["signatures"][0]["sig"])) == 64


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"payload": "e30=", "signatures": [{"sig": "AA=="}]}, "not a DSSE envelope: missing payloadType"),
        ({"payloadType": PTYPE, "signatures": [{"sig": "AA=="}]}, "not a DSSE envelope: missing payload"),
        ({"payloadType": PTYPE, "payload": "e30="}, "not a DSSE envelope: missing signatures"),
        ({"payloadType": PTYPE, "payload": "e30=", "signatures": []}, "signatures must be a non-empty list"),
        (
            {"payloadType": PTYPE, "payload": "e3*0", "signatures": [{"sig": "AA=="}]},
            "payload is not valid base64",
        ),
        (
            {"payloadType": PTYPE, "payload": "e30=", "signatures": [{"sig": "A!=="}]},
            "signature is not valid base64",
        ),
        (
            {"payloadType": PTYPE, "payload": "e30=", "signatures": [{"keyid": "x"}]},
            r"signatures\[0\]\.sig missing",
        ),
        ([1, 2], "expected a JSON object"),
        (
            {"payloadType": PTYPE, "payload": "e30=", "signatures": [{"sig": "AA=="}] * 65},
            "65 signatures, more than 64",
        ),
        (
            {"payloadType": PTYPE, "payload": "e30=", "signatures": [{"keyid": "k" * 600, "sig": "AA=="}]},
            "at most 512",
        ),
    ],
)
def test_malformed_envelopes_name_the_check(doc: object, message: str) -> None:
    with pytest.raises(VerificationError, match=message) as info:
        parse_envelope(json.dumps(doc).encode(), source="bundle/x.dsse.json")
    assert info.value.exit_code == 3
    assert "bundle/x.dsse.json" in info.value.message


def test_not_json_is_refused() -> None:
    with pytest.raises(VerificationError, match=r"x\.dsse\.json: not a DSSE envelope: not valid JSON"):
        parse_envelope(b"\x00garbage", source="x.dsse.json")


def test_base64_accepts_both_alphabets_and_missing_padding() -> None:
    raw = bytes([0xFB, 0xFF, 0xBF, 0x3E, 0x3F])
    assert b64decode_any("+/+/Pj8=", what="p") == raw
    assert b64decode_any("-_-_Pj8", what="p") == raw
    with pytest.raises(VerificationError):
        b64decode_any("+_+_Pj8=", what="p")  # mixed alphabets
    with pytest.raises(VerificationError):
        b64decode_any("abcde", what="p")  # impossible length


# --- verification with each key type ----------------------------------------------------------


def test_ecdsa_p256_der_envelope_verifies() -> None:
    root = TrustRoot.load(ECDSA_PUB)
    data = sign_envelope(PTYPE, b'{"a":1}', ECDSA_KEY.read_bytes())
    sig = base64.b64decode(json.loads(data)["signatures"][0]["sig"])
    assert sig[0] == 0x30  # ASN.1 DER SEQUENCE, as cosign writes
    verified = verify_envelope(data, root, source="e.dsse.json")
    assert verified.payload == b'{"a":1}'
    assert verified.payload_type == PTYPE
    assert verified.key_id == root.keys[0].key_id
    assert verified.key_name == "EXAMPLE-ONLY-ecdsa-p256.pub"


def test_ed25519_envelope_verifies() -> None:
    root = TrustRoot.load(ED25519_PUB)
    data = sign_envelope(PTYPE, b"payload", ED25519_KEY.read_bytes(), keyid="anything")
    verified = verify_envelope(data, root, source="e")
    assert verified.key_id == root.keys[0].key_id


@pytest.mark.parametrize("pss", [False, True])
def test_rsa_pkcs1v15_and_pss_envelopes_verify(rsa_key_pem: bytes, pss: bool) -> None:
    root = TrustRoot.from_pem(public_key_pem(rsa_key_pem), name="rsa.pub")
    data = sign_envelope(PTYPE, b"payload", rsa_key_pem, rsa_pss=pss)
    assert verify_envelope(data, root, source="e").key_name == "rsa.pub"
    tampered = json.loads(data)
    tampered["payload"] = base64.b64encode(b"payloae").decode()
    with pytest.raises(VerificationError, match="does not verify with any trusted key"):
        verify_envelope(json.dumps(tampered).encode(), root, source="e")


def test_cosign_style_envelope_empty_keyid_der_ecdsa() -> None:
    """cosign attest-blob writes {"payloadType","payload","signatures":[{"keyid":"","sig":<DER>}]}."""
    key = ec.generate_private_key(ec.SECP256R1())
    statement = b'{"_type":"https://in-toto.io/Statement/v0.1","subject":[]}'
    from cryptography.hazmat.primitives import hashes

    der = key.sign(pae("application/vnd.in-toto+json", statement), ec.ECDSA(hashes.SHA256()))
    env = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(statement).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(der).decode()}],
    }
    root = TrustRoot.from_pem(public_key_pem(_pem(key)) + ECDSA_PUB.read_bytes(), name="two.pem")
    verified = verify_envelope(json.dumps(env, indent=2).encode(), root, source="cosign.dsse.json")
    assert verified.key_id == key_id_of(key.public_key())
    assert verified.key_name == "two.pem#1"


def test_one_flipped_byte_in_signature_or_payload_fails() -> None:
    root = TrustRoot.load(KEYS)
    data = sign_envelope(PTYPE, b"exact bytes", ECDSA_KEY.read_bytes())
    doc = json.loads(data)
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    bad_sig = dict(doc, signatures=[{"keyid": "", "sig": base64.b64encode(bytes(sig)).decode()}])
    with pytest.raises(
        VerificationError, match=r"bad\.dsse\.json: signature does not verify with any trusted key"
    ):
        verify_envelope(json.dumps(bad_sig).encode(), root, source="bad.dsse.json")
    bad_payload = dict(doc, payload=base64.b64encode(b"exact bytez").decode())
    with pytest.raises(VerificationError, match="signature does not verify with any trusted key") as info:
        verify_envelope(json.dumps(bad_payload).encode(), root, source="bad.dsse.json")
    assert info.value.exit_code == 3
    # payloadType is authenticated too
    bad_type = dict(doc, payloadType="application/vnd.in-toto+json")
    with pytest.raises(VerificationError, match="does not verify"):
        verify_envelope(json.dumps(bad_type).encode(), root, source="bad.dsse.json")


def test_key_not_in_trust_root_names_the_keyid() -> None:
    root = TrustRoot.load(ECDSA_PUB)
    stranger = ec.generate_private_key(ec.SECP256R1())
    data = sign_envelope(PTYPE, b"p", _pem(stranger), keyid="stranger-key")
    with pytest.raises(
        VerificationError, match="signature by key 'stranger-key' not in the trust root"
    ) as info:
        verify_envelope(data, root, source="s.dsse.json")
    assert info.value.exit_code == 3
    data = sign_envelope(PTYPE, b"p", _pem(stranger))
    with pytest.raises(VerificationError, match="does not verify with any trusted key"):
        verify_envelope(data, root, source="s.dsse.json")


def test_keyid_selects_the_key() -> None:
    root = TrustRoot.load(KEYS)
    ed = root.select("EXAMPLE-ONLY-ed25519")[0]
    ecd = root.select("EXAMPLE-ONLY-ecdsa-p256.pub")[0]
    assert ed.algorithm == "ed25519" and ecd.algorithm == "ecdsa-p256-sha256"
    assert root.select(ed.key_id) == [ed]
    assert root.select("sha256:" + ed.key_id.upper()) == [ed]
    assert root.select("") == []
    # keyid naming the right key: verified with that key
    data = sign_envelope(PTYPE, b"p", ED25519_KEY.read_bytes(), keyid=ed.key_id)
    assert verify_envelope(data, root, source="e").key_id == ed.key_id
    # keyid naming a trusted key that did not sign: only that key is tried, and it fails
    data = sign_envelope(PTYPE, b"p", ED25519_KEY.read_bytes(), keyid="EXAMPLE-ONLY-ecdsa-p256")
    with pytest.raises(VerificationError, match="does not verify with trusted key 'EXAMPLE-ONLY-ecdsa-p256'"):
        verify_envelope(data, root, source="e")
    # keyid naming nothing known: every key is tried
    data = sign_envelope(PTYPE, b"p", ED25519_KEY.read_bytes(), keyid="some-kms-key")
    assert verify_envelope(data, root, source="e").key_name == "EXAMPLE-ONLY-ed25519.pub"


def test_second_signature_may_be_the_trusted_one() -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    first = json.loads(sign_envelope(PTYPE, b"p", _pem(stranger), keyid="other"))
    second = json.loads(sign_envelope(PTYPE, b"p", ECDSA_KEY.read_bytes()))
    first["signatures"].append(second["signatures"][0])
    verified = verify_envelope(json.dumps(first).encode(), TrustRoot.load(KEYS), source="m")
    assert verified.signature_index == 1
    assert verified.key_name == "EXAMPLE-ONLY-ecdsa-p256.pub"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("key", [ECDSA_KEY, ED25519_KEY], ids=["ecdsa-der", "ed25519"])
def test_envelope_signed_by_openssl_verifies(tmp_path: Path, key: Path) -> None:
    """An independent signer (the openssl CLI; DER ECDSA, as cosign writes it) over our PAE."""
    payload = b'{"_type":"https://in-toto.io/Statement/v1","subject":[]}'
    pae_file = tmp_path / "pae.bin"
    pae_file.write_bytes(pae("application/vnd.in-toto+json", payload))
    out = tmp_path / "sig.bin"
    if key == ECDSA_KEY:
        cmd = ["openssl", "dgst", "-sha256", "-sign", str(key), "-out", str(out), str(pae_file)]
    else:
        cmd = [
            "openssl",
            "pkeyutl",
            "-sign",
            "-rawin",
            "-inkey",
            str(key),
            "-in",
            str(pae_file),
            "-out",
            str(out),
        ]
    subprocess.run(cmd, check=True)
    if key == ECDSA_KEY:
        assert out.read_bytes()[0] == 0x30  # DER
    env = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(out.read_bytes()).decode()}],
    }
    root = TrustRoot.load(KEYS)
    verified = verify_envelope(json.dumps(env).encode(), root, source="openssl.dsse.json")
    assert verified.key_name == key.with_suffix(".pub").name
    env["payloadType"] = "application/vnd.in-toto+jsoN"
    with pytest.raises(VerificationError, match="does not verify with any trusted key"):
        verify_envelope(json.dumps(env).encode(), root, source="openssl.dsse.json")
