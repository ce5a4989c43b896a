"""Issue 14, acceptance 2: every file under ``signatures/`` travels as a layer of its own media
type and comes back byte for byte (it used to be left behind silently)."""

from __future__ import annotations

import json
import tarfile

import pytest
import requests

from tests.support.bundles import copy_example, tree

SIG_FILES = {
    "signatures/export.sig": b"MEUCIQDexampleexampleexampleexampleexampleexample==\n",
    "signatures/cosign.pem": b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "signatures/ci/export.sigstore.json": b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}\n',
    "signatures/notes.txt": b"",
}
MEDIA = {
    "signatures/export.sig": "application/vnd.stellaops.export.signature.v1",
    "signatures/cosign.pem": "application/pem-certificate-chain",
    "signatures/ci/export.sigstore.json": "application/vnd.dev.sigstore.bundle.v0.3+json",
    "signatures/notes.txt": "application/octet-stream",
}


@pytest.mark.parametrize("example, as_tar", [("mirror-full", False), ("trivy-db", False), ("mirror-full", True)])
def test_signature_files_round_trip_byte_for_byte(registry, fresh_repo, run_cli, tmp_path, example, as_tar):
    bundle = copy_example(example, tmp_path / "bundle")
    for rel, data in SIG_FILES.items():
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_bytes(data)
    source = bundle
    if as_tar:  # a bundle archive carries them too
        source = tmp_path / "bundle.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(bundle / "export.json", arcname="export.json")
            tar.add(bundle, arcname=".", filter=lambda ti: None if ti.name == "./export.json" else ti)
    code, out, err = run_cli("push", source, f"{registry.host}/{fresh_repo}:v1", "--format", "json")
    assert code == 0, err + out
    pushed = json.loads(out)
    assert pushed["ignored"] == []

    # the layers (of the export referrer for trivy:db): each signature file with its media type
    if example == "trivy-db":
        manifest_ref = pushed["referrers"][0]["digest"]
    else:
        manifest_ref = "v1"
    m = requests.get(
        f"{registry.url}/v2/{fresh_repo}/manifests/{manifest_ref}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    ).json()
    layers = {lay["annotations"]["org.opencontainers.image.title"]: lay["mediaType"] for lay in m["layers"]}
    for rel, media in MEDIA.items():
        assert layers[rel] == media

    code, out, err = run_cli("pull", f"{registry.host}/{fresh_repo}:v1", "--output", tmp_path / "out")
    assert code == 0, err
    assert tree(tmp_path / "out") == tree(bundle)
    code, out, err = run_cli("verify", tmp_path / "out", "--expect-digest", pushed["digest"])
    assert code == 0, err


def test_signature_file_under_another_media_type_is_refused(registry, fresh_repo, run_cli, tmp_path):
    """A pull checks each signature layer's media type against its name (exit 3)."""
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    (bundle / "signatures").mkdir()
    (bundle / "signatures/export.sig").write_bytes(SIG_FILES["signatures/export.sig"])
    code, out, err = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 0, err
    m = requests.get(
        f"{registry.url}/v2/{fresh_repo}/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    ).json()
    for layer in m["layers"]:
        if layer["annotations"]["org.opencontainers.image.title"] == "signatures/export.sig":
            layer["mediaType"] = "application/octet-stream"
    body = json.dumps(m, sort_keys=True, separators=(",", ":")).encode()
    r = requests.put(
        f"{registry.url}/v2/{fresh_repo}/manifests/forged",
        data=body,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    assert r.status_code == 201
    code, out, err = run_cli("verify", f"{registry.host}/{fresh_repo}:forged")
    assert code == 3 and "signatures/export.sig" in err, err
