"""Output for scripts (issue 12): every command's --format json document against its shipped
JSON Schema, one naming everywhere (digest vs exportManifestDigest, camelCase, referrers), the
checks that ran and no others, and the --format template / --digest-only forms."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from stella_oci.export.canonical import manifest_digest
from stella_oci.output_schemas import SCHEMA_DIR, commands, render, schema_for, shipped
from stella_oci.verbs.pull import CHECK_BLOBS, CHECK_DOCKER_CONTENT_DIGEST, CHECK_PINNED, CHECK_SIGNATURES
from tests.support.bundles import copy_example, read_export_json

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
KEYS = EXAMPLES / "keys"
NOTE = "application/vnd.example.note.v1+json"
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
#: Members whose keys are data, or defined by someone else's schema (CONTRACT section 7; OCI).
FOREIGN = {"annotations", "manifest", "staleness", "provenance", "details"}


def validate(command: str, doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(shipped(command)).validate(doc)


def camel_keys(doc: Any, where: str = "") -> list[str]:
    """Keys that are not camelCase, outside the foreign members."""
    bad: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if not CAMEL.match(k):
                bad.append(f"{where}/{k}")
            if k not in FOREIGN:
                bad += camel_keys(v, f"{where}/{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            bad += camel_keys(v, f"{where}/{i}")
    return bad


def pushed_type(doc: dict[str, Any]) -> str:
    return "application/vnd.stellaops.export.v1+json"


def test_shipped_schemas_are_the_generated_ones() -> None:
    names = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    assert names == sorted(f"{c}.schema.json" for c in commands())
    for command in commands():
        shipped_text = (SCHEMA_DIR / f"{command}.schema.json").read_text(encoding="utf-8")
        assert shipped_text == render(schema_for(command)), (
            f"{command}.schema.json is stale: run python -m stella_oci.output_schemas"
        )
        jsonschema.Draft202012Validator.check_schema(json.loads(shipped_text))


def test_every_command_document_validates(registry, fresh_repo, run_cli, tmp_path) -> None:
    def cli_json(command: str, *args: Any, schema: str | None = None) -> dict[str, Any]:
        code, out, err = run_cli(command, *args, "--format", "json")
        assert code == 0, err + out
        doc = json.loads(out)
        validate(schema or command, doc)
        assert camel_keys(doc) == [], f"{command}: keys not camelCase"
        return doc

    bundle = copy_example("mirror-full", tmp_path / "bundle")
    export_digest = manifest_digest(read_export_json(bundle))
    ref = f"{registry.host}/{fresh_repo}:v1"

    pushed = cli_json("push", bundle, ref, "--attach-signatures")
    # digest is the OCI manifest digest; exportManifestDigest the io.stellaops annotation
    assert pushed["exportManifestDigest"] == export_digest != pushed["digest"]
    assert pushed["annotations"]["io.stellaops.export.manifest-digest"] == export_digest
    assert "manifestDigest" not in pushed
    assert len(pushed["referrers"]) == 3
    assert all(set(r) >= {"digest", "mediaType", "size", "artifactType"} for r in pushed["referrers"])

    pulled = cli_json("pull", ref, "--output", tmp_path / "got", "--trust-root", KEYS)
    assert pulled["digest"] == pushed["digest"] and pulled["exportManifestDigest"] == export_digest
    assert pulled["signatures"]["verifiedCount"] == 3
    assert pulled["signatures"]["envelopes"][0]["keyName"].startswith("EXAMPLE-ONLY")
    assert CHECK_DOCKER_CONTENT_DIGEST in pulled["checks"] and CHECK_SIGNATURES in pulled["checks"]
    assert pulled["checks"][-1] == CHECK_BLOBS
    assert CHECK_PINNED not in pulled["checks"]  # nothing was pinned

    verified = cli_json("verify", f"{ref.rsplit(':', 1)[0]}@{pushed['digest']}")
    assert CHECK_PINNED in verified["checks"] and CHECK_BLOBS in verified["checks"]
    assert not any(c == CHECK_SIGNATURES or "staleness" in c for c in verified["checks"])  # not asked for

    local = cli_json("verify", tmp_path / "got", "--expect-digest", pushed["digest"], schema="verify")
    assert local["digest"] == pushed["digest"]
    assert CHECK_BLOBS not in local["checks"] and CHECK_DOCKER_CONTENT_DIGEST not in local["checks"]
    assert any("--expect-digest" in c for c in local["checks"])

    inspected = cli_json("inspect", ref)
    assert inspected["digest"] == pushed["digest"]

    copied = cli_json("copy", ref, f"oci-archive:{tmp_path / 'a.tar'}:v1")
    assert sorted(r["digest"] for r in copied["referrers"]) == sorted(r["digest"] for r in pushed["referrers"])

    note = tmp_path / "note.txt"
    note.write_text("hello")
    attached = cli_json("attach", ref, note, "--artifact-type", NOTE)
    assert attached["layer"]["digest"] == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    found = cli_json("discover", ref, "--artifact-type", NOTE)
    assert [r["digest"] for r in found["referrers"]] == [attached["digest"]]
    assert set(found["referrers"][0]) == set(pushed["referrers"][0])  # one referrer shape

    repo = f"{registry.host}/{fresh_repo}"
    resolved = cli_json("resolve", ref)
    assert resolved["reference"] == f"{repo}@{pushed['digest']}"
    raw = cli_json("manifest", ref)
    assert raw["digest"] == pushed["digest"] and raw["manifest"]["artifactType"] == pushed_type(raw)
    tagged = cli_json("tag", ref, "also")
    assert tagged["tags"] == ["also"]
    listed = cli_json("tags", repo, "--sort", "created")
    assert {"v1", "also"} <= set(listed["tags"]) and listed["details"]
    fetched = cli_json("fetch", ref, "data/index.json", "-o", tmp_path / "index.json")
    assert fetched["layer"]["digest"] == "sha256:" + hashlib.sha256((bundle / "data/index.json").read_bytes()).hexdigest()
    deleted = cli_json("delete", f"{repo}@{attached['digest']}")
    assert deleted["digest"] == attached["digest"]

    code, out, _ = run_cli("pull", f"{registry.host}/{fresh_repo}:nope", "-o", tmp_path / "x", "--format", "json")
    assert code == 4
    validate("error", json.loads(out))


def test_digest_only_and_template(registry, fresh_repo, run_cli, tmp_path) -> None:
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, out, err = run_cli("push", bundle, ref, "--digest-only")
    assert code == 0, err
    digest = out.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest) and out == digest + "\n"
    code, out, err = run_cli("inspect", ref, "--format", "{{.digest}} {{ .layers.0.path }}")
    assert (code, out) == (0, f"{digest} export.json\n"), err
    code, out, err = run_cli("verify", ref, "--format", "{{.exportManifestDigest}}")
    assert (code, out) == (0, manifest_digest(read_export_json(bundle)) + "\n"), err
    code, out, err = run_cli("inspect", ref, "--format", "{{.nope}}")
    assert code == 2 and out == "" and ".nope" in err and ".digest" in err
    code, out, err = run_cli("inspect", ref, "--format", "yaml")
    assert code == 2 and "'{{.digest}}'" in err
