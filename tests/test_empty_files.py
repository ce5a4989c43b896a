"""Issue 11 acceptance 1: a bundle with an empty file and a 1-byte file round-trips to a real
registry, to an ``oci:`` layout and to an ``oci-archive:`` (push, pull, verify; and a second
push of the same bundle, where every blob already exists)."""

from __future__ import annotations

import json

import pytest

from tests.support.bundles import make_bundle, tree

FILES = {"empty.txt": b"", "one.bin": b"x", "data/a.json": b'{"a": 1}\n', "data/empty.json": b""}


@pytest.mark.parametrize("kind", ["registry", "oci", "oci-archive"])
def test_empty_and_one_byte_files_round_trip(kind, registry, fresh_repo, run_cli, tmp_path):
    bundle = make_bundle(tmp_path / "bundle", FILES)
    ref = {
        "registry": f"{registry.host}/{fresh_repo}:v1",
        "oci": f"oci:{tmp_path / 'layout'}:v1",
        "oci-archive": f"oci-archive:{tmp_path / 'a.tar'}:v1",
    }[kind]
    code, out, err = run_cli("push", bundle, ref, "--format", "json")
    assert code == 0, out + err
    pushed = json.loads(out)
    sizes = {layer["path"]: layer["size"] for layer in pushed["layers"]}
    assert sizes["empty.txt"] == 0 and sizes["one.bin"] == 1
    code, out, err = run_cli("push", bundle, ref, "--format", "json")  # again: everything exists
    assert code == 0, out + err
    assert json.loads(out)["digest"] == pushed["digest"]
    code, out, err = run_cli("pull", ref, "-o", tmp_path / "got", "--format", "json")
    assert code == 0, out + err
    assert tree(tmp_path / "got") == tree(bundle)
    assert (tmp_path / "got" / "empty.txt").stat().st_size == 0
    code, out, err = run_cli("verify", ref, "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["digest"] == pushed["digest"]
