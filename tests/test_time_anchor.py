"""Signed time (issue 13, acceptance 6; issue 12's clock messages): a time anchor is trusted only
when its DSSE signature verifies with a --time-anchor-trust-root key whose validity window holds
the anchored time; requireTimeAnchor / --require-time-anchor refuse any other clock (exit 7);
every output says which clock was used. Real registry, real keys (made here with cryptography)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from stella_oci.airgap.models import TimeAnchor
from stella_oci.airgap.timeanchor import (
    load_time_anchor_trust_root,
    resolve_clock,
    sign_time_anchor,
    verify_time_anchor,
)
from stella_oci.errors import InvalidInputError, StalenessError, VerificationError
from stella_oci.schemas import validate_against
from stella_oci.signing.dsse import PAYLOAD_TYPE_TIME_ANCHOR, b64encode, parse_envelope
from stella_oci.signing.sign import Signer
from stella_oci.signing.trust import key_id_of
from tests.support.bundles import copy_example

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STRICT = EXAMPLES / "airgap" / "staleness-strict.json"  # 7 days + 1 day grace
GENERATED = "2026-11-20T08:00:00Z"  # mirror-full's generatedAt
FRESH = "2026-11-24T12:00:00Z"  # 4 days later
STALE = "2026-11-29T08:00:01Z"  # 9 days later: beyond threshold + grace


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def make_key(tmp_path: Path, name: str, kind: str = "ed25519") -> tuple[Path, Any]:
    key: Any = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / f"{name}.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path, key


def make_root(tmp_path: Path, name: str, key: Any, not_before: str, not_after: str) -> Path:
    """A self-signed root certificate for ``key`` valid from ``not_before`` to ``not_after``."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"time-anchor {name}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(utc(not_before))
        .not_valid_after(utc(not_after))
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    path = tmp_path / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def signed_anchor(tmp_path: Path, key: Any, timestamp: str, name: str | None = None) -> Path:
    anchor = TimeAnchor(anchorType="NTP", timestamp=utc(timestamp), source="ntp.outside", uncertainty=50)
    path = tmp_path / (name or f"anchor-{timestamp.replace(':', '')}.dsse.json")
    path.write_bytes(sign_time_anchor(anchor, key))
    return path


def sign_envelope(payload_type: str, payload: bytes, key: Any) -> bytes:
    return Signer(key_id=key_id_of(key.public_key()), source="test", key=key).envelope(payload_type, payload)


def plain_anchor(tmp_path: Path, timestamp: str, **extra: Any) -> Path:
    path = tmp_path / f"plain-{timestamp.replace(':', '')}.json"
    path.write_text(json.dumps({"anchorType": "NTP", "timestamp": timestamp, **extra}))
    return path


@pytest.fixture
def root(tmp_path: Path) -> tuple[Any, Path]:
    """A time-anchor root valid through 2026 and 2027, and its private key."""
    _, key = make_key(tmp_path, "root")
    return key, make_root(tmp_path, "root", key, "2026-01-01T00:00:00Z", "2027-12-31T23:59:59Z")


@pytest.fixture
def pushed(registry, fresh_repo, run_cli, tmp_path) -> str:
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, _, err = run_cli("push", copy_example("mirror-full", tmp_path / "bundle"), ref)
    assert code == 0, err
    return ref


def cli_json(run_cli, *args: Any, expect: int) -> dict[str, Any]:
    code, out, err = run_cli(*args, "--format", "json")
    assert code == expect, f"exit {code}: {out}{err}"
    return json.loads(out)


