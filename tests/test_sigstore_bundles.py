"""Issue 14 acceptance 4: Sigstore bundles (cosign ``--bundle`` / ``--new-bundle-format``)
verified offline against a Sigstore trusted root with the ``sigstore`` library.

Every bundle here comes from tests/support/fake_sigstore.py: a local Fulcio-like CA, CT log and
Rekor-like log built with ``cryptography`` (certificate with SAN and OIDC issuer extensions,
embedded precert SCT, hashedrekord / dsse entries in a Merkle tree with inclusion proof, signed
checkpoint and SET), and a trusted_root.json naming exactly them. The library's checks run
unchanged on it; the first tests show that each of them bites.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
from pathlib import Path

import pytest

from stella_oci import api
from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.signing.sigstore_bundles import SIGSTORE_BUNDLE_MEDIA_TYPE, SigstoreTrust
from stella_oci.signing.verify import verify_export_signatures
from stella_oci.verbs.referrers import attach
from stella_oci.verbs.signatures import signature_check
from tests.support.bundles import EXAMPLES, make_bundle, read_export_json, write_export_json
from tests.support.fake_sigstore import FakeLog, FakeSigstore, in_toto_statement

IDENTITY = "release@stellaops.example"
ISSUER = "https://issuer.stellaops.example"
WORKFLOW = "https://github.com/stellaops/exports/.github/workflows/release.yml@refs/heads/main"
GITHUB = "https://token.actions.githubusercontent.com"
FILES = {"data/a.json": b'{"a": 1}\n'}


@pytest.fixture(scope="module")
def fake() -> FakeSigstore:
    return FakeSigstore()


@pytest.fixture
def trusted_root(fake: FakeSigstore, tmp_path: Path) -> Path:
    return fake.write_trusted_root(tmp_path / "trusted_root.json")


def export_bytes(tmp_path: Path) -> bytes:
    return (make_bundle(tmp_path / "b", FILES) / "export.json").read_bytes()


def verify(export_json: bytes, bundle: bytes, root: Path, identity: str = IDENTITY, issuer: str = ISSUER):
    trust = SigstoreTrust.load(root, identity=identity, issuer=issuer)
    return verify_export_signatures(
        export_json=export_json,
        envelopes=[],
        provenance=None,
        trust_root=None,
        require=True,
        sigstore_bundles=[("export.json.sigstore.json", bundle)],
        sigstore=trust,
    )


# ------------------------------------------------------------------ the library's checks, each one
def test_message_signature_bundle_verifies(fake, trusted_root, tmp_path):
    export = export_bytes(tmp_path)
    bundle = fake.sign_artifact(export, identity=IDENTITY, issuer=ISSUER).to_json()
    report = verify(export, bundle, trusted_root)
    [b] = report.sigstore_bundles
    assert (b.verified, b.kind, b.identity, b.issuer) == (True, "messageSignature", IDENTITY, ISSUER)
    assert b.binding == "message signature over export.json"
    assert b.log_index is not None and b.log_index >= fake.filler_entries  # our entry, not a filler
    assert report.verified_count == 1


def _other_log_key(root: dict, member: str) -> None:
    root[member][0]["publicKey"]["rawBytes"] = FakeLog("other").trusted_root_entry("x")["publicKey"][
        "rawBytes"
    ]


def _other_ca(root: dict) -> None:
    root["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"] = FakeSigstore(
        name="other.test"
    ).trusted_root()["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"]


def _flip_b64(value: str, at: int = 8) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _tamper_proof(bundle: dict) -> None:
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"][0] = _flip_b64(proof["hashes"][0])


def _tamper_checkpoint(bundle: dict) -> None:
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    note, sigs = proof["checkpoint"]["envelope"].split("\n\n", 1)
    name, sig = sigs.rstrip("\n").split(" ")[1:]
    proof["checkpoint"]["envelope"] = f"{note}\n\n\u2014 {name} {_flip_b64(sig, 20)}\n"


def _tamper_set(bundle: dict) -> None:
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)


def _tamper_signature(bundle: dict) -> None:
    bundle["messageSignature"]["signature"] = _flip_b64(bundle["messageSignature"]["signature"], 12)


@pytest.mark.parametrize(
    ("what", "change_root", "change_bundle", "check"),
    [
        ("CT log key", lambda r: _other_log_key(r, "ctlogs"), None, "certificate transparency (SCT)"),
        ("Rekor key", lambda r: _other_log_key(r, "tlogs"), None, "transparency-log entry check failed"),
        ("CA", _other_ca, None, "certificate does not chain to a CA of the trusted root"),
        (
            "inclusion proof",
            None,
            _tamper_proof,
            "transparency-log entry check failed: invalid log entry: inclusion proof",
        ),
        ("checkpoint signature", None, _tamper_checkpoint, "checkpoint: invalid signature"),
        ("integrated time (SET)", None, _tamper_set, "SET: invalid inclusion promise"),
        ("signature", None, _tamper_signature, "signature does not verify over these bytes"),
    ],
)
def test_each_library_check_bites(fake, tmp_path, what, change_root, change_bundle, check):
    export = export_bytes(tmp_path)
    bundle = fake.sign_artifact(export, identity=IDENTITY, issuer=ISSUER).bundle
    root = fake.trusted_root()
    if change_root:
        change_root(root)
    if change_bundle:
        change_bundle(bundle)
    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(root))
    with pytest.raises(VerificationError) as e:
        verify(export, json.dumps(bundle).encode(), path)
    assert e.value.exit_code == 3
    assert e.value.message.startswith("export.json.sigstore.json: Sigstore bundle does not verify: "), (
        e.value.message
    )
    assert check in e.value.message, (what, e.value.message)


def test_changed_byte_wrong_identity_wrong_issuer(fake, trusted_root, tmp_path):
    export = export_bytes(tmp_path)
    bundle = fake.sign_artifact(export, identity=IDENTITY, issuer=ISSUER).to_json()
    changed = export.replace(b'"', b"'", 0) + b" "  # one byte more: other bytes
    with pytest.raises(
        VerificationError, match=r"Sigstore bundle signs sha256 [0-9a-f]{64}, export\.json hashes to"
    ):
        verify(changed, bundle, trusted_root)
    with pytest.raises(
        VerificationError, match=r"certificate identity does not match --certificate-identity"
    ):
        verify(export, bundle, trusted_root, identity="someone@else.example")
    with pytest.raises(
        VerificationError, match=r"certificate OIDC issuer does not match --certificate-oidc-issuer"
    ):
        verify(export, bundle, trusted_root, issuer="https://accounts.google.com")


def test_dsse_bundle_binds_through_its_statement(fake, trusted_root, tmp_path):
    export = export_bytes(tmp_path)
    good = in_toto_statement({"export.json": hashlib.sha256(export).hexdigest()})
    bundle = fake.sign_dsse(good, identity=WORKFLOW, issuer=GITHUB).to_json()
    [b] = verify(export, bundle, trusted_root, WORKFLOW, GITHUB).sigstore_bundles
    assert (b.kind, b.binding) == ("dsse", "in-toto subject export.json (export.json bytes)")
    other = in_toto_statement({"export.json": "00" * 32})
    bundle = fake.sign_dsse(other, identity=WORKFLOW, issuer=GITHUB).to_json()
    with pytest.raises(VerificationError, match=r"in-toto Statement subject export\.json has sha256 0000"):
        verify(export, bundle, trusted_root, WORKFLOW, GITHUB)


def test_no_network_is_touched(fake, trusted_root, tmp_path, monkeypatch):
    """The verifier is built from the file alone (no TUF refresh) and checks everything from the
    bundle: with every socket refused, it still verifies."""
    export = export_bytes(tmp_path)
    bundle = fake.sign_artifact(export, identity=IDENTITY, issuer=ISSUER).to_json()

    def refuse(*args, **kwargs):
        raise AssertionError(f"network use during offline verification: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    report = verify(export, bundle, trusted_root)
    assert report.sigstore_bundles[0].verified


def test_sigstore_root_needs_identity_and_issuer(trusted_root):
    for identity, issuer, missing in [
        (None, None, "--certificate-identity and --certificate-oidc-issuer are required"),
        (IDENTITY, None, "--certificate-oidc-issuer is required"),
        (None, ISSUER, "--certificate-identity is required"),
    ]:
        with pytest.raises(InvalidInputError) as e:
            signature_check(trusted_root, False, identity=identity, issuer=issuer)
        assert e.value.exit_code == 2 and missing in e.value.message
    with pytest.raises(InvalidInputError, match="apply to a Sigstore trusted root"):
        signature_check(
            Path(__file__).parents[1] / "examples" / "keys", False, identity=IDENTITY, issuer=ISSUER
        )
    broken = trusted_root.parent / "broken_root.json"
    doc = json.loads(trusted_root.read_text())
    doc["ctlogs"][0]["publicKey"]["rawBytes"] = "AAAA"
    broken.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match="cannot be used"):
        signature_check(broken, False, identity=IDENTITY, issuer=ISSUER)


# ------------------------------------------------------------------ through the CLI and a real registry
def _sigstore_args(root: Path, identity: str = IDENTITY, issuer: str = ISSUER) -> list:
    return ["--trust-root", root, "--certificate-identity", identity, "--certificate-oidc-issuer", issuer]


#: Any HTTP(S) the sigstore library might try goes to a dead proxy; the loopback registry is exempt.
NO_NET = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def test_cli_bundle_as_referrer_verifies_offline(fake, trusted_root, registry, fresh_repo, tmp_path, run_cli):
    bundle_dir = make_bundle(tmp_path / "bundle", FILES)
    ref = f"{registry.host}/{fresh_repo}:v1"
    digest = api.push(bundle_dir, ref).digest
    signed = fake.sign_artifact((bundle_dir / "export.json").read_bytes(), identity=IDENTITY, issuer=ISSUER)
    (tmp_path / "export.json.sigstore.json").write_bytes(signed.to_json())
    # as cosign attaches it: artifactType application/vnd.dev.sigstore.bundle.v0.3+json
    referrer = attach(ref, tmp_path / "export.json.sigstore.json", artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE)

    code, out, err = run_cli(
        "verify", ref, *_sigstore_args(trusted_root), "--require-signature", "--format", "json", env=NO_NET
    )
    assert code == 0, err + out
    doc = json.loads(out)
    assert doc["digest"] == digest
    [b] = doc["signatures"]["sigstoreBundles"]
    assert (
        b["verified"] and b["identity"] == IDENTITY and b["binding"] == "message signature over export.json"
    )
    assert b["name"] == f"referrer {referrer.digest} (export.json.sigstore.json)"
    assert doc["signatures"]["verifiedCount"] == 1

    code, out, err = run_cli("verify", ref, *_sigstore_args(trusted_root, identity="mallory@evil.example"))
    assert code == 3, err + out
    assert "certificate identity does not match --certificate-identity" in err
    code, out, err = run_cli(
        "verify", ref, *_sigstore_args(trusted_root, issuer="https://accounts.google.com")
    )
    assert code == 3, err + out
    assert "certificate OIDC issuer does not match --certificate-oidc-issuer" in err
    code, out, err = run_cli("verify", ref, "--trust-root", trusted_root)
    assert code == 2, err + out
    assert "--certificate-identity and --certificate-oidc-issuer are required" in err

    # carried across the gap: the archive holds the referrer, verified with the network cut
    archive = tmp_path / "exports.tar"
    code, out, err = run_cli("copy", ref, f"oci-archive:{archive}:v1")
    assert code == 0, err + out
    code, out, err = run_cli(
        "verify",
        f"oci-archive:{archive}:v1",
        "--offline",
        *_sigstore_args(trusted_root),
        "--require-signature",
        "--format",
        "json",
        env=NO_NET,
    )
    assert code == 0, err + out
    assert json.loads(out)["signatures"]["sigstoreBundles"][0]["verified"] is True


def test_cli_bundle_carried_in_signatures_dir(fake, trusted_root, registry, fresh_repo, tmp_path, run_cli):
    bundle_dir = make_bundle(tmp_path / "bundle", FILES)
    export = (bundle_dir / "export.json").read_bytes()
    (bundle_dir / "signatures").mkdir()
    sig_path = bundle_dir / "signatures" / "export.json.sigstore.json"
    sig_path.write_bytes(fake.sign_artifact(export, identity=IDENTITY, issuer=ISSUER).to_json())
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, out, err = run_cli("push", bundle_dir, ref)
    assert code == 0, err + out

    for target in (ref, bundle_dir):
        code, out, err = run_cli(
            "verify",
            target,
            *_sigstore_args(trusted_root),
            "--require-signature",
            "--format",
            "json",
            env=NO_NET,
        )
        assert code == 0, err + out
        [b] = json.loads(out)["signatures"]["sigstoreBundles"]
        assert b["verified"] and b["name"].endswith("export.json.sigstore.json"), b
    code, out, err = run_cli("verify", ref, *_sigstore_args(trusted_root, identity="mallory@evil.example"))
    assert code == 3 and "certificate identity does not match" in err, err + out
    code, out, err = run_cli("verify", ref, *_sigstore_args(trusted_root), env=NO_NET)
    assert code == 0, err + out
    assert (
        f"sigstore bundle: signatures/export.json.sigstore.json: verified, {IDENTITY} (issuer {ISSUER})"
        in out
    )
    code, out, err = run_cli("verify", ref)  # no trust root: no signature check, the rest passes
    assert code == 0, err + out

    # one byte of export.json changed after signing: the bundle no longer signs it
    doc = read_export_json(bundle_dir)
    doc["exportId"] = doc["exportId"][:-1] + ("2" if doc["exportId"][-1] != "2" else "3")
    write_export_json(bundle_dir, doc)
    ref2 = f"{registry.host}/{fresh_repo}:v2"
    code, out, err = run_cli("push", bundle_dir, ref2)
    assert code == 0, err + out
    code, out, err = run_cli("verify", ref2, *_sigstore_args(trusted_root))
    assert code == 3, err + out
    assert "export.json.sigstore.json: Sigstore bundle signs sha256" in err and "export.json hashes to" in err

    # one byte of the bundle's signature changed: the library's signature check fails
    sig_doc = json.loads(sig_path.read_bytes())
    _tamper_signature(sig_doc)
    sig_path.write_text(json.dumps(sig_doc))
    write_export_json(bundle_dir, json.loads(export))
    assert (bundle_dir / "export.json").read_bytes() == export
    code, out, err = run_cli("verify", bundle_dir, *_sigstore_args(trusted_root))
    assert code == 3, err + out
    assert "signature does not verify over these bytes" in err


def test_cli_cosign_sign_style_dsse_referrer(fake, trusted_root, registry, fresh_repo, tmp_path, run_cli):
    """``cosign sign --new-bundle-format``: a DSSE in-toto Statement whose subject is the manifest digest."""
    bundle_dir = make_bundle(tmp_path / "bundle", FILES)
    ref = f"{registry.host}/{fresh_repo}:v1"
    digest = api.push(bundle_dir, ref).digest
    statement = in_toto_statement(
        {f"{registry.host}/{fresh_repo}": digest.split(":", 1)[1]}, "https://sigstore.dev/cosign/sign/v1"
    )
    (tmp_path / "sign.sigstore.json").write_bytes(
        fake.sign_dsse(statement, identity=WORKFLOW, issuer=GITHUB).to_json()
    )
    attach(ref, tmp_path / "sign.sigstore.json", artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE)
    code, out, err = run_cli(
        "verify", ref, *_sigstore_args(trusted_root, WORKFLOW, GITHUB), "--format", "json"
    )
    assert code == 0, err + out
    [b] = json.loads(out)["signatures"]["sigstoreBundles"]
    assert b["kind"] == "dsse" and b["binding"].endswith(f"(the manifest {digest})")
    code, out, err = run_cli("verify", ref, *_sigstore_args(trusted_root, WORKFLOW, "https://gitlab.com"))
    assert code == 3 and "OIDC issuer does not match" in err, err + out


def test_keys_and_trusted_root_in_one_directory(fake, tmp_path):
    """Keys-only DSSE stays: PEM keys and trusted_root.json side by side verify both kinds; the
    Sigstore root alone cannot verify a key-signed envelope, and says so."""
    bundle = shutil.copytree(EXAMPLES / "mirror-full", tmp_path / "mirror-full")
    (bundle / "signatures").mkdir(exist_ok=True)
    export = (bundle / "export.json").read_bytes()
    signed = fake.sign_artifact(export, identity=IDENTITY, issuer=ISSUER).to_json()
    (bundle / "signatures" / "export.json.sigstore.json").write_bytes(signed)
    trust = tmp_path / "trust"
    trust.mkdir()
    shutil.copy(EXAMPLES / "keys" / "EXAMPLE-ONLY-ed25519.pub", trust)
    fake.write_trusted_root(trust / "trusted_root.json")

    result = api.verify(bundle, checks=[signature_check(trust, True, identity=IDENTITY, issuer=ISSUER)])
    sig = result.signatures
    assert all(e.verified for e in sig.envelopes) and len(sig.envelopes) >= 1
    assert [b.verified for b in sig.sigstore_bundles] == [True]
    assert sig.verified_count >= 3  # the envelopes, X-Stella-Signature, the Sigstore bundle

    with pytest.raises(VerificationError, match=r"the trust root .*trusted_root\.json holds no key"):
        api.verify(
            bundle,
            checks=[signature_check(trust / "trusted_root.json", True, identity=IDENTITY, issuer=ISSUER)],
        )
    # keys alone: the envelopes verify, the Sigstore bundle is listed unverified
    result = api.verify(bundle, checks=[signature_check(EXAMPLES / "keys", True)])
    assert [(b.verified, b.status) for b in result.signatures.sigstore_bundles] == [(False, "unverified")]
