"""Issue 2 acceptance: push, pull, verify and inspect against a real registry."""

from __future__ import annotations

import json
import os
import tarfile
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import requests

import stella_oci
from stella_oci.errors import InvalidInputError, NotFoundError, VerificationError
from stella_oci.export.canonical import manifest_digest
from tests.support.bundles import (
    copy_example,
    read_export_json,
    tree,
    write_export_json,
)

ARTIFACT_TYPE = "application/vnd.stellaops.export.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def tags_of(registry, repo: str) -> list[str] | None:
    r = requests.get(f"{registry.url}/v2/{repo}/tags/list", timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json().get("tags") or []


def push_json(run_cli, *args) -> dict:
    code, out, err = run_cli("push", *args, "--format", "json")
    assert code == 0, err + out
    return json.loads(out)


# ---------------------------------------------------------------------------- 1. round trip
@pytest.mark.parametrize("example", ["mirror-full", "trivy-db"])
def test_round_trip_is_byte_identical_and_deterministic(registry, fresh_repo, run_cli, tmp_path, example):
    bundle = copy_example(example, tmp_path / "bundle")
    ref = f"{registry.host}/{fresh_repo}:v1"
    pushed = push_json(run_cli, bundle, ref)
    assert pushed["reference"] == f"{registry.host}/{fresh_repo}@{pushed['digest']}"
    assert pushed["exportManifestDigest"] == manifest_digest(read_export_json(bundle))

    code, out, err = run_cli("pull", ref, "--output", tmp_path / "got", "--format", "json")
    assert code == 0, err
    pulled = json.loads(out)
    assert pulled["digest"] == pushed["digest"]
    assert tree(tmp_path / "got") == tree(bundle)

    # The pulled directory pushes to the same manifest digest, byte for byte.
    again = push_json(run_cli, tmp_path / "got", f"{registry.host}/{fresh_repo}-again:v1")
    assert again["digest"] == pushed["digest"]
    code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}-again@{pushed['digest']}")
    assert code == 0, err


