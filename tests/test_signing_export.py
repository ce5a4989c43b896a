"""verify_export_signatures: envelopes, provenance and integrity headers bound to export.json."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.canonical import http_digest_header, manifest_digest
from stella_oci.signing import (
    PAYLOAD_TYPE_EXPORT_MANIFEST,
    PAYLOAD_TYPE_IN_TOTO,
    TrustRoot,
    verify_export_signatures,
)
from tests.support.signing import (
    in_toto_statement,
    sign_envelope,
    sign_example_bundle,
    x_stella_signature,
)

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "examples" / "keys"
ECDSA_KEY = (KEYS / "EXAMPLE-ONLY-ecdsa-p256.key").read_bytes()
ED25519_KEY = (KEYS / "EXAMPLE-ONLY-ed25519.key").read_bytes()
SLSA = "https://slsa.dev/provenance/v1"

DATA = {"data/a.json": b'{"a":1}\n', "data/b.ndjson": b'{"b":2}\n{"b":3}\n'}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _doc(*, integrity: bool, key: bytes = ECDSA_KEY) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "https://stellaops.io/export-center/manifest/v1alpha2",
        "version": "1.1.0",
        "exportId": "exp-signing-test-0001",
        "profile": {"kind": "mirror", "variant": "full", "name": "mirror-full"},
        "tenant": "acme",
        "selectors": {"tenants": ["acme"]},
        "generatedAt": "2026-11-20T08:00:00Z",
        "contents": [
            {"path": p, "digest": "sha256:" + _sha(b), "bytes": len(b)} for p, b in sorted(DATA.items())
        ],
    }
    if integrity:
        doc["integrity"] = {
            "httpHeaders": {
                "Digest": http_digest_header(doc),
                "X-Stella-Signature": x_stella_signature(doc, key),
            },
            "oci": {
                "annotations": {
                    "io.stellaops.export.profile": "mirror:full",
                    "io.stellaops.export.run": doc["exportId"],
                    "io.stellaops.export.manifest-digest": manifest_digest(doc),
                    "io.stellaops.export.provenance-ref": "sha256:" + "e" * 64,
                }
            },
        }
    return doc


def _bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()


@pytest.fixture(scope="module")
def root() -> TrustRoot:
    return TrustRoot.load(KEYS)


@pytest.fixture(scope="module")
def export_json() -> bytes:
    return _bytes(_doc(integrity=True))


def _statement(export_json: bytes, **extra: str) -> bytes:
    subjects = {"export.json": _sha(export_json), **extra}
    return in_toto_statement(subjects, SLSA, {"builder": {"id": "test"}})


# --- the good path ----------------------------------------------------------------------------


def test_all_kinds_verify_and_are_reported(root: TrustRoot, export_json: bytes) -> None:
    manifest_env = sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_json, ECDSA_KEY)
    statement = _statement(export_json, **{"data/a.json": _sha(DATA["data/a.json"])})
    statement_env = sign_envelope(PAYLOAD_TYPE_IN_TOTO, statement, ED25519_KEY)
    provenance = sign_envelope(PAYLOAD_TYPE_IN_TOTO, statement, ED25519_KEY)
    report = verify_export_signatures(
        export_json=export_json,
        envelopes=[("z.dsse.json", statement_env), ("export.json.dsse.json", manifest_env)],
        provenance=provenance,
        trust_root=root,
        require=True,
    )
    ecdsa_id = root.select("EXAMPLE-ONLY-ecdsa-p256")[0].key_id
    ed_id = root.select("EXAMPLE-ONLY-ed25519")[0].key_id
    assert [(e.name, e.payload_type, e.key_id, e.verified, e.binds_to_export) for e in report.envelopes] == [
        ("export.json.dsse.json", PAYLOAD_TYPE_EXPORT_MANIFEST, ecdsa_id, True, True),
        ("z.dsse.json", PAYLOAD_TYPE_IN_TOTO, ed_id, True, True),
    ]
    assert report.envelopes[0].binding == "payload is export.json"
    assert report.envelopes[1].binding == "in-toto subject export.json (export.json bytes)"
    assert report.provenance is not None and report.provenance.enveloped
    assert report.provenance.envelope is not None and report.provenance.envelope.key_id == ed_id
    assert report.provenance.subjects_checked == ["data/a.json"]
    assert report.stella_signature is not None and report.stella_signature.key_id == ecdsa_id
    assert report.stella_signature.binding == "in-toto subject export.json (manifest digest)"
    assert len(json.loads(export_json)["integrity"]["httpHeaders"]["X-Stella-Signature"]) < 2048
    assert report.digest_header == http_digest_header(json.loads(export_json))
    assert report.export_json_sha256 == _sha(export_json)
    assert report.verified_count == 4
    assert sorted(report.trust_root) == sorted([ecdsa_id, ed_id])
    json.loads(report.model_dump_json())  # serializable for --format json


def test_without_trust_root_only_form_and_binding(export_json: bytes) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    env = sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_json, stranger, keyid="who-knows")
    report = verify_export_signatures(
        export_json=export_json,
        envelopes=[("s.dsse.json", env)],
        provenance=None,
        trust_root=None,
        require=False,
    )
    (result,) = report.envelopes
    assert (result.verified, result.status, result.key_id, result.binds_to_export) == (
        False,
        "unverified",
        None,
        True,
    )
    assert result.keyid_hints == ["who-knows"]
    assert report.stella_signature is not None and report.stella_signature.status == "unverified"
    # binding is still enforced without a trust root
    other = sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_json + b" ", stranger)
    with pytest.raises(VerificationError, match=r"is not export\.json"):
        verify_export_signatures(
            export_json=export_json,
            envelopes=[("o.dsse.json", other)],
            provenance=None,
            trust_root=None,
            require=False,
        )


def test_bare_provenance_statement_binds(root: TrustRoot, export_json: bytes) -> None:
    report = verify_export_signatures(
        export_json=export_json,
        envelopes=[],
        provenance=_statement(export_json),
        trust_root=root,
        require=False,
    )
    assert report.provenance is not None
    assert not report.provenance.enveloped
    assert report.provenance.predicate_type == SLSA
    assert report.provenance.export_json_subject == "export.json"


# --- each check fails on one changed byte -----------------------------------------------------


def test_one_byte_changed_in_export_json_breaks_binding(root: TrustRoot) -> None:
    export_json = _bytes(_doc(integrity=False))
    manifest_env = sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_json, ECDSA_KEY)
    statement_env = sign_envelope(PAYLOAD_TYPE_IN_TOTO, _statement(export_json), ECDSA_KEY)
    changed = export_json.replace(b"acme", b"acmf", 1)
    assert len(changed) == len(export_json) and changed != export_json
    with pytest.raises(VerificationError) as info:
        verify_export_signatures(
            export_json=changed,
            envelopes=[("export.json.dsse.json", manifest_env)],
            provenance=None,
            trust_root=root,
            require=True,
        )
    assert info.value.exit_code == 3
    assert info.value.message == (
        f"export.json.dsse.json: payload ({PAYLOAD_TYPE_EXPORT_MANIFEST}) is not export.json: it hashes to "
        f"sha256 {_sha(export_json)}, export.json hashes to {_sha(changed)}"
    )
    with pytest.raises(VerificationError) as info:
        verify_export_signatures(
            export_json=changed,
            envelopes=[("st.dsse.json", statement_env)],
            provenance=None,
            trust_root=root,
            require=True,
        )
    assert info.value.message == (
        f"st.dsse.json: in-toto Statement subject export.json has sha256 {_sha(export_json)}, "
        f"export.json hashes to {_sha(changed)}"
    )


def test_one_byte_changed_in_export_json_breaks_digest_header(root: TrustRoot, export_json: bytes) -> None:
    changed = export_json.replace(b'"tenant": "acme"', b'"tenant": "acmf"')
    assert changed != export_json
    with pytest.raises(VerificationError, match=r"integrity\.httpHeaders\.Digest is 'sha-256=") as info:
        verify_export_signatures(
            export_json=changed, envelopes=[], provenance=None, trust_root=root, require=False
        )
    assert info.value.exit_code == 3
    assert manifest_digest(json.loads(changed)) in info.value.message


def test_one_byte_changed_in_payload_or_signature(root: TrustRoot, export_json: bytes) -> None:
    env = json.loads(sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_json, ECDSA_KEY))
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[10] ^= 0x01
    bad_payload = json.dumps(dict(env, payload=base64.b64encode(bytes(payload)).decode())).encode()
    with pytest.raises(
        VerificationError, match=r"^p\.dsse\.json: signature does not verify with any trusted key"
    ):
        verify_export_signatures(
            export_json=export_json,
            envelopes=[("p.dsse.json", bad_payload)],
            provenance=None,
            trust_root=root,
            require=False,
        )
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[20] ^= 0x80
    bad_sig = json.dumps(
        dict(env, signatures=[{"keyid": "", "sig": base64.b64encode(bytes(sig)).decode()}])
    ).encode()
    with pytest.raises(
        VerificationError, match=r"^s\.dsse\.json: signature does not verify with any trusted key"
    ):
        verify_export_signatures(
            export_json=export_json,
            envelopes=[("s.dsse.json", bad_sig)],
            provenance=None,
            trust_root=root,
            require=True,
        )


def test_key_not_in_trust_root_exit_3(export_json: bytes) -> None:
    only_ed = TrustRoot.load(KEYS / "EXAMPLE-ONLY-ed25519.pub")
    env = sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_json, ECDSA_KEY, keyid="ci-signer")
    with pytest.raises(VerificationError) as info:
        verify_export_signatures(
            export_json=_bytes(_doc(integrity=False)),
            envelopes=[("e.dsse.json", env)],
            provenance=None,
            trust_root=only_ed,
            require=False,
        )
    assert info.value.exit_code == 3
    assert "e.dsse.json: signature by key 'ci-signer' not in the trust root" in info.value.message
    # the X-Stella-Signature header is held to the same rule
    with pytest.raises(VerificationError, match=r"X-Stella-Signature: signature does not verify"):
        verify_export_signatures(
            export_json=export_json, envelopes=[], provenance=None, trust_root=only_ed, require=False
        )


def test_provenance_subject_mismatch_exit_3(root: TrustRoot, export_json: bytes) -> None:
    wrong = "0" * 64
    statement = in_toto_statement({"export.json": wrong}, SLSA, {})
    for provenance in (statement, sign_envelope(PAYLOAD_TYPE_IN_TOTO, statement, ED25519_KEY)):
        with pytest.raises(VerificationError) as info:
            verify_export_signatures(
                export_json=export_json, envelopes=[], provenance=provenance, trust_root=root, require=False
            )
        assert info.value.exit_code == 3
        assert info.value.message == (
            f"provenance.json: provenance subject export.json has sha256 {wrong}, "
            f"export.json hashes to {_sha(export_json)}"
        )


def test_provenance_other_subject_must_match_contents(root: TrustRoot, export_json: bytes) -> None:
    statement = _statement(export_json, **{"data/b.ndjson": _sha(b"something else")})
    with pytest.raises(
        VerificationError, match=r"subject data/b\.ndjson has sha256 .*, export\.json contents lists"
    ):
        verify_export_signatures(
            export_json=export_json, envelopes=[], provenance=statement, trust_root=root, require=False
        )


def test_provenance_without_export_json_subject(root: TrustRoot, export_json: bytes) -> None:
    statement = in_toto_statement({"data/a.json": _sha(DATA["data/a.json"])}, SLSA, {})
    with pytest.raises(
        VerificationError, match=r"provenance\.json: provenance names no export\.json subject"
    ):
        verify_export_signatures(
            export_json=export_json, envelopes=[], provenance=statement, trust_root=root, require=False
        )


def test_require(root: TrustRoot) -> None:
    plain = _bytes(_doc(integrity=False))
    with pytest.raises(VerificationError, match="signatures are required") as info:
        verify_export_signatures(
            export_json=plain, envelopes=[], provenance=None, trust_root=root, require=True
        )
    assert info.value.exit_code == 3
    # an unsigned provenance.json is no signature
    with pytest.raises(VerificationError, match="signatures are required"):
        verify_export_signatures(
            export_json=plain, envelopes=[], provenance=_statement(plain), trust_root=root, require=True
        )
    with pytest.raises(InvalidInputError, match="no trust root") as info2:
        verify_export_signatures(
            export_json=plain, envelopes=[], provenance=None, trust_root=None, require=True
        )
    assert info2.value.exit_code == 2
    # without require, nothing to check is fine
    report = verify_export_signatures(
        export_json=plain, envelopes=[], provenance=None, trust_root=root, require=False
    )
    assert report.envelopes == [] and report.verified_count == 0


def test_unknown_payload_type_and_statement_without_export_json(root: TrustRoot, export_json: bytes) -> None:
    env = sign_envelope("application/json", export_json, ECDSA_KEY)
    with pytest.raises(
        VerificationError, match="payloadType 'application/json' is not one stella-oci understands"
    ):
        verify_export_signatures(
            export_json=export_json,
            envelopes=[("j.dsse.json", env)],
            provenance=None,
            trust_root=root,
            require=False,
        )
    statement = in_toto_statement({"other.json": "a" * 64}, SLSA, {})
    env = sign_envelope(PAYLOAD_TYPE_IN_TOTO, statement, ECDSA_KEY)
    with pytest.raises(VerificationError, match=r"names no export\.json subject"):
        verify_export_signatures(
            export_json=export_json,
            envelopes=[("t.dsse.json", env)],
            provenance=None,
            trust_root=root,
            require=False,
        )


def test_subject_may_be_a_path_ending_in_export_json(root: TrustRoot, export_json: bytes) -> None:
    statement = in_toto_statement({"exports/exp-1/export.json": _sha(export_json)}, SLSA, {})
    env = sign_envelope(PAYLOAD_TYPE_IN_TOTO, statement, ECDSA_KEY)
    report = verify_export_signatures(
        export_json=export_json,
        envelopes=[("t.dsse.json", env)],
        provenance=None,
        trust_root=root,
        require=True,
    )
    assert report.envelopes[0].binding == "in-toto subject exports/exp-1/export.json (export.json bytes)"


def test_x_stella_signature_placeholder_is_refused(export_json: bytes) -> None:
    doc = json.loads(export_json)
    doc["integrity"]["httpHeaders"]["X-Stella-Signature"] = (
        "dsse-b64=" + base64.b64encode(b"placeholder").decode()
    )
    with pytest.raises(VerificationError, match=r"X-Stella-Signature: not a DSSE envelope: not valid JSON"):
        verify_export_signatures(
            export_json=_bytes(doc), envelopes=[], provenance=None, trust_root=None, require=False
        )
    doc["integrity"]["httpHeaders"]["X-Stella-Signature"] = "sig=abc"
    with pytest.raises(VerificationError, match="must be 'dsse-b64=' followed by"):
        verify_export_signatures(
            export_json=_bytes(doc), envelopes=[], provenance=None, trust_root=None, require=False
        )


def test_x_stella_signature_of_another_export_is_refused(root: TrustRoot) -> None:
    doc = _doc(integrity=True)
    other = dict(doc, exportId="exp-signing-test-0002")
    doc["integrity"]["httpHeaders"]["X-Stella-Signature"] = x_stella_signature(other, ECDSA_KEY)
    with pytest.raises(VerificationError) as info:
        verify_export_signatures(
            export_json=_bytes(doc), envelopes=[], provenance=None, trust_root=root, require=False
        )
    assert info.value.message == (
        "export.json integrity.httpHeaders.X-Stella-Signature: in-toto Statement subject export.json has "
        f"sha256 {manifest_digest(other)[7:]}, export.json hashes to {_sha(_bytes(doc))} "
        f"(manifest digest {manifest_digest(doc)[7:]})"
    )


def test_x_stella_signature_over_the_canonical_manifest(root: TrustRoot) -> None:
    """The other accepted header form: a manifest payload with the same manifest digest."""
    doc = _doc(integrity=True)
    canonical = rfc8785.dumps({k: v for k, v in doc.items() if k != "integrity"})
    env = sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, canonical, ED25519_KEY)
    doc["integrity"]["httpHeaders"]["X-Stella-Signature"] = "dsse-b64=" + base64.b64encode(env).decode()
    report = verify_export_signatures(
        export_json=_bytes(doc), envelopes=[], provenance=None, trust_root=root, require=True
    )
    assert report.stella_signature is not None
    assert report.stella_signature.binding == "payload has export.json's manifest digest"
    assert report.verified_count == 1
    # a bundle envelope over the same canonical bytes does not bind: bundle envelopes sign the file
    with pytest.raises(VerificationError, match=r"^c\.dsse\.json: payload .* is not export\.json"):
        verify_export_signatures(
            export_json=_bytes(doc),
            envelopes=[("c.dsse.json", env)],
            provenance=None,
            trust_root=root,
            require=True,
        )


# --- examples ---------------------------------------------------------------------------------


def _make_bundle(tmp_path: Path, *, with_provenance: bool) -> Path:
    bundle = tmp_path / "bundle"
    for path, data in DATA.items():
        (bundle / path).parent.mkdir(parents=True, exist_ok=True)
        (bundle / path).write_bytes(data)
    export_json = _bytes(_doc(integrity=True, key=ED25519_KEY))
    (bundle / "export.json").write_bytes(export_json)
    if with_provenance:
        (bundle / "provenance.json").write_bytes(
            _statement(export_json, **{p: _sha(b) for p, b in DATA.items()})
        )
    return bundle


@pytest.mark.parametrize("with_provenance", [False, True])
def test_sign_example_bundle_is_stable_and_verifies(
    tmp_path: Path, root: TrustRoot, with_provenance: bool
) -> None:
    bundle = _make_bundle(tmp_path, with_provenance=with_provenance)
    for key in ("EXAMPLE-ONLY-ed25519.key", "EXAMPLE-ONLY-ecdsa-p256.key"):
        written = sign_example_bundle(bundle, KEYS / key)
        assert [p.name for p in written] == ["export.json.dsse.json", "provenance.dsse.json"]
        first = [p.read_bytes() for p in written]
        assert [p.read_bytes() for p in sign_example_bundle(bundle, KEYS / key)] == first  # byte-stable
        prov = bundle / "provenance.json"
        report = verify_export_signatures(
            export_json=(bundle / "export.json").read_bytes(),
            envelopes=[(p.name, p.read_bytes()) for p in written],
            provenance=prov.read_bytes() if prov.exists() else None,
            trust_root=root,
            require=True,
        )
        assert all(e.verified and e.binds_to_export for e in report.envelopes)
        expected = Path(key).stem
        assert {e.key_name for e in report.envelopes} == {expected + ".pub"}
        if not with_provenance:
            statement = json.loads(base64.b64decode(json.loads(first[1])["payload"]))
            assert [s["name"] for s in statement["subject"]] == [
                "data/a.json",
                "data/b.ndjson",
                "export.json",
            ]


def test_committed_example_bundle_signatures(tmp_path: Path, root: TrustRoot) -> None:
    """The signed examples (examples/mirror-full, signed with the EXAMPLE-ONLY keys) verify."""
    bundle = ROOT / "examples" / "mirror-full"
    envelopes = sorted(bundle.glob("*.dsse.json"))
    assert [p.name for p in envelopes] == ["export.json.dsse.json", "provenance.dsse.json"]
    prov = bundle / "provenance.json"
    export_json = (bundle / "export.json").read_bytes()
    report = verify_export_signatures(
        export_json=export_json,
        envelopes=[(p.name, p.read_bytes()) for p in envelopes],
        provenance=prov.read_bytes() if prov.exists() else None,
        trust_root=root,
        require=True,
    )
    assert report.envelopes and all(e.verified for e in report.envelopes)
    # and a copy with one byte of export.json changed does not
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    changed = export_json.replace(b"acme", b"acmf", 1)
    with pytest.raises(VerificationError):
        verify_export_signatures(
            export_json=changed,
            envelopes=[(p.name, p.read_bytes()) for p in envelopes],
            provenance=None,
            trust_root=root,
            require=True,
        )


def test_verify_bundle_signatures_reads_top_level_and_signatures_dir(tmp_path: Path, root: TrustRoot) -> None:
    from stella_oci.signing import verify_bundle_signatures

    bundle = _make_bundle(tmp_path, with_provenance=True)
    sign_example_bundle(bundle, KEYS / "EXAMPLE-ONLY-ed25519.key")
    (bundle / "signatures" / "ci").mkdir(parents=True)
    export_json = (bundle / "export.json").read_bytes()
    (bundle / "signatures" / "ci" / "extra.dsse.json").write_bytes(
        sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_json, ECDSA_KEY)
    )
    (bundle / "data" / "ignored.dsse.json").write_bytes(b"not read: not a signature location")
    report = verify_bundle_signatures(bundle, trust_root=root, require=True)
    assert [e.name for e in report.envelopes] == [
        "export.json.dsse.json",
        "provenance.dsse.json",
        "signatures/ci/extra.dsse.json",
    ]
    assert report.provenance is not None and report.provenance.subjects_checked == [
        "data/a.json",
        "data/b.ndjson",
    ]
    (bundle / "signatures" / "ci" / "extra.dsse.json").write_bytes(
        sign_envelope(PAYLOAD_TYPE_EXPORT_MANIFEST, export_json[:-1], ECDSA_KEY)
    )
    with pytest.raises(VerificationError, match=r"^signatures/ci/extra\.dsse\.json: payload"):
        verify_bundle_signatures(bundle, trust_root=root, require=False)
