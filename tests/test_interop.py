"""Interop with independent clients: skopeo (Go, containers/image) and oras-py.

What stella-oci pushes, they read byte for byte; what they push with the right layout and
annotations, stella-oci verifies; with one wrong annotation, stella-oci refuses it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stella_oci.export.annotations import compute_annotations
from stella_oci.export.models import ExportManifest
from tests.support.bundles import copy_example, read_export_json, tree

model_of = ExportManifest.from_json_obj

oras_provider = pytest.importorskip("oras.provider")

ARTIFACT_TYPE = "application/vnd.stellaops.export.v1+json"


def oras_registry():
    return oras_provider.Registry(insecure=True, tls_verify=False)


def push_json(run_cli, *args) -> dict:
    code, out, err = run_cli("push", *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_skopeo_copies_what_we_push_and_the_copy_verifies(registry, fresh_repo, run_cli, skopeo, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    pushed = push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1")
    layout = tmp_path / "layout"
    skopeo("copy", f"docker://{registry.host}/{fresh_repo}:v1", f"oci:{layout}:v1")
    # skopeo kept the manifest bytes: same digest in its layout, and stella-oci reads its layout.
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed["digest"]
    code, out, err = run_cli("pull", f"oci:{layout}:v1", "-o", tmp_path / "got", "--format", "json")
    assert code == 0, err
    assert tree(tmp_path / "got") == tree(bundle)
    # skopeo copies registry to registry; stella-oci verifies the copy by the original digest.
    skopeo(
        "copy", f"docker://{registry.host}/{fresh_repo}:v1", f"docker://{registry.host}/{fresh_repo}-sk:v1"
    )
    code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}-sk@{pushed['digest']}")
    assert code == 0, err


def test_oras_py_pulls_identical_bytes(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    push_json(run_cli, bundle, f"{registry.host}/{fresh_repo}:v1")
    out = tmp_path / "oras-out"
    oras_registry().pull(target=f"{registry.host}/{fresh_repo}:v1", outdir=str(out))
    assert tree(out) == tree(bundle)


def _oras_push_bundle(registry, repo: str, bundle: Path, tamper: dict[str, str] | None = None) -> str:
    """Push a bundle with oras-py's blob and manifest calls, laying it out as CONTRACT section 2 says."""
    reg = oras_registry()
    container = reg.get_container(f"{registry.host}/{repo}:v1")
    doc = read_export_json(bundle)
    prov = bundle / "provenance.json"

    def desc(path: Path, media_type: str, title: str) -> dict:
        data = path.read_bytes()
        return {
            "mediaType": media_type,
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "annotations": {"org.opencontainers.image.title": title},
        }

    layers = [
        desc(bundle / "export.json", "application/vnd.stellaops.export.manifest.v1+json", "export.json")
    ]
    for entry in sorted(doc["contents"], key=lambda e: e["path"]):
        layers.append(
            desc(bundle / entry["path"], entry.get("contentType", "application/octet-stream"), entry["path"])
        )
    prov_digest = None
    if prov.exists():
        layers.append(desc(prov, "application/vnd.in-toto+json", "provenance.json"))
        prov_digest = layers[-1]["digest"]
    for env in sorted(bundle.glob("*.dsse.json")):
        layers.append(desc(env, "application/vnd.dsse.envelope.v1+json", env.name))
    for layer in layers:
        reg.upload_blob(
            str(bundle / layer["annotations"]["org.opencontainers.image.title"]), container, layer
        )
    empty = bundle.parent / "empty.json"
    empty.write_bytes(b"{}")
    config = {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    reg.upload_blob(str(empty), container, config)
    annotations = compute_annotations(model_of(doc), provenance_digest=prov_digest, provenance_ref=None, user={})
    annotations.update(tamper or {})
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": ARTIFACT_TYPE,
        "config": config,
        "layers": layers,
        "annotations": annotations,
    }
    resp = reg.upload_manifest(manifest, container)
    assert resp.status_code == 201, resp.text
    return str(resp.headers["Docker-Content-Digest"])


@pytest.mark.parametrize("example", ["mirror-full", "trivy-db"])
def test_artifact_pushed_by_oras_py_verifies(registry, fresh_repo, run_cli, tmp_path, example):
    bundle = copy_example(example, tmp_path / "bundle")
    digest = _oras_push_bundle(registry, fresh_repo, bundle)
    code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}@{digest}", "--format", "json")
    assert code == 0, out + err
    code, out, err = run_cli("pull", f"{registry.host}/{fresh_repo}:v1", "-o", tmp_path / "got")
    assert code == 0, err
    assert tree(tmp_path / "got") == tree(bundle)


def test_artifact_pushed_by_oras_py_with_wrong_annotation_fails(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    _oras_push_bundle(registry, fresh_repo, bundle, tamper={"io.stellaops.export.profile": "mirror:delta"})
    code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}:v1")
    assert code == 3, err
    assert "io.stellaops.export.profile" in err


def test_layout_written_by_hand_and_pushed_by_skopeo_verifies(
    registry, fresh_repo, run_cli, skopeo, tmp_path
):
    """An OCI layout built without stella-oci code (plain files), pushed by skopeo, verifies."""
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    doc = read_export_json(bundle)
    layout = tmp_path / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        hexd = hashlib.sha256(data).hexdigest()
        (blobs / hexd).write_bytes(data)
        return "sha256:" + hexd

    layers = [
        {
            "mediaType": "application/vnd.stellaops.export.manifest.v1+json",
            "digest": put((bundle / "export.json").read_bytes()),
            "size": (bundle / "export.json").stat().st_size,
            "annotations": {"org.opencontainers.image.title": "export.json"},
        }
    ]
    for entry in sorted(doc["contents"], key=lambda e: e["path"]):
        data = (bundle / entry["path"]).read_bytes()
        layers.append(
            {
                "mediaType": entry.get("contentType", "application/octet-stream"),
                "digest": put(data),
                "size": len(data),
                "annotations": {"org.opencontainers.image.title": entry["path"]},
            }
        )
    put(b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": put(b"{}"), "size": 2},
        "layers": layers,
        "annotations": compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=None, user={}),
    }
    mbytes = json.dumps(manifest, indent=1).encode()  # not our canonical form: must still verify
    mdigest = put(mbytes)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": mdigest,
                        "size": len(mbytes),
                        "annotations": {"org.opencontainers.image.ref.name": "v1"},
                    }
                ],
            }
        )
    )
    skopeo("copy", f"oci:{layout}:v1", f"docker://{registry.host}/{fresh_repo}:v1")
    code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}:v1", "--expect-digest", mdigest)
    assert code == 0, err