# ------------------------------------------------------------------ acceptance 6 through the CLI
def test_valid_signed_anchor_moves_now(pushed, root, run_cli, tmp_path) -> None:
    """The same export, the same config: fresh at one signed 'now', stale (exit 7) at another."""
    key, cert = root
    fresh = signed_anchor(tmp_path, key, FRESH)
    ok = cli_json(
        run_cli, "verify", pushed, "--staleness-config", STRICT,
        "--time-anchor", fresh, "--time-anchor-trust-root", cert, expect=0,
    )
    assert ok["staleness"]["passed"] is True
    assert ok["staleness"]["stalenessSeconds"] == 4 * 86400 + 4 * 3600
    assert ok["clock"] == {
        "source": "time-anchor", "verified": True, "timestamp": FRESH, "anchorType": "NTP",
        "file": str(fresh), "keyId": key_id_of(key.public_key()), "keyName": "root.crt",
    }

    stale = signed_anchor(tmp_path, key, STALE)
    failed = cli_json(
        run_cli, "verify", pushed, "--staleness-config", STRICT,
        "--time-anchor", stale, "--time-anchor-trust-root", cert, expect=7,
    )
    assert failed["error"]["code"] == 7
    assert failed["staleness"]["error"]["code"] == "ERR_AIRGAP_STALE"
    assert failed["staleness"]["stalenessSeconds"] == 9 * 86400 + 1
    assert failed["clock"]["verified"] is True and failed["clock"]["timestamp"] == STALE
    assert "signed time anchor" in failed["error"]["message"] and "system clock" not in failed["error"]["message"]


def test_signed_anchor_is_recorded_verified_by_an_import(pushed, root, run_cli, tmp_path) -> None:
    key, cert = root
    fresh = signed_anchor(tmp_path, key, FRESH)
    ledger = tmp_path / "ledger.sqlite3"
    got = cli_json(
        run_cli, "pull", pushed, "-o", tmp_path / "got", "--staleness-config", STRICT,
        "--time-anchor", fresh, "--time-anchor-trust-root", cert, "--ledger", ledger, expect=0,
    )
    anchor = got["provenance"]["timeAnchor"]
    validate_against(got["provenance"], "ledger-airgap-staleness", definition="BundleProvenance")
    import hashlib

    digest = "sha256:" + hashlib.sha256(fresh.read_bytes()).hexdigest()
    assert anchor == {
        "anchorType": "NTP", "timestamp": FRESH, "source": "ntp.outside", "uncertainty": 50,
        "signatureDigest": digest, "verified": True,
    }
    with sqlite3.connect(ledger) as db:
        (row,) = db.execute("SELECT time_anchor FROM imports").fetchall()
    assert json.loads(row[0])["verified"] is True


def test_anchor_signed_by_a_key_outside_the_trust_root_is_refused(pushed, root, run_cli, tmp_path) -> None:
    _, cert = root
    _, stranger = make_key(tmp_path, "stranger")
    forged = signed_anchor(tmp_path, stranger, FRESH)
    ledger = tmp_path / "ledger.sqlite3"
    err = cli_json(
        run_cli, "pull", pushed, "-o", tmp_path / "got", "--staleness-config", STRICT,
        "--time-anchor", forged, "--time-anchor-trust-root", cert, "--ledger", ledger, expect=3,
    )
    message = err["error"]["message"]
    assert str(forged) in message and "not in the trust root" in message, message
    assert not (tmp_path / "got").exists()
    assert not ledger.exists() or not sqlite3.connect(ledger).execute("SELECT * FROM imports").fetchall()


def test_anchor_signed_by_an_expired_root_is_refused(pushed, run_cli, tmp_path) -> None:
    """The root's window ended before the time it claims to sign: refused, whatever this host's clock says."""
    _, key = make_key(tmp_path, "old", kind="ecdsa")
    expired = make_root(tmp_path, "old", key, "2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z")
    anchor = signed_anchor(tmp_path, key, FRESH)
    err = cli_json(
        run_cli, "verify", pushed, "--staleness-config", STRICT,
        "--time-anchor", anchor, "--time-anchor-trust-root", expired, expect=3,
    )
    message = err["error"]["message"]
    assert "expired" in message and "2025-12-31T23:59:59Z" in message and FRESH in message, message
    # the same key, inside its window: accepted (the refusal above is the window, not the key)
    inside = signed_anchor(tmp_path, key, "2025-06-01T00:00:00Z")
    ok = cli_json(
        run_cli, "time-anchor", "verify", inside, "--time-anchor-trust-root", expired, expect=0,
    )
    assert ok["clock"]["verified"] is True and ok["clock"]["timestamp"] == "2025-06-01T00:00:00Z"


