"""Copies of graphs other than a single export manifest, and bundle archive forms.

* an OCI image index (two platform manifests, each with its config and layers) copied
  registry -> oci: -> oci-archive: -> another repository: every manifest byte-identical, every
  blob present and whole, the index digest unchanged, and only the tag given moves;
* a bundle pushed as a ``.tar.zst`` archive gives the same manifest digest as the directory,
  and pulls back to the same files.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import requests
import zstandard

from stella_oci.oci import mediatypes as mt
from tests.support.bundles import copy_example, tree

OCTET = "application/octet-stream"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(base_url: str, repo: str, data: bytes) -> dict:
    digest = sha(data)
    r = requests.post(f"{base_url}/v2/{repo}/blobs/uploads/", timeout=10)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    loc = base_url + loc if loc.startswith("/") else loc
    sep = "&" if "?" in loc else "?"
    r = requests.put(f"{loc}{sep}digest={digest}", data=data, headers={"Content-Type": OCTET}, timeout=10)
    assert r.status_code == 201, r.text
    return {"digest": digest, "size": len(data)}


def put_manifest(base_url: str, repo: str, ref: str, doc: dict, media_type: str) -> tuple[bytes, str]:
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    r = requests.put(
        f"{base_url}/v2/{repo}/manifests/{ref}", data=data, headers={"Content-Type": media_type}, timeout=10
    )
    assert r.status_code == 201, r.text
    return data, sha(data)


def get(base_url: str, repo: str, kind: str, ref: str) -> requests.Response:
    accept = ",".join([mt.OCI_INDEX, mt.OCI_MANIFEST])
    return requests.get(f"{base_url}/v2/{repo}/{kind}/{ref}", headers={"Accept": accept}, timeout=10)


def build_index(registry, repo: str) -> tuple[bytes, str, dict[str, bytes], dict[str, bytes]]:
    """An index of two image manifests in ``repo`` tagged ``multi``; returns the index bytes and
    digest, the manifests by digest and the blobs by digest."""
    manifests: dict[str, bytes] = {}
    blobs: dict[str, bytes] = {}
    entries = []
    for arch in ("amd64", "arm64"):
        config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = f"layer for {arch}\n".encode() * 1000
        shared = b"shared layer\n" * 500
        for b in (config, layer, shared):
            blobs[sha(b)] = b
        doc = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put_blob(registry.url, repo, config)},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **put_blob(registry.url, repo, layer)},
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **put_blob(registry.url, repo, shared)},
            ],
        }
        data, digest = put_manifest(registry.url, repo, digest_tag(arch), doc, mt.OCI_MANIFEST)
        manifests[digest] = data
        entries.append({"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(data),
                        "platform": {"architecture": arch, "os": "linux"}})
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    data, digest = put_manifest(registry.url, repo, "multi", index, mt.OCI_INDEX)
    return data, digest, manifests, blobs


def digest_tag(arch: str) -> str:
    return f"only-{arch}"


def test_oci_image_index_copies_through_layouts_byte_identical(registry, fresh_repo, run_cli, tmp_path):
    index_bytes, index_digest, manifests, blobs = build_index(registry, fresh_repo)
    layout = tmp_path / "layout"
    archive = tmp_path / "multi.tar"
    dest_repo = f"{fresh_repo}-copy"
    steps = [
        (f"{registry.host}/{fresh_repo}:multi", f"oci:{layout}:multi"),
        (f"oci:{layout}:multi", f"oci-archive:{archive}:multi"),
        (f"oci-archive:{archive}:multi", f"{registry.host}/{dest_repo}:multi"),
    ]
    for src, dst in steps:
        code, out, err = run_cli("copy", src, dst, "--format", "json")
        assert code == 0, (src, dst, out, err)
        assert json.loads(out)["digest"] == index_digest
    # the layout holds every manifest and blob under its digest, bytes unchanged
    for digest, data in {**manifests, **blobs, index_digest: index_bytes}.items():
        assert (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes() == data
    with tarfile.open(archive) as tf:
        names = set(tf.getnames())
    assert {f"blobs/sha256/{d.split(':')[1]}" for d in [*manifests, *blobs, index_digest]} <= names
    # the destination repository: the index by tag, every child by digest, every blob whole
    r = get(registry.url, dest_repo, "manifests", "multi")
    assert r.status_code == 200 and r.content == index_bytes
    assert r.headers["Docker-Content-Digest"] == index_digest
    for digest, data in manifests.items():
        assert get(registry.url, dest_repo, "manifests", digest).content == data
    for digest, data in blobs.items():
        assert get(registry.url, dest_repo, "blobs", digest).content == data
    # only the tag given was set: the per-arch tags of the source stay behind
    tags = requests.get(f"{registry.url}/v2/{dest_repo}/tags/list", timeout=10).json()["tags"]
    assert tags == ["multi"]
    # a second copy finds everything there (nothing uploaded)
    code, out, err = run_cli("copy", f"oci:{layout}:multi", f"{registry.host}/{dest_repo}:multi", "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["transfer"]["uploaded"] == 0


def test_tar_zst_bundle_pushes_like_the_directory_and_pulls_back(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    archive = tmp_path / "bundle.tar.zst"
    with open(archive, "wb") as raw, zstandard.ZstdCompressor().stream_writer(raw) as zw, \
            tarfile.open(fileobj=zw, mode="w|") as tar:
        tar.add(bundle, arcname="bundle")
    assert archive.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # really zstd
    code, out, err = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:dir", "--format", "json")
    assert code == 0, out + err
    direct = json.loads(out)
    code, out, err = run_cli("push", archive, f"{registry.host}/{fresh_repo}:zst", "--format", "json")
    assert code == 0, out + err
    zst = json.loads(out)
    assert zst["digest"] == direct["digest"]
    assert zst["transfer"]["uploaded"] == 0  # same blobs: all there already
    code, out, err = run_cli("pull", f"{registry.host}/{fresh_repo}:zst", "-o", tmp_path / "got", "--format", "json")
    assert code == 0, out + err
    assert tree(tmp_path / "got") == tree(bundle)
    assert Path(tmp_path / "got").is_dir()
