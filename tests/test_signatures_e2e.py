"""Issue 5 acceptance: DSSE signatures checked on pull / verify, found as layers or referrers,
against a local trust root only, through real registries, layouts and archives.

The Python-level tests call ``api.verify`` / ``api.pull`` with
``checks=[signature_check(trust_root, require)]`` (what ``--trust-root`` /
``--require-signature`` wire up). The ``test_cli_*`` tests run the CLI and need the lead's
wiring of those options (and of ``push --attach-signatures``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from stella_oci import api
from stella_oci.errors import InvalidInputError, OfflineError, VerificationError
from stella_oci.export.annotations import compute_annotations
from stella_oci.export.canonical import digest_to_http, manifest_digest
from stella_oci.export.models import ExportManifest
from stella_oci.transport.options import TransportOptions
from stella_oci.verbs.common import RunOptions
from stella_oci.verbs.pull import verify_directory
from stella_oci.verbs.referrers import attach, discover
from stella_oci.verbs.signatures import signature_check
from tests.support.bundles import EXAMPLES, make_bundle, read_export_json, tree, write_export_json
from tests.support.referrers_server import start_referrers_proxy
from tests.support.signing import (
    SLSA_PROVENANCE_V1,
    in_toto_statement,
    sign_example_bundle,
    x_stella_signature,
)

model_of = ExportManifest.from_json_obj

KEYS = EXAMPLES / "keys"
ED_KEY = KEYS / "EXAMPLE-ONLY-ed25519.key"
EC_KEY = KEYS / "EXAMPLE-ONLY-ecdsa-p256.key"
ED_PUB = KEYS / "EXAMPLE-ONLY-ed25519.pub"
EC_PUB = KEYS / "EXAMPLE-ONLY-ecdsa-p256.pub"
DSSE = "application/vnd.dsse.envelope.v1+json"
FILES = {"data/a.json": b'{"a": 1}\n', "data/b.ndjson": b'{"b": 2}\n{"b": 3}\n'}
OFFLINE = RunOptions(transport=TransportOptions(offline=True))


def sha_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_provenance(root: Path, export_digest: str | None = None) -> None:
    export_bytes = (root / "export.json").read_bytes()
    subjects = {"export.json": export_digest or sha_hex(export_bytes)}
    subjects.update({p: sha_hex(b) for p, b in FILES.items()})
    (root / "provenance.json").write_bytes(in_toto_statement(subjects, SLSA_PROVENANCE_V1, {}))


def signed_bundle(
    tmp_path: Path,
    name: str = "bundle",
    *,
    key: Path = ED_KEY,
    headers: bool = False,
    provenance: bool = True,
) -> Path:
    """A bundle with provenance.json, export.json.dsse.json and provenance.dsse.json signed by ``key``;
    with ``headers`` export.json also carries integrity.httpHeaders Digest and X-Stella-Signature."""
    root = make_bundle(tmp_path / name, FILES)
    if headers:
        doc = read_export_json(root)
        anns = compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=None, user={})
        doc["integrity"] = {
            "httpHeaders": {
                "Digest": digest_to_http(manifest_digest(doc)),
                "X-Stella-Signature": x_stella_signature(doc, key.read_bytes()),
            },
            "oci": {"annotations": {k: v for k, v in anns.items() if k.startswith("io.stellaops.")}},
        }
        write_export_json(root, doc)
    if provenance:
        write_provenance(root)
    sign_example_bundle(root, key)
    return root


def check(trust: Path | None = ED_PUB, require: bool = True):
    return signature_check(trust, require)


def push(bundle: Path, ref: str) -> str:
    return api.push(bundle, ref).digest


def flip_in_envelope(path: Path, field: str) -> None:
    """Change one byte of the decoded ``payload`` or ``signatures[0].sig`` and re-encode."""
    env = json.loads(path.read_bytes())
    if field == "payload":
        raw = bytearray(base64.b64decode(env["payload"]))
        raw[len(raw) // 2] ^= 0x01
        env["payload"] = base64.b64encode(bytes(raw)).decode()
    else:
        raw = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
        raw[10] ^= 0x01
        env["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    path.write_text(json.dumps(env, sort_keys=True, separators=(",", ":")) + "\n")


# ------------------------------------------------------------------ (2) valid, tampered, wrong key
def test_valid_envelopes_verify_from_layers(registry, fresh_repo, tmp_path):
    bundle = signed_bundle(tmp_path, headers=True)
    ref = f"{registry.host}/{fresh_repo}:v1"
    digest = push(bundle, ref)
    result = api.verify(ref, checks=[check(KEYS)])
    sig = result.signatures
    assert sig is not None and result.digest == digest
    assert sorted(e.name for e in sig.envelopes) == ["export.json.dsse.json", "provenance.dsse.json"]
    assert all(e.verified and e.key_name == "EXAMPLE-ONLY-ed25519.pub" for e in sig.envelopes)
    assert sig.stella_signature.verified is True
    assert sig.digest_header.startswith("sha-256=")
    assert sig.provenance.export_json_subject == "export.json"
    assert sig.export_json_sha256 == sha_hex((bundle / "export.json").read_bytes())
    assert sig.verified_count == 3
    assert {s.name: s.found_as for s in sig.sources} == {
        "export.json.dsse.json": ["layer export.json.dsse.json"],
        "provenance.dsse.json": ["layer provenance.dsse.json"],
        "provenance.json": ["layer provenance.json"],
    }
    # pull runs the same check and writes the bundle
    pulled = api.pull(ref, tmp_path / "got", checks=[check(ED_PUB)])
    assert pulled.signatures and pulled.signatures.verified_count == 3
    assert tree(tmp_path / "got") == tree(bundle)


def test_one_byte_changed_in_export_json_fails(registry, fresh_repo, tmp_path):
    bundle = signed_bundle(tmp_path)
    doc = read_export_json(bundle)
    doc["selectors"]["tenants"] = ["acmf"]  # still schema-valid; the artifact itself is consistent
    write_export_json(bundle, doc)
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(bundle, ref)  # re-pushed with the old signatures
    with pytest.raises(VerificationError) as e:
        api.verify(ref, checks=[check()])
    assert e.value.exit_code == 3
    assert e.value.message.startswith("export.json.dsse.json: payload")
    assert "is not export.json" in e.value.message
    # the same bundle on disk fails the same way, and pull leaves nothing behind
    with pytest.raises(VerificationError, match=r"export\.json\.dsse\.json"):
        verify_directory(bundle, checks=[check()])
    with pytest.raises(VerificationError):
        api.pull(ref, tmp_path / "out", checks=[check()])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("field", ["payload", "signature"])
def test_one_byte_changed_in_the_envelope_fails(registry, fresh_repo, tmp_path, field):
    bundle = signed_bundle(tmp_path)
    flip_in_envelope(bundle / "export.json.dsse.json", field)
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(bundle, ref)
    with pytest.raises(VerificationError) as e:
        api.verify(ref, checks=[check()])
    assert e.value.exit_code == 3
    assert e.value.message.startswith("export.json.dsse.json: signature does not verify with any trusted key")
    # without a trust root the form and binding checks still run (a changed payload no longer binds)
    if field == "payload":
        with pytest.raises(VerificationError, match=r"is not export\.json"):
            api.verify(ref, checks=[check(None, require=False)])
    else:
        assert api.verify(ref, checks=[check(None, require=False)]).signatures is not None


def test_signature_by_a_key_not_in_the_trust_root_fails(registry, fresh_repo, tmp_path):
    bundle = signed_bundle(tmp_path, key=EC_KEY)
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(bundle, ref)
    with pytest.raises(VerificationError) as e:
        api.verify(ref, checks=[check(ED_PUB)])
    assert e.value.exit_code == 3 and "does not verify with any trusted key" in e.value.message
    assert api.verify(ref, checks=[check(EC_PUB)]).signatures.verified_count == 2


def test_require_signature_without_any_signature_fails(registry, fresh_repo, tmp_path):
    bundle = make_bundle(tmp_path / "bundle", FILES)
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(bundle, ref)
    with pytest.raises(VerificationError) as e:
        api.verify(ref, checks=[check(ED_PUB, require=True)])
    assert e.value.exit_code == 3 and "signatures are required" in e.value.message
    assert api.verify(ref, checks=[check(ED_PUB, require=False)]).signatures.verified_count == 0


def test_tampered_x_stella_signature_and_digest_header_fail(registry, fresh_repo, tmp_path):
    bundle = signed_bundle(tmp_path, headers=True, provenance=False)
    doc = read_export_json(bundle)
    doc["integrity"]["httpHeaders"]["Digest"] = "sha-256=" + base64.b64encode(b"\0" * 32).decode()
    write_export_json(bundle, doc)
    sign_example_bundle(bundle, ED_KEY)  # envelopes re-made: only the header is wrong
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(bundle, ref)
    with pytest.raises(VerificationError) as e:
        api.verify(ref, checks=[check()])
    assert e.value.exit_code == 3 and "integrity.httpHeaders.Digest" in e.value.message

    other = signed_bundle(tmp_path, "other", headers=True, provenance=False)
    doc = read_export_json(other)
    doc["integrity"]["httpHeaders"]["X-Stella-Signature"] = x_stella_signature(doc, EC_KEY.read_bytes())
    write_export_json(other, doc)
    sign_example_bundle(other, ED_KEY)
    push(other, f"{registry.host}/{fresh_repo}:v2")
    with pytest.raises(VerificationError) as e:
        api.verify(f"{registry.host}/{fresh_repo}:v2", checks=[check(ED_PUB)])
    assert "X-Stella-Signature" in e.value.message and "does not verify" in e.value.message


# ------------------------------------------------------------------ (3) provenance subject
@pytest.mark.parametrize("signed", [False, True])
def test_provenance_subject_not_matching_export_json_fails(registry, fresh_repo, tmp_path, signed):
    bundle = make_bundle(tmp_path / "bundle", FILES)
    write_provenance(bundle, export_digest="0" * 64)
    if signed:
        sign_example_bundle(bundle, ED_KEY)
        (bundle / "export.json.dsse.json").unlink()
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(bundle, ref)
    with pytest.raises(VerificationError) as e:
        api.verify(ref, checks=[check(ED_PUB, require=False)])
    assert e.value.exit_code == 3
    assert f"subject export.json has sha256 {'0' * 64}" in e.value.message


# ------------------------------------------------------------------ envelopes as referrers
@pytest.mark.parametrize("native", [False, True])
def test_envelopes_found_as_referrers(registry, fresh_repo, tmp_path, native):
    bundle = signed_bundle(tmp_path)
    aside = tmp_path / "aside"
    aside.mkdir()
    for name in ("export.json.dsse.json", "provenance.dsse.json"):
        shutil.move(bundle / name, aside / name)
    proxy = start_referrers_proxy(registry.host) if native else None
    try:
        host = proxy.host if proxy else registry.host
        ref = f"{host}/{fresh_repo}:v1"
        push(bundle, ref)
        with pytest.raises(VerificationError, match="signatures are required"):
            api.verify(ref, checks=[check()])  # provenance.json alone is not a signature
        a = attach(ref, aside / "export.json.dsse.json", artifact_type=DSSE)
        assert a.via == ("referrers-api" if native else "fallback-tag")
        result = api.verify(ref, checks=[check()])
        sig = result.signatures
        assert sig is not None and sig.verified_count == 1
        assert [s.found_as for s in sig.sources if s.kind == "envelope"] == [[f"referrer {a.digest}"]]

        bad = tmp_path / "bad.dsse.json"
        shutil.copy(aside / "provenance.dsse.json", bad)
        flip_in_envelope(bad, "signature")
        b = attach(ref, bad, artifact_type=DSSE)
        with pytest.raises(VerificationError) as e:
            api.verify(ref, checks=[check()])
        assert e.value.message.startswith(f"referrer {b.digest} (bad.dsse.json): signature does not verify")
    finally:
        if proxy:
            proxy.stop()


def test_same_envelope_as_layer_and_referrer_is_checked_once(registry, fresh_repo, tmp_path):
    bundle = signed_bundle(tmp_path)
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(bundle, ref)
    a = attach(ref, bundle / "export.json.dsse.json", artifact_type=DSSE)
    sig = api.verify(ref, checks=[check()]).signatures
    assert sig is not None
    assert len(sig.envelopes) == 2
    found = {s.name: s.found_as for s in sig.sources}
    assert found["export.json.dsse.json"] == ["layer export.json.dsse.json", f"referrer {a.digest}"]


# ------------------------------------------------------------------ (4) registry A -> archive -> registry B
def test_copy_brings_referrers_and_verifies_offline(registry, fresh_repo, tmp_path):
    bundle = signed_bundle(tmp_path, headers=True)
    aside = tmp_path / "aside"
    aside.mkdir()
    for name in ("export.json.dsse.json", "provenance.dsse.json"):
        shutil.move(bundle / name, aside / name)
    ref_a = f"{registry.host}/{fresh_repo}-a:v1"
    digest = push(bundle, ref_a)
    attached = sorted(
        attach(ref_a, aside / n, artifact_type=DSSE).digest for n in sorted(p.name for p in aside.iterdir())
    )

    archive = tmp_path / "exports.tar"
    api.copy(ref_a, f"oci-archive:{archive}:v1")
    ref_b = f"{registry.host}/{fresh_repo}-b:v1"
    api.copy(f"oci-archive:{archive}:v1", ref_b)

    assert sorted(r.digest for r in discover(ref_b).referrers) == attached
    assert sorted(r.digest for r in discover(f"oci-archive:{archive}:v1", run=OFFLINE).referrers) == attached
    result_b = api.verify(ref_b, checks=[check(KEYS)])
    assert result_b.digest == digest and result_b.signatures.verified_count == 3

    # the network cut: from the archive with --offline, the same checks pass
    offline = api.verify(f"oci-archive:{archive}:v1", run=OFFLINE, checks=[check(KEYS)])
    assert offline.digest == digest and offline.signatures.verified_count == 3
    pulled = api.pull(f"oci-archive:{archive}:v1", tmp_path / "got", run=OFFLINE, checks=[check(KEYS)])
    assert pulled.signatures.verified_count == 3
    with pytest.raises(OfflineError):
        api.verify(ref_b, run=OFFLINE, checks=[check(KEYS)])


# ------------------------------------------------------------------ local bundles and the examples
@pytest.mark.parametrize("name", ["mirror-full", "trivy-db"])
def test_checked_in_examples_carry_real_signatures(name, tmp_path):
    result = api.verify(EXAMPLES / name, checks=[check(KEYS)])
    sig = result.signatures
    assert sig is not None and sig.verified_count >= 2
    assert all(e.key_name == "EXAMPLE-ONLY-ed25519.pub" for e in sig.envelopes)
    if name == "mirror-full":
        assert sig.stella_signature.verified is True
    copy = shutil.copytree(EXAMPLES / name, tmp_path / name)
    flip_in_envelope(copy / "export.json.dsse.json", "signature")
    with pytest.raises(VerificationError, match=r"export\.json\.dsse\.json: signature does not verify"):
        api.verify(copy, checks=[check(KEYS)])


def test_trust_root_problems_are_exit_2(tmp_path):
    with pytest.raises(InvalidInputError) as e:
        signature_check(None, True)
    assert e.value.exit_code == 2 and "--trust-root" in e.value.message
    with pytest.raises(InvalidInputError):
        signature_check(tmp_path / "missing.pem", False)
    with pytest.raises(InvalidInputError):
        signature_check(ED_KEY, False)  # a private key is not a trust root


# ------------------------------------------------------------------ CLI (needs the lead's wiring)
def test_cli_verify_and_pull_with_trust_root(registry, fresh_repo, tmp_path, run_cli):
    bundle = signed_bundle(tmp_path)
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(bundle, ref)
    code, out, err = run_cli("verify", ref, "--trust-root", KEYS, "--require-signature", "--format", "json")
    assert code == 0, err + out
    assert json.loads(out)["signatures"]["verifiedCount"] == 2
    code, out, err = run_cli(
        "pull", ref, "-o", tmp_path / "got", "--trust-root", ED_PUB, "--require-signature"
    )
    assert code == 0, err + out

    code, out, err = run_cli("verify", ref, "--trust-root", EC_PUB, "--require-signature", "--format", "json")
    assert code == 3, err + out
    assert "export.json.dsse.json" in json.loads(out)["error"]["message"]
    unsigned = make_bundle(tmp_path / "unsigned", FILES)
    push(unsigned, f"{registry.host}/{fresh_repo}:v2")
    code, out, err = run_cli(
        "verify", f"{registry.host}/{fresh_repo}:v2", "--trust-root", KEYS, "--require-signature"
    )
    assert code == 3, err + out
    code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}:v2", "--require-signature")
    assert code == 2, err + out


def test_cli_push_attach_signatures(registry, fresh_repo, tmp_path, run_cli):
    bundle = signed_bundle(tmp_path)
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, out, err = run_cli("push", bundle, ref, "--attach-signatures", "--format", "json")
    assert code == 0, err + out
    found = discover(ref)
    titles = sorted(r.annotations.get("org.opencontainers.image.title", "") for r in found.referrers)
    assert titles == ["export.json.dsse.json", "provenance.dsse.json", "provenance.json"]
    code, out, err = run_cli("verify", ref, "--trust-root", KEYS, "--require-signature", "--format", "json")
    assert code == 0, err + out