def test_require_time_anchor_in_config_without_an_anchor_exits_7(pushed, run_cli, tmp_path) -> None:
    config = tmp_path / "require.json"
    config.write_text(json.dumps({**json.loads(STRICT.read_text()), "requireTimeAnchor": True}))
    ledger = tmp_path / "ledger.sqlite3"
    err = cli_json(
        run_cli, "pull", pushed, "-o", tmp_path / "got", "--staleness-config", config, "--ledger", ledger, expect=7,
    )
    message = err["error"]["message"]
    assert "ERR_AIRGAP_TIME_ANCHOR_REQUIRED" in message and "requireTimeAnchor" in message
    assert "system clock" in message and "unverified" in message
    assert err["clock"]["source"] == "system-clock" and err["clock"]["verified"] is False
    assert not (tmp_path / "got").exists() and not ledger.exists()

    # an unsigned anchor is no better, whatever its "verified" says
    plain = plain_anchor(tmp_path, FRESH, verified=True)
    err = cli_json(
        run_cli, "verify", pushed, "--staleness-config", config, "--time-anchor", plain, expect=7,
    )
    assert "not signed" in err["error"]["message"] and err["clock"]["verified"] is False


def test_require_time_anchor_flag(pushed, root, run_cli, tmp_path) -> None:
    key, cert = root
    code, _, err = run_cli("pull", pushed, "-o", tmp_path / "a", "--require-time-anchor", "--ledger", tmp_path / "l")
    assert code == 7 and "--require-time-anchor" in err and "system clock" in err, err
    assert not (tmp_path / "a").exists()
    got = cli_json(
        run_cli, "pull", pushed, "-o", tmp_path / "b", "--require-time-anchor", "--ledger", tmp_path / "l",
        "--time-anchor", signed_anchor(tmp_path, key, FRESH), "--time-anchor-trust-root", cert, expect=0,
    )
    assert got["clock"]["verified"] is True and got["provenance"]["timeAnchor"]["verified"] is True


def test_verified_true_in_an_unsigned_anchor_is_not_taken_on_its_word(pushed, run_cli, tmp_path) -> None:
    plain = plain_anchor(tmp_path, FRESH, verified=True)
    got = cli_json(
        run_cli, "pull", pushed, "-o", tmp_path / "got", "--staleness-config", STRICT,
        "--time-anchor", plain, "--ledger", tmp_path / "ledger.sqlite3", expect=0,
    )
    assert got["clock"] == {
        "source": "time-anchor", "verified": False, "timestamp": FRESH, "anchorType": "NTP", "file": str(plain)
    }
    assert got["provenance"]["timeAnchor"]["verified"] is False
    code, out, _ = run_cli(
        "verify", pushed, "--staleness-config", STRICT, "--time-anchor", plain
    )
    assert code == 0 and "UNVERIFIED: not signed" in out, out


def test_every_output_says_when_the_system_clock_was_used(pushed, run_cli, tmp_path) -> None:
    warn = EXAMPLES / "airgap" / "staleness-warn.json"
    got = cli_json(run_cli, "verify", pushed, "--staleness-config", warn, expect=0)
    assert got["clock"]["source"] == "system-clock" and got["clock"]["verified"] is False
    code, out, _ = run_cli("verify", pushed, "--staleness-config", warn)
    assert code == 0 and "system clock" in out and "UNVERIFIED" in out, out
    code, out, _ = run_cli("pull", pushed, "-o", tmp_path / "got", "--ledger", tmp_path / "l")
    assert code == 0 and "system clock" in out, out


