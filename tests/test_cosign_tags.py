"""Issue 14, acceptance 3: cosign's tag-scheme signatures and attestations (``sha256-<hex>.sig``,
``.att`` next to the artifact, as cosign writes them on ghcr.io) come along with ``copy`` to
another registry and to an oci-archive; ``--no-signatures`` leaves them."""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import requests

from tests.support.bundles import copy_example

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(registry, repo: str, data: bytes) -> dict[str, Any]:
    r = requests.post(f"{registry.url}/v2/{repo}/blobs/uploads/", timeout=10)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else registry.url + loc
    r = requests.put(loc, params={"digest": sha256(data)}, data=data, timeout=10)
    assert r.status_code == 201, r.text
    return {"digest": sha256(data), "size": len(data)}


def put_manifest(registry, repo: str, tag: str, doc: dict[str, Any]) -> str:
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    r = requests.put(
        f"{registry.url}/v2/{repo}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST}, timeout=10
    )
    assert r.status_code == 201, r.text
    return sha256(body)


def cosign_manifest(registry, repo: str, subject: str, layer_type: str, payload: bytes, ann: dict[str, str]) -> dict[str, Any]:
    """A manifest shaped like the ones cosign pushes (config: an image config, one layer)."""
    config = json.dumps({"architecture": "", "config": {}, "os": "", "rootfs": {"type": "layers", "diff_ids": []}},
                        sort_keys=True).encode()
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put_blob(registry, repo, config)},
        "layers": [{"mediaType": layer_type, **put_blob(registry, repo, payload), "annotations": ann}],
    }


def cosign_tags(registry, repo: str, subject: str) -> dict[str, str]:
    """Write ``sha256-<hex>.sig`` and ``.att`` for ``subject`` in ``repo``; returns tag -> digest."""
    hexd = subject.split(":", 1)[1]
    simple = json.dumps({"critical": {"identity": {"docker-reference": repo}, "image": {"docker-manifest-digest": subject},
                                      "type": "cosign container image signature"}, "optional": None}).encode()
    sig = cosign_manifest(registry, repo, subject, "application/vnd.dev.cosign.simplesigning.v1+json", simple,
                          {"dev.cosignproject.cosign/signature": base64.b64encode(b"\x30\x45fake-der").decode()})
    envelope = json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": base64.b64encode(b"{}").decode(),
                           "signatures": [{"keyid": "", "sig": "c2ln"}]}).encode()
    att = cosign_manifest(registry, repo, subject, "application/vnd.dsse.envelope.v1+json", envelope,
                          {"predicateType": "https://slsa.dev/provenance/v1"})
    return {
        f"sha256-{hexd}.sig": put_manifest(registry, repo, f"sha256-{hexd}.sig", sig),
        f"sha256-{hexd}.att": put_manifest(registry, repo, f"sha256-{hexd}.att", att),
    }


def registry_tags(registry, repo: str) -> dict[str, str]:
    r = requests.get(f"{registry.url}/v2/{repo}/tags/list", timeout=10)
    out = {}
    for tag in r.json().get("tags") or [] if r.status_code == 200 else []:
        m = requests.get(f"{registry.url}/v2/{repo}/manifests/{tag}",
                         headers={"Accept": f"{OCI_MANIFEST},application/vnd.oci.image.index.v1+json"}, timeout=10)
        out[tag] = sha256(m.content)
    return out


def archive_tags(path: Path) -> dict[str, str]:
    with tarfile.open(path) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        index = json.load(member)
    return {
        d["annotations"]["org.opencontainers.image.ref.name"]: d["digest"]
        for d in index["manifests"]
        if "org.opencontainers.image.ref.name" in (d.get("annotations") or {})
    }


def test_copy_brings_cosign_tags_along(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    code, out, err = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1", "--digest-only")
    assert code == 0, err
    digest = out.strip()
    tags = cosign_tags(registry, fresh_repo, digest)

    # to another registry repository: both tags, same digests
    code, out, err = run_cli("copy", f"{registry.host}/{fresh_repo}:v1", f"{registry.host}/{fresh_repo}-b:v1",
                             "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert {c["tag"]: c["digest"] for c in doc["cosignTags"]} == tags
    got = registry_tags(registry, f"{fresh_repo}-b")
    assert {t: got.get(t) for t in tags} == tags and got["v1"] == digest

    # to an oci-archive, and from there into a third repository
    archive = tmp_path / "x.tar"
    code, out, err = run_cli("copy", f"{registry.host}/{fresh_repo}:v1", f"oci-archive:{archive}:v1")
    assert code == 0, err
    assert "cosign sha256-" in out
    assert {t: archive_tags(archive).get(t) for t in tags} == tags
    code, out, err = run_cli("copy", f"oci-archive:{archive}:v1", f"{registry.host}/{fresh_repo}-c:v1")
    assert code == 0, err
    got = registry_tags(registry, f"{fresh_repo}-c")
    assert {t: got.get(t) for t in tags} == tags

    # --no-signatures leaves them
    code, out, err = run_cli("copy", f"{registry.host}/{fresh_repo}:v1", f"{registry.host}/{fresh_repo}-d:v1",
                             "--no-signatures", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["cosignTags"] == []
    assert set(registry_tags(registry, f"{fresh_repo}-d")) == {"v1"}
    bare = tmp_path / "bare.tar"
    code, out, err = run_cli("copy", f"{registry.host}/{fresh_repo}:v1", f"oci-archive:{bare}:v1", "--no-signatures")
    assert code == 0, err
    assert set(archive_tags(bare)) == {"v1"}