def test_repush_sends_nothing_and_moves_only_the_tag(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    first = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1")
    assert first["transfer"]["uploaded"] == len(first["layers"]) + 1  # layers and the empty config
    again = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v2")
    assert again["digest"] == first["digest"]
    assert again["transfer"] == {"uploaded": 0, "skipped": len(first["layers"]) + 1, "mounted": 0, "bytes": 0}
    assert sorted(tags_of(registry, fresh_repo)) == ["v1", "v2"]


def test_push_archives_tar_and_tar_gz(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    direct = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:dir")
    for suffix, mode in ((".tar", "w"), (".tar.gz", "w:gz")):
        archive = tmp_path / f"bundle{suffix}"
        with tarfile.open(archive, mode) as tar:
            tar.add(bundle, arcname="bundle")
        res = push_json(
            run_cli, archive, f"{registry.host}/{fresh_repo}:{suffix.strip('.').replace('.', '-')}"
        )
        assert res["digest"] == direct["digest"]


def test_archive_with_symlink_or_escape_is_refused(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    for name, member in (("link", "symlink"), ("escape", "../evil.txt")):
        archive = tmp_path / f"{name}.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(bundle, arcname=".")
            info = tarfile.TarInfo(member if name == "escape" else "evil-link")
            if name == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = "/etc/passwd"
                tar.addfile(info)
            else:
                data = b"x"
                info.size = 1
                import io

                tar.addfile(info, io.BytesIO(data))
        code, out, err = run_cli("push", archive, f"{registry.host}/{fresh_repo}:{name}")
        assert code == 2, err
        assert ("link" in err) if name == "link" else ("'..'" in err)
    assert tags_of(registry, fresh_repo) is None


def test_default_tag_is_export_id_and_reference_from_export_json(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")  # trivy:* default to Trivy's tags (test_trivy)
    doc = read_export_json(bundle)
    res = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}")
    assert res["tags"] == [doc["exportId"]]
    assert tags_of(registry, fresh_repo) == [doc["exportId"]]

    doc["distribution"] = {
        "oci": {"enabled": True, "reference": f"{registry.host}/{fresh_repo}-cfg:from-json"}
    }
    doc.pop("integrity", None)  # it pins the digest of export.json as it was
    write_export_json(bundle, doc)
    res = push_json(run_cli, bundle)
    assert res["reference"].startswith(f"{registry.host}/{fresh_repo}-cfg@sha256:")
    assert tags_of(registry, f"{fresh_repo}-cfg") == ["from-json"]

    doc["distribution"]["oci"]["enabled"] = False
    write_export_json(bundle, doc)
    code, out, err = run_cli("push", bundle)
    assert code == 2 and "enabled is false" in err


# ---------------------------------------------------------------------------- 2. layout, read by skopeo
def test_manifest_layout_read_back_with_skopeo(registry, fresh_repo, run_cli, skopeo, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    doc = read_export_json(bundle)
    pushed = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1", "--annotation", "team=ops")
    raw = skopeo("inspect", "--raw", f"docker://{registry.host}/{fresh_repo}:v1")
    import hashlib

    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == pushed["digest"]
    m = json.loads(raw)
    assert list(m) == sorted(m), "keys are sorted"
    assert m["schemaVersion"] == 2
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["artifactType"] == ARTIFACT_TYPE
    assert m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert m["config"]["digest"] == EMPTY_DIGEST and m["config"]["size"] == 2
    layers = m["layers"]
    assert layers[0]["mediaType"] == "application/vnd.stellaops.export.manifest.v1+json"
    assert layers[0]["annotations"] == {"org.opencontainers.image.title": "export.json"}
    contents = sorted(doc["contents"], key=lambda e: e["path"])
    for layer, entry in zip(layers[1 : 1 + len(contents)], contents):
        assert layer["annotations"]["org.opencontainers.image.title"] == entry["path"]
        assert layer["digest"] == entry["digest"] and layer["size"] == entry["bytes"]
        assert layer["mediaType"] == entry.get("contentType", "application/octet-stream")
    tail = layers[1 + len(contents) :]
    assert (tail[0]["annotations"]["org.opencontainers.image.title"], tail[0]["mediaType"]) == (
        "provenance.json",
        "application/vnd.in-toto+json",
    )
    ann = m["annotations"]
    assert list(ann) == sorted(ann)
    assert ann["io.stellaops.export.profile"] == f"{doc['profile']['kind']}:{doc['profile']['variant']}"
    assert ann["io.stellaops.export.run"] == doc["runId"]
    assert ann["io.stellaops.export.id"] == doc["exportId"]
    assert ann["io.stellaops.export.tenant"] == doc["tenant"]
    assert ann["org.opencontainers.image.created"] == doc["generatedAt"]
    assert ann["io.stellaops.export.manifest-digest"] == manifest_digest(doc)
    assert ann["io.stellaops.export.provenance-ref"]
    assert ann["team"] == "ops"


# ---------------------------------------------------------------------------- 3. tamper in storage
def test_flipped_byte_in_registry_storage_fails_pull_and_verify(registry, fresh_repo, run_cli, tmp_path):
    if registry.root is None:
        pytest.skip("registry storage directory unknown")
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    pushed = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1")
    victim = next(layer for layer in pushed["layers"] if layer["path"] == "data/packages.ndjson")
    blob = registry.blob_path(victim["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    try:
        out_dir = tmp_path / "got"
        code, out, err = run_cli("pull", f"{registry.host}/{fresh_repo}:v1", "--output", out_dir)
        assert code == 3, err
        assert victim["digest"] in err and "data/packages.ndjson" in err
        assert not out_dir.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".got")] == []
        code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}:v1", "--format", "json")
        assert code == 3
        assert json.loads(out)["error"]["code"] == 3
    finally:
        data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))


# ---------------------------------------------------------------------------- 4. moved tag
def test_moved_tag_with_expect_digest_fails(registry, fresh_repo, run_cli, tmp_path):
    a = copy_example("mirror-full", tmp_path / "a")
    first = push_json(run_cli, a, f"{registry.host}/{fresh_repo}:stable")
    b = copy_example("trivy-db", tmp_path / "b")
    second = push_json(run_cli, b, f"{registry.host}/{fresh_repo}:stable")
    assert first["digest"] != second["digest"]
    out_dir = tmp_path / "got"
    code, out, err = run_cli(
        "pull", f"{registry.host}/{fresh_repo}:stable", "-o", out_dir, "--expect-digest", first["digest"]
    )
    assert code == 3 and first["digest"] in err and second["digest"] in err
    assert not out_dir.exists()
    code, _, err = run_cli(
        "verify", f"{registry.host}/{fresh_repo}:stable", "--expect-digest", first["digest"]
    )
    assert code == 3
    # pinned by digest, the original still verifies
    code, _, err = run_cli("verify", f"{registry.host}/{fresh_repo}@{first['digest']}")
    assert code == 0, err


# ---------------------------------------------------------------------------- 5. invalid input
def _schema_violation(bundle: Path) -> str:
    doc = read_export_json(bundle)
    doc["generatedAt"] = "yesterday"
    write_export_json(bundle, doc)
    return "/generatedAt"


def _digest_mismatch(bundle: Path) -> str:
    (bundle / "metadata.json").write_bytes((bundle / "metadata.json").read_bytes() + b" ")
    return "metadata.json"


def _dotdot_path(bundle: Path) -> str:
    doc = read_export_json(bundle)
    doc["contents"][0]["path"] = "../outside.json"
    write_export_json(bundle, doc)
    return "'..'"


def _symlink_out(bundle: Path) -> str:
    outside = bundle.parent / "outside.bin"
    target = bundle / "metadata.json"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    os.symlink(outside, target)
    return "outside the bundle"


def _unlisted(bundle: Path) -> str:
    (bundle / "stray.txt").write_text("not listed")
    return "stray.txt"


@pytest.mark.parametrize(
    "breaker",
    [_schema_violation, _digest_mismatch, _dotdot_path, _symlink_out, _unlisted],
    ids=lambda f: f.__name__,
)
def test_invalid_bundles_exit_2_and_push_nothing(registry, fresh_repo, run_cli, tmp_path, breaker):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    needle = breaker(bundle)
    code, out, err = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 2, err
    assert needle in err
    code, out, err = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1", "--format", "json")
    assert code == 2
    doc = json.loads(out)
    assert doc["error"]["code"] == 2 and needle in doc["error"]["message"]
    assert tags_of(registry, fresh_repo) is None


def test_reserved_annotation_exit_2(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    code, out, err = run_cli(
        "push", bundle, f"{registry.host}/{fresh_repo}:v1", "--annotation", "io.stellaops.export.id=forged"
    )
    assert code == 2 and "io.stellaops." in err
    assert tags_of(registry, fresh_repo) is None


def test_unlisted_allowed_is_left_behind(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    (bundle / "notes.txt").write_text("local notes")
    res = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1", "--allow-unlisted")
    assert res["ignored"] == ["notes.txt"]
    assert all(layer["path"] != "notes.txt" for layer in res["layers"])


# ---------------------------------------------------------------------------- 6. not found, unreachable
def test_missing_tag_and_repository_exit_4(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1")
    for ref in (f"{registry.host}/{fresh_repo}:nope", f"{registry.host}/{fresh_repo}-absent:v1"):
        code, out, err = run_cli("pull", ref, "-o", tmp_path / "got", "--format", "json")
        assert code == 4, out + err
        assert json.loads(out)["error"]["code"] == 4
        assert not (tmp_path / "got").exists()
        code, out, err = run_cli("inspect", ref)
        assert code == 4


def test_unreachable_registry_fails_fast_and_clearly(run_cli, tmp_path):
    from tests.support.registry import free_port

    port = free_port()
    start = time.monotonic()
    code, out, err = run_cli("pull", f"127.0.0.1:{port}/x/y:v1", "-o", tmp_path / "got", timeout=60)
    elapsed = time.monotonic() - start
    assert code == 10, err
    assert f"127.0.0.1:{port}" in err
    assert elapsed < 30


# ---------------------------------------------------------------------------- 7. json everywhere
def test_json_output_for_success_commands(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    pushed = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1")
    for args in (
        ("inspect", f"{registry.host}/{fresh_repo}:v1"),
        ("verify", f"{registry.host}/{fresh_repo}:v1"),
        ("verify", str(bundle), "--expect-digest", pushed["digest"]),
        ("pull", f"{registry.host}/{fresh_repo}:v1", "-o", str(tmp_path / "got")),
    ):
        code, out, err = run_cli(*args, "--format", "json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["digest"] == pushed["digest"], args
    code, out, err = run_cli("pull", "not a reference", "-o", str(tmp_path / "x"), "--format", "json")
    assert code == 2 and json.loads(out)["error"]["kind"] == "invalid-input"
    code, out, err = run_cli("pull", "--format", "json")
    assert code == 2 and json.loads(out)["error"]["code"] == 2


# ---------------------------------------------------------------------------- 8. API = CLI, entry point
def test_python_api_matches_cli(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    api_result = stella_oci.push(bundle, f"{registry.host}/{fresh_repo}:api")
    cli_result = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:cli")
    assert api_result.digest == cli_result["digest"]
    assert api_result.annotations == cli_result["annotations"]

    pulled = stella_oci.pull(f"{registry.host}/{fresh_repo}:cli", tmp_path / "got")
    assert pulled.digest == cli_result["digest"]
    assert tree(tmp_path / "got") == tree(bundle)
    assert (
        stella_oci.verify(f"{registry.host}/{fresh_repo}@{api_result.digest}").export_id
        == api_result.export_id
    )

    with pytest.raises(NotFoundError) as missing:
        stella_oci.verify(f"{registry.host}/{fresh_repo}:absent")
    assert missing.value.exit_code == 4
    with pytest.raises(VerificationError) as wrong:
        stella_oci.verify(f"{registry.host}/{fresh_repo}:cli", expect_digest="sha256:" + "0" * 64)
    assert wrong.value.exit_code == 3
    with pytest.raises(InvalidInputError) as bad:
        stella_oci.push(bundle, f"{registry.host}/{fresh_repo}:x", annotations=["io.stellaops.x=y"])
    assert bad.value.exit_code == 2


def test_entry_point_is_registered():
    eps = entry_points(group="stellaops.export.distribution")
    assert "oci" in eps.names
    plugin_cls = eps["oci"].load()
    assert plugin_cls().name == "oci"


def test_plugin_round_trip(registry, fresh_repo, tmp_path):
    plugin = entry_points(group="stellaops.export.distribution")["oci"].load()()
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    res = plugin.push(bundle, f"{registry.host}/{fresh_repo}:p")
    got = plugin.pull(f"{registry.host}/{fresh_repo}@{res.digest}", tmp_path / "got")
    assert got.digest == res.digest
    assert tree(tmp_path / "got") == tree(bundle)
    checked = plugin.verify(f"{registry.host}/{fresh_repo}:p", expect_digest=res.digest)
    assert checked.digest == res.digest
    with pytest.raises(VerificationError):
        plugin.verify(f"{registry.host}/{fresh_repo}:p", expect_digest="sha256:" + "0" * 64)


# ---------------------------------------------------------------------------- annotations on pull
def test_wrong_annotation_in_registry_fails_verify(registry, fresh_repo, run_cli, tmp_path):
    """A manifest re-pushed with one altered io.stellaops.* annotation is refused (exit 3)."""
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    pushed = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1")
    m = requests.get(
        f"{registry.url}/v2/{fresh_repo}/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    ).json()
    m["annotations"]["io.stellaops.export.tenant"] = "someone-else"
    body = json.dumps(m, sort_keys=True, separators=(",", ":")).encode()
    r = requests.put(
        f"{registry.url}/v2/{fresh_repo}/manifests/forged",
        data=body,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    assert r.status_code == 201
    code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}:forged")
    assert code == 3 and "io.stellaops.export.tenant" in err
    assert pushed["digest"] != r.headers["Docker-Content-Digest"]