def test_time_anchor_options_are_never_silently_ignored(pushed, root, run_cli, tmp_path) -> None:
    key, cert = root
    signed = signed_anchor(tmp_path, key, FRESH)
    plain = plain_anchor(tmp_path, FRESH)
    cases: list[tuple[list[Any], int, str]] = [
        (["--time-anchor", plain], 2, "without --staleness-config"),
        (["--require-time-anchor"], 2, "without --staleness-config"),
        (["--staleness-config", STRICT, "--time-anchor-trust-root", cert], 2, "without --time-anchor"),
        (["--staleness-config", STRICT, "--time-anchor", signed], 2, "no --time-anchor-trust-root"),
        (["--staleness-config", STRICT, "--time-anchor", plain, "--time-anchor-trust-root", cert], 3, "not signed"),
        (["--staleness-config", STRICT, "--time-anchor", signed, "--time-anchor-trust-root",
          cert.parent / "root.pub"], 2, "bare public key"),
    ]
    (cert.parent / "root.pub").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for args, code, text in cases:
        got, _, err = run_cli("verify", pushed, *args)
        assert got == code and text in err, (args, got, err)


def test_load_refuses_before_writing_without_a_required_anchor(registry, pushed, run_cli, tmp_path) -> None:
    archive = tmp_path / "carry.tar"
    code, _, err = run_cli("save", pushed, "--output", archive)
    assert code == 0, err
    dest = f"{registry.host}/loaded-{tmp_path.name}"
    code, _, err = run_cli("load", archive, dest, "--require-time-anchor", "--ledger", tmp_path / "l")
    assert code == 7 and "system clock" in err, err
    code, _, err = run_cli("tags", f"{dest}/{pushed.split('/', 1)[1].rsplit(':', 1)[0]}")
    assert code == 4, err  # nothing was written


# ------------------------------------------------------------------ the rules, through the API
NOW = utc("2026-11-30T00:00:00Z")


def test_window_bounds_and_not_yet_valid_root(tmp_path) -> None:
    _, key = make_key(tmp_path, "k")
    cert = make_root(tmp_path, "k", key, "2026-06-01T00:00:00Z", "2026-12-01T00:00:00Z")
    trust = load_time_anchor_trust_root(cert)
    for inside in ("2026-06-01T00:00:00Z", "2026-12-01T00:00:00Z"):  # bounds included
        data = sign_time_anchor(TimeAnchor(anchorType="MANUAL", timestamp=utc(inside)), key)
        assert verify_time_anchor(data, trust, source="a").verified
    early = sign_time_anchor(TimeAnchor(anchorType="MANUAL", timestamp=utc("2026-05-31T23:59:59Z")), key)
    with pytest.raises(VerificationError, match="not valid then"):
        verify_time_anchor(early, trust, source="a")
    late = sign_time_anchor(TimeAnchor(anchorType="MANUAL", timestamp=utc("2026-12-01T00:00:01Z")), key)
    with pytest.raises(VerificationError, match="expired"):
        verify_time_anchor(late, trust, source="a")


def test_tampered_payload_and_foreign_payload_type_are_refused(tmp_path, root) -> None:
    key, cert = root
    trust = load_time_anchor_trust_root(cert)
    data = sign_time_anchor(TimeAnchor(anchorType="NTP", timestamp=utc(FRESH)), key)
    doc = json.loads(data)
    doc["payload"] = b64encode(json.dumps({"anchorType": "NTP", "timestamp": STALE}).encode())
    with pytest.raises(VerificationError, match="does not verify"):
        verify_time_anchor(json.dumps(doc).encode(), trust, source="a")
    other = sign_envelope("application/vnd.in-toto+json", b'{"timestamp": "2026-11-24T12:00:00Z"}', key)
    with pytest.raises(VerificationError, match="payloadType"):
        verify_time_anchor(other, trust, source="a")


def test_signed_payload_never_carries_verified(tmp_path, root) -> None:
    key, cert = root
    data = sign_time_anchor(TimeAnchor(anchorType="NTP", timestamp=utc(FRESH), verified=True), key)
    env = parse_envelope(data, source="a")
    assert env.payload_type == PAYLOAD_TYPE_TIME_ANCHOR and "verified" not in json.loads(env.payload)
    # a payload that says verified: false is still verified by its signature
    payload = json.dumps({"anchorType": "NTP", "timestamp": FRESH, "verified": False}).encode()
    path = tmp_path / "a.dsse.json"
    path.write_bytes(sign_envelope(PAYLOAD_TYPE_TIME_ANCHOR, payload, key))
    assert resolve_clock(path, cert, now=NOW, require="test").anchor.verified is True


