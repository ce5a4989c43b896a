"""Issue 15, big blobs: a push hashes each byte of a listed file once (while it uploads), and a
file whose bytes are not the ones export.json states still leaves the repository without a
manifest and without a tag (exit 3), whether the registry reads the file, already has its
blob, or already has the whole manifest (a re-push).

Real registry, real CLI subprocesses for the refusals; the hash count runs the push in-process
with ``hashlib.sha256`` wrapped to count the bytes it is fed (no timing anywhere)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from stella_oci import api
from tests.support.bundles import make_bundle

MiB = 1024 * 1024


def _flip_middle_byte(path: Path) -> None:
    """Same size, other bytes: only a hash can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _manifest_status(host: str, repo: str, ref: str) -> int:
    return requests.head(
        f"http://{host}/v2/{repo}/manifests/{ref}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    ).status_code


def _tags(host: str, repo: str) -> list[str]:
    resp = requests.get(f"http://{host}/v2/{repo}/tags/list", timeout=10)
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.text
    return list(resp.json().get("tags") or [])


def _good_digest(registry: Any, bundle: Path, run_cli: Any, repo: str) -> str:
    """The manifest digest the good bundle makes (pushed to a side repository)."""
    res = run_cli("push", bundle, f"{registry.host}/{repo}-side:good", "--format", "json", "-q")
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["digest"])


@pytest.mark.parametrize("size", [3 * MiB + 7, 2000], ids=["big", "small"])
def test_wrong_file_is_refused_while_it_uploads_and_no_manifest_is_written(
    registry, fresh_repo, run_cli, tmp_path: Path, size: int
) -> None:
    bundle = make_bundle(tmp_path / "b", {"data/blob.bin": size, "meta.json": b'{"v": 1}'})
    good = _good_digest(registry, bundle, run_cli, fresh_repo)
    _flip_middle_byte(bundle / "data" / "blob.bin")
    res = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1", "--format", "json")
    assert res.returncode == 3, (res.returncode, res.stdout, res.stderr)
    err = json.loads(res.stdout)["error"]
    assert "/contents/0/digest" in err["message"] and "'data/blob.bin'" in err["message"], err
    assert "hashes to" in err["message"], err
    # nothing names the wrong bytes: no manifest by digest, no tag
    assert _manifest_status(registry.host, fresh_repo, good) == 404
    assert _manifest_status(registry.host, fresh_repo, "v1") == 404
    assert _tags(registry.host, fresh_repo) == []


def test_wrong_file_whose_blob_the_registry_has_is_still_refused(
    registry, fresh_repo, run_cli, tmp_path: Path
) -> None:
    """The registry has the blob export.json names (another export shared it): nothing of the
    file is sent, so it is hashed before the manifest; wrong bytes: exit 3, no manifest."""
    files: dict[str, bytes | int] = {"data/blob.bin": 3 * MiB + 7, "meta.json": b'{"v": 1}'}
    first = make_bundle(tmp_path / "a", files, export_id="exp-first-000001")
    res = run_cli("push", first, f"{registry.host}/{fresh_repo}:first", "-q")
    assert res.returncode == 0, res.stderr
    second = make_bundle(tmp_path / "b", files, export_id="exp-second-00001")
    good = _good_digest(registry, second, run_cli, fresh_repo)
    _flip_middle_byte(second / "data" / "blob.bin")
    res = run_cli("push", second, f"{registry.host}/{fresh_repo}:second", "--format", "json")
    assert res.returncode == 3, (res.returncode, res.stdout, res.stderr)
    assert "'data/blob.bin' hashes to" in json.loads(res.stdout)["error"]["message"]
    assert _manifest_status(registry.host, fresh_repo, good) == 404
    assert _tags(registry.host, fresh_repo) == ["first"]


def test_repush_of_a_changed_file_moves_no_tag(registry, fresh_repo, run_cli, tmp_path: Path) -> None:
    """The manifest is there already (a re-push): only tags would move, and they do not when a
    listed file no longer hashes to export.json's digest."""
    bundle = make_bundle(tmp_path / "b", {"data/blob.bin": 100_000, "meta.json": b'{"v": 1}'})
    res = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1", "-q")
    assert res.returncode == 0, res.stderr
    _flip_middle_byte(bundle / "data" / "blob.bin")
    res = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v2", "-q")
    assert res.returncode == 3, (res.returncode, res.stderr)
    assert "'data/blob.bin' hashes to" in res.stderr
    assert _tags(registry.host, fresh_repo) == ["v1"]


def test_a_changed_size_is_refused_before_anything_is_sent(registry, fresh_repo, run_cli, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", {"data/blob.bin": 5000, "meta.json": b'{"v": 1}'})
    with open(bundle / "data" / "blob.bin", "ab") as fh:
        fh.write(b"x")
    res = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1", "-q")
    assert res.returncode == 2, res.stderr
    assert "is 5001 bytes, export.json states 5000" in res.stderr
    assert _tags(registry.host, fresh_repo) == []


class _CountingSha256:
    """hashlib.sha256 that adds what it is fed to a shared counter."""

    fed = 0

    def __init__(self, data: bytes = b"") -> None:
        self._h = _REAL_SHA256()
        if data:
            self.update(data)

    def update(self, data: Any) -> None:
        type(self).fed += len(data)
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def digest(self) -> bytes:
        return self._h.digest()

    def copy(self) -> Any:
        return self._h.copy()


_REAL_SHA256 = hashlib.sha256


def test_a_push_hashes_each_byte_once(registry, fresh_repo, tmp_path: Path, monkeypatch) -> None:
    size = 24 * MiB
    bundle = make_bundle(tmp_path / "b", {"data/big.bin": size, "meta.json": b'{"v": 1}'})
    monkeypatch.setattr(hashlib, "sha256", _CountingSha256)
    _CountingSha256.fed = 0
    api.push(bundle, f"{registry.host}/{fresh_repo}:v1")
    fed = _CountingSha256.fed
    monkeypatch.undo()
    # every byte of the bundle once, plus export.json and small documents (manifest, config)
    assert size <= fed < size + 1 * MiB, f"{fed} bytes hashed for a {size}-byte file"
    got = requests.get(f"http://{registry.host}/v2/{fresh_repo}/manifests/v1",
                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10).json()
    assert size in [layer["size"] for layer in got["layers"]]


def test_upload_bodies_are_read_in_large_pieces(tmp_path: Path) -> None:
    """Large socket writes: a bundle file's upload body comes in pieces of at least 1 MiB
    (FILE_CHUNK, 4 MiB), not in small reads."""
    from stella_oci.export.artifact import build_manifest
    from stella_oci.export.bundle import open_bundle
    from stella_oci.targets.bundle import BundleSource

    bundle_dir = make_bundle(tmp_path / "b", {"data/big.bin": 10 * MiB + 5, "meta.json": b'{"v": 1}'})
    with open_bundle(bundle_dir, hash_contents=False) as bundle:
        artifact = build_manifest(bundle, user_annotations={}, provenance_ref=None)
        src = BundleSource(bundle, artifact)
        big = next(d for d in artifact.manifest.layers if d.size == 10 * MiB + 5)
        with src.open_blob(big) as chunks:
            sizes = [len(c) for c in chunks]
    assert sum(sizes) == 10 * MiB + 5
    assert all(s >= MiB for s in sizes[:-1]) and len(sizes) <= 4, sizes
