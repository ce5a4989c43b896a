"""Issue 2 acceptance 9: the round-trip and tamper tests against a containerized registry:2,
started through testcontainers (podman here, Docker on GitHub's runners)."""

from __future__ import annotations

import json

import pytest

from tests.support.bundles import copy_example, tree

pytestmark = pytest.mark.container


def push_json(run_cli, *args) -> dict:
    code, out, err = run_cli("push", *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_round_trip_through_container_registry(container_registry, fresh_repo, run_cli, tmp_path):
    reg = container_registry
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    pushed = push_json(run_cli, bundle, f"{reg.host}/{fresh_repo}:v1")
    code, out, err = run_cli("pull", f"{reg.host}/{fresh_repo}:v1", "-o", tmp_path / "got", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["digest"] == pushed["digest"]
    assert tree(tmp_path / "got") == tree(bundle)
    again = push_json(run_cli, tmp_path / "got", f"{reg.host}/{fresh_repo}-again:v1")
    assert again["digest"] == pushed["digest"]


def test_tamper_in_container_registry_storage(container_registry, fresh_repo, run_cli, tmp_path):
    reg = container_registry
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    pushed = push_json(run_cli, bundle, f"{reg.host}/{fresh_repo}:v1")
    victim = next(layer for layer in pushed["layers"] if layer["path"] == "data/index.json")
    blob = reg.blob_path(victim["digest"])
    original = blob.read_bytes()
    flipped = bytearray(original)
    flipped[0] ^= 0x01
    blob.write_bytes(bytes(flipped))
    try:
        code, out, err = run_cli("pull", f"{reg.host}/{fresh_repo}:v1", "-o", tmp_path / "got")
        assert code == 3, err
        assert victim["digest"] in err
        assert not (tmp_path / "got").exists()
        code, out, err = run_cli("verify", f"{reg.host}/{fresh_repo}@{pushed['digest']}")
        assert code == 3
    finally:
        blob.write_bytes(original)