def test_resolve_clock_without_anchor_and_with_requirement() -> None:
    clock = resolve_clock(None, None, now=NOW)
    assert clock.source == "system-clock" and clock.verified is False and clock.anchor.timestamp == NOW
    with pytest.raises(StalenessError, match="ERR_AIRGAP_TIME_ANCHOR_REQUIRED") as info:
        resolve_clock(None, None, now=NOW, require="requireTimeAnchor in x.json")
    assert info.value.exit_code == 7 and info.value.details["clock"]["source"] == "system-clock"


def test_time_anchor_trust_root_needs_certificates(tmp_path) -> None:
    _, key = make_key(tmp_path, "bare")
    pub = tmp_path / "bare.pub"
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InvalidInputError, match="bare public key"):
        load_time_anchor_trust_root(pub)
    # the same key once as a bare key and once in a certificate: the certificate's window counts
    both = tmp_path / "dir"
    both.mkdir()
    (both / "a.pub").write_bytes(pub.read_bytes())
    make_root(both, "b", key, "2026-01-01T00:00:00Z", "2026-12-31T00:00:00Z")
    (k,) = load_time_anchor_trust_root(both).keys
    assert k.validity == ((utc("2026-01-01T00:00:00Z"), utc("2026-12-31T00:00:00Z")),)


def test_time_anchor_sign_cli_writes_what_verify_accepts(root, run_cli, tmp_path) -> None:
    key, cert = root
    key_file = tmp_path / "signer.key"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    out = tmp_path / "anchor.dsse.json"
    signed = cli_json(
        run_cli, "time-anchor", "sign", "--key", key_file, "--timestamp", FRESH, "--anchor-type", "NTP",
        "--source", "ntp.outside", "-o", out, expect=0,
    )
    assert signed["keyId"] == key_id_of(key.public_key()) and signed["anchor"]["timestamp"] == FRESH
    checked = cli_json(run_cli, "time-anchor", "verify", out, "--time-anchor-trust-root", cert, expect=0)
    assert checked["anchor"]["verified"] is True and checked["anchor"]["source"] == "ntp.outside"
    assert cli_json(run_cli, "time-anchor", "sign", "--key", key_file, "-o", out, expect=2)  # exists


def test_airgap_status_verifies_its_anchor_and_says_which_clock(root, run_cli, tmp_path) -> None:
    from stella_oci.airgap import Ledger

    key, cert = root
    ledger = tmp_path / "ledger.sqlite3"
    with Ledger(ledger):  # an empty ledger: status refuses a --ledger that does not exist (exit 2)
        pass
    signed = signed_anchor(tmp_path, key, FRESH)
    got = cli_json(
        run_cli, "airgap", "status", "--ledger", ledger, "--time-anchor", signed, "--time-anchor-trust-root", cert,
        expect=0,
    )
    assert got["collectedAt"] == FRESH and got["clock"]["verified"] is True
    validate_against(got, "ledger-airgap-staleness", definition="StalenessMetrics")
    code, out, err = run_cli("airgap", "status", "--ledger", ledger)
    assert code == 0 and "system clock" in out and "unverified" in out, out + err
    code, out, err = run_cli("airgap", "status", "--ledger", ledger, "--format", "prometheus")
    assert code == 0 and 'stella_oci_airgap_clock_verified{source="system-clock"} 0' in out, out + err
    _, stranger = make_key(tmp_path, "stranger")
    code, _, err = run_cli(
        "airgap", "status", "--ledger", ledger, "--time-anchor", signed_anchor(tmp_path, stranger, FRESH, "s.json"),
        "--time-anchor-trust-root", cert,
    )
    assert code == 3 and "not in the trust root" in err, err
    code, _, err = run_cli("airgap", "status", "--ledger", ledger, "--require-time-anchor")
    assert code == 7 and "ERR_AIRGAP_TIME_ANCHOR_REQUIRED" in err, err


# ------------------------------------------------------------------ RFC 3161 (a real openssl TSA)
TS_CNF = """[ tsa ]
default_tsa = tsa1
[ tsa1 ]
serial = {serial}
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def make_tsa(tmp_path: Path, name: str, tsa_from: str, tsa_until: str) -> tuple[Path, Path, Path]:
    """A CA (valid 2020-2040) and a TSA certificate it issued (critical timeStamping EKU) valid
    ``tsa_from``..``tsa_until``: (ca.crt, tsa.crt, tsa.key)."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(utc("2020-01-01T00:00:00Z")).not_valid_after(utc("2040-01-01T00:00:00Z"))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} TSA")]))
        .issuer_name(ca_name).public_key(tsa_key.public_key()).serial_number(2)
        .not_valid_before(utc(tsa_from)).not_valid_after(utc(tsa_until))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (tmp_path / f"{name}-ca.crt", tmp_path / f"{name}-tsa.crt", tmp_path / f"{name}-tsa.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        tsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def openssl_token(tmp_path: Path, tsa: Path, key: Path) -> Path:
    """An RFC 3161 TimeStampResp from openssl's TSA (genTime: this host's clock now)."""
    import subprocess

    (tmp_path / "msg.txt").write_text("time anchor for the air gap\n")
    (tmp_path / "serial").write_text("01\n")
    (tmp_path / "ts.cnf").write_text(TS_CNF.format(serial=tmp_path / "serial"))
    run = lambda *a: subprocess.run(["openssl", "ts", *map(str, a)], check=True, capture_output=True, timeout=60)  # noqa: E731
    run("-query", "-data", tmp_path / "msg.txt", "-sha256", "-cert", "-out", tmp_path / "req.tsq")
    out = tmp_path / f"{tsa.stem}.tsr"
    # only the TSA certificate in the token (-cert in the query; no -chain: openssl writes the
    # certificates SET unsorted, which rfc3161-client's strict DER parser refuses)
    run("-reply", "-queryfile", tmp_path / "req.tsq", "-signer", tsa, "-inkey", key,
        "-config", tmp_path / "ts.cnf", "-out", out)
    return out


def test_rfc3161_token_from_a_trusted_tsa_is_a_verified_anchor(run_cli, tmp_path) -> None:
    from rfc3161_client import decode_timestamp_response

    ca, tsa, key = make_tsa(tmp_path, "good", "2020-01-01T00:00:00Z", "2040-01-01T00:00:00Z")
    token = openssl_token(tmp_path, tsa, key)
    gen_time = decode_timestamp_response(token.read_bytes()).tst_info.gen_time
    got = cli_json(run_cli, "time-anchor", "verify", token, "--time-anchor-trust-root", ca, expect=0)
    assert got["clock"]["verified"] is True and got["anchor"]["anchorType"] == "ATTESTATION_TSA"
    assert utc(got["clock"]["timestamp"]) == gen_time.replace(tzinfo=timezone.utc)
    assert got["anchor"]["uncertainty"] == 1000  # accuracy secs:1

    other_ca, _, _ = make_tsa(tmp_path, "other", "2020-01-01T00:00:00Z", "2040-01-01T00:00:00Z")
    err = cli_json(run_cli, "time-anchor", "verify", token, "--time-anchor-trust-root", other_ca, expect=3)
    assert "does not verify" in err["error"]["message"]
    code, _, err_text = run_cli("airgap", "status", "--ledger", tmp_path / "l", "--time-anchor", token)
    assert code == 2 and "--time-anchor-trust-root" in err_text


def test_rfc3161_token_from_an_expired_tsa_certificate_is_refused(run_cli, tmp_path) -> None:
    ca, tsa, key = make_tsa(tmp_path, "old", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z")
    token = openssl_token(tmp_path, tsa, key)
    err = cli_json(run_cli, "time-anchor", "verify", token, "--time-anchor-trust-root", ca, expect=3)
    assert "does not verify" in err["error"]["message"] and "expired" in err["error"]["message"], err
