"""Issue 14, acceptance 1: ``trivy:db`` / ``trivy:java-db`` exports are pushed as Trivy reads them.

Trivy's own acceptance rules are replayed on what the real registry gives back
(:func:`trivy_accepts`); the StellaOps checks run through the export referrer.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.bundles import copy_example, read_export_json, tree, write_export_json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EXPORT_TYPE = "application/vnd.stellaops.export.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

#: example -> (Trivy's layer media type, Trivy's default tag, the files Trivy reads after unpacking)
PROFILES = {
    "trivy-db": ("application/vnd.aquasec.trivy.db.layer.v1.tar+gzip", "2", {"trivy.db", "metadata.json"}),
    "trivy-java-db": (
        "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip",
        "1",
        {"trivy-java.db", "metadata.json"},
    ),
}


def get_manifest(registry, repo: str, ref: str) -> tuple[bytes, dict[str, Any]]:
    r = requests.get(f"{registry.url}/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST}, timeout=10)
    assert r.status_code == 200, r.text
    return r.content, r.json()


def get_blob(registry, repo: str, digest: str) -> bytes:
    r = requests.get(f"{registry.url}/v2/{repo}/blobs/{digest}", timeout=10)
    assert r.status_code == 200, r.text
    assert "sha256:" + hashlib.sha256(r.content).hexdigest() == digest
    return r.content


def trivy_accepts(registry, repo: str, tag: str, media_type: str) -> set[str]:
    """Trivy's rules for a DB artifact, replayed on the manifest and blobs the registry serves.

    aquasecurity/trivy at dc3c56eed58ab21c7e08d26757c517bc946a86c5, ``pkg/oci/artifact.go``
    (``(*Artifact).Download`` and ``singleLayer``):

    - l.179-183 ``if len(layers) != 1 { return nil, xerrors.New("OCI artifact must be a single
      layer") }`` and l.138-140 the same for ``len(manifest.Layers)``;
    - l.141-145 ``v, ok := manifest.Layers[0].Annotations[titleAnnotation]; if !ok { ...
      "annotation %s is missing" }`` (``titleAnnotation = "org.opencontainers.image.title"``,
      the DB clients pass no ``Filename``);
    - l.148-152 ``if !filepath.IsLocal(fileName)``: the title is a local relative path;
    - l.154-159 ``opt.MediaType != "" && opt.MediaType != string(layerMediaType)`` ->
      "unacceptable media type", where the DB client passes ``dbMediaType =
      "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"`` (``pkg/db/db.go`` l.26) and the
      Java DB client ``mediaType = "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"``
      (``pkg/javadb/client.go`` l.26);
    - l.228 ``os.Create(filepath.Join(tempDir, fileName))`` then l.244 ``downloader.Download(ctx,
      f.Name(), dir, dir, ...)``: the blob is written under its title in a fresh directory and
      unpacked by the title's extension (go-getter: ``.tar.gz``), after which the clients read
      ``metadata.json`` from the DB directory (``metadata.NewClient(dbDir)``).

    The config follows the published ghcr.io/aquasecurity/trivy-db manifest
    (``application/vnd.aquasec.trivy.config.v1+json``, the ``{}`` blob). Returns the names
    the unpacked layer holds.
    """
    _, m = get_manifest(registry, repo, tag)
    assert m["schemaVersion"] == 2 and m["mediaType"] == OCI_MANIFEST
    assert m["config"]["mediaType"] == "application/vnd.aquasec.trivy.config.v1+json"
    assert (m["config"]["digest"], m["config"]["size"]) == (EMPTY_DIGEST, 2)
    assert get_blob(registry, repo, m["config"]["digest"]) == b"{}"
    assert len(m["layers"]) == 1, "OCI artifact must be a single layer"
    layer = m["layers"][0]
    title = layer.get("annotations", {}).get("org.opencontainers.image.title")
    assert title, "annotation org.opencontainers.image.title is missing"
    assert "/" not in title and title.endswith(".tar.gz")
    assert layer["mediaType"] == media_type, f"unacceptable media type: {layer['mediaType']}"
    blob = get_blob(registry, repo, layer["digest"])
    assert len(blob) == layer["size"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return {member.name for member in tar.getmembers() if member.isfile()}


def cli_json(run_cli, *args: Any) -> dict[str, Any]:
    code, out, err = run_cli(*args, "--format", "json")
    assert code == 0, err + out
    doc: dict[str, Any] = json.loads(out)
    return doc


@pytest.mark.parametrize("example", sorted(PROFILES))
def test_trivy_layout_pushed_as_trivy_reads_it(registry, fresh_repo, run_cli, tmp_path, example):
    media_type, default_tag, files = PROFILES[example]
    bundle = copy_example(example, tmp_path / "bundle")
    doc = read_export_json(bundle)
    pushed = cli_json(run_cli, "push", bundle, f"{registry.host}/{fresh_repo}")
    assert pushed["tags"] == [default_tag]

    # what Trivy reads (``--db-repository HOST/REPO:2``)
    assert trivy_accepts(registry, fresh_repo, default_tag, media_type) == files
    raw, m = get_manifest(registry, fresh_repo, default_tag)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == pushed["digest"]
    archive = next(e for e in doc["contents"] if e["contentType"] == media_type)
    assert (m["layers"][0]["digest"], m["layers"][0]["size"]) == (archive["digest"], archive["bytes"])
    assert m["annotations"]["io.stellaops.export.id"] == doc["exportId"]
    assert m["annotations"]["io.stellaops.export.profile"] == f"trivy:{doc['profile']['variant']}"
    assert m["annotations"]["io.stellaops.export.manifest-digest"] == pushed["exportManifestDigest"]

    # export.json and every other file: one referrer, found through the fallback tag
    found = cli_json(run_cli, "discover", f"{registry.host}/{fresh_repo}:{default_tag}")
    exports = [r for r in found["referrers"] if r["artifactType"] == EXPORT_TYPE]
    assert len(exports) == 1 and found["source"] == "fallback-tag"
    assert [r["digest"] for r in pushed["referrers"]] == [exports[0]["digest"]]
    _, referrer = get_manifest(registry, fresh_repo, exports[0]["digest"])
    assert referrer["subject"]["digest"] == pushed["digest"]
    assert referrer["artifactType"] == EXPORT_TYPE
    titles = [layer["annotations"]["org.opencontainers.image.title"] for layer in referrer["layers"]]
    assert titles == ["export.json", *sorted(e["path"] for e in doc["contents"]), "export.json.dsse.json",
                      "provenance.dsse.json"]

    # verify and pull go through the referrer; the pull is the bundle, byte for byte
    verified = cli_json(run_cli, "verify", f"{registry.host}/{fresh_repo}:{default_tag}")
    assert verified["digest"] == pushed["digest"]
    assert any("Trivy" in c for c in verified["checks"])
    cli_json(run_cli, "pull", f"{registry.host}/{fresh_repo}@{pushed['digest']}", "--output", tmp_path / "out")
    assert tree(tmp_path / "out") == tree(bundle)
    # verify DIR --expect-digest knows the Trivy manifest's digest
    cli_json(run_cli, "verify", tmp_path / "out", "--expect-digest", pushed["digest"])

    # deterministic: the same bundle pushes to the same two digests
    again = cli_json(run_cli, "push", bundle, f"{registry.host}/{fresh_repo}:again")
    assert again["digest"] == pushed["digest"] and again["referrers"] == pushed["referrers"]


def test_forged_db_layer_and_forged_referrer_export_json_exit_3(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    repo = f"{registry.host}/{fresh_repo}"
    pushed = cli_json(run_cli, "push", bundle, f"{repo}:2")
    _, root = get_manifest(registry, fresh_repo, "2")
    fallback = pushed["digest"].replace(":", "-")
    _, index = get_manifest_index(registry, fresh_repo, fallback)

    # 1. a Trivy manifest whose one layer is another archive (export referrer re-pointed at it)
    fake = gzip.compress(b"not the DB export.json lists", mtime=0)
    fake_digest = put_blob(registry, fresh_repo, fake)
    forged_root = json.loads(json.dumps(root))
    forged_root["layers"][0].update(digest=fake_digest, size=len(fake))
    forged_digest = put_manifest(registry, fresh_repo, "forged-layer", forged_root)
    _, referrer = get_manifest(registry, fresh_repo, index["manifests"][0]["digest"])
    re_pointed = json.loads(json.dumps(referrer))
    re_pointed["subject"].update(digest=forged_digest, size=len(canonical(forged_root)))
    rp_digest = put_manifest(registry, fresh_repo, "re-pointed", re_pointed)
    put_manifest(
        registry, fresh_repo, forged_digest.replace(":", "-"),
        {**index, "manifests": [{**index["manifests"][0], "digest": rp_digest, "size": len(canonical(re_pointed))}]},
        media_type="application/vnd.oci.image.index.v1+json",
    )
    code, out, err = run_cli("verify", f"{repo}:forged-layer")
    assert code == 3 and "Trivy layer" in err and fake_digest in err, err

    # 2. the DB blob's bytes changed in the registry's storage (same size): caught while streaming
    db = next(layer for layer in referrer["layers"] if layer["annotations"]["org.opencontainers.image.title"] == "db.tar.gz")
    blob_path = Path(registry.blob_path(db["digest"]))
    original = blob_path.read_bytes()
    try:
        blob_path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        code, out, err = run_cli("verify", f"{repo}:2")
        assert code == 3 and db["digest"] in err, err
        code, out, err = run_cli("pull", f"{repo}:2", "--output", tmp_path / "tampered")
        assert code == 3 and not (tmp_path / "tampered").exists()
    finally:
        blob_path.write_bytes(original)

    # 3. the fallback index points at a referrer whose export.json was changed
    changed = read_export_json(bundle)
    changed["tenant"] = "someone-else"
    forged_json = (json.dumps(changed, indent=2, sort_keys=True) + "\n").encode()
    forged_ref = json.loads(json.dumps(referrer))
    forged_ref["layers"][0].update(digest=put_blob(registry, fresh_repo, forged_json), size=len(forged_json))
    fr_digest = put_manifest(registry, fresh_repo, "forged-referrer", forged_ref)
    put_manifest(
        registry, fresh_repo, fallback,
        {**index, "manifests": [{**index["manifests"][0], "digest": fr_digest, "size": len(canonical(forged_ref))}]},
        media_type="application/vnd.oci.image.index.v1+json",
    )
    code, out, err = run_cli("verify", f"{repo}:2")
    assert code == 3 and "io.stellaops.export" in err, err
    # both referrers listed: which one is the export is ambiguous, refused
    put_manifest(
        registry, fresh_repo, fallback,
        {**index, "manifests": [*index["manifests"],
                                {**index["manifests"][0], "digest": fr_digest, "size": len(canonical(forged_ref))}]},
        media_type="application/vnd.oci.image.index.v1+json",
    )
    code, out, err = run_cli("verify", f"{repo}:2")
    assert code == 3 and "referrers claim" in err, err
    # the referrer gone: nothing binds export.json to the Trivy manifest
    put_manifest(registry, fresh_repo, fallback, {**index, "manifests": []},
                 media_type="application/vnd.oci.image.index.v1+json")
    code, out, err = run_cli("verify", f"{repo}:2")
    assert code == 3 and "export referrer" in err, err


def test_copy_registry_archive_registry_keeps_referrer(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    pushed = cli_json(run_cli, "push", bundle, f"{registry.host}/{fresh_repo}-a:2")
    archive = tmp_path / "trivy-db.tar"
    copied = cli_json(run_cli, "copy", f"{registry.host}/{fresh_repo}-a:2", f"oci-archive:{archive}:2")
    assert [r["digest"] for r in copied["referrers"]] == [r["digest"] for r in pushed["referrers"]]
    offline = cli_json(run_cli, "verify", f"oci-archive:{archive}:2", "--offline")
    assert offline["digest"] == pushed["digest"]
    found = cli_json(run_cli, "discover", f"oci-archive:{archive}:2")
    assert [r["digest"] for r in found["referrers"]] == [r["digest"] for r in pushed["referrers"]]

    cli_json(run_cli, "copy", f"oci-archive:{archive}:2", f"{registry.host}/{fresh_repo}-b:2")
    assert trivy_accepts(registry, f"{fresh_repo}-b", "2", PROFILES["trivy-db"][0]) == PROFILES["trivy-db"][2]
    again = cli_json(run_cli, "verify", f"{registry.host}/{fresh_repo}-b:2")
    assert again["digest"] == pushed["digest"]
    found = cli_json(run_cli, "discover", f"{registry.host}/{fresh_repo}-b:2")
    assert [r["digest"] for r in found["referrers"]] == [r["digest"] for r in pushed["referrers"]]


@pytest.mark.parametrize(
    "change, why",
    [
        ("none", "found none"),
        ("two", "found ['db.tar.gz', 'metadata.json']"),
        ("not-tar-gz", "must be a .tar.gz"),
    ],
)
def test_bundle_that_cannot_be_a_trivy_artifact_is_refused(run_cli, tmp_path, registry, fresh_repo, change, why):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    doc = read_export_json(bundle)
    doc.pop("integrity", None)
    for sig in bundle.glob("*.dsse.json"):
        sig.unlink()
    db = next(e for e in doc["contents"] if e["path"] == "db.tar.gz")
    meta = next(e for e in doc["contents"] if e["path"] == "metadata.json")
    if change == "none":
        shutil.move(bundle / "db.tar.gz", bundle / "trivy.tgz.bin")
        db.update(path="trivy.tgz.bin", contentType="application/gzip")
    elif change == "two":
        meta["contentType"] = db["contentType"]
    else:
        shutil.move(bundle / "db.tar.gz", bundle / "db.zip")
        db["path"] = "db.zip"
    write_export_json(bundle, doc)
    code, out, err = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:x")
    assert code == 2 and why in err, err
    assert requests.get(f"{registry.url}/v2/{fresh_repo}/tags/list", timeout=10).status_code == 404


# ------------------------------------------------------------------ raw registry helpers
def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def get_manifest_index(registry, repo: str, ref: str) -> tuple[bytes, dict[str, Any]]:
    r = requests.get(
        f"{registry.url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.content, r.json()


def put_blob(registry, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(f"{registry.url}/v2/{repo}/blobs/uploads/", timeout=10)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else registry.url + loc
    r = requests.put(loc, params={"digest": digest}, data=data, timeout=10)
    assert r.status_code == 201, r.text
    return digest


def put_manifest(registry, repo: str, tag: str, doc: dict[str, Any], media_type: str = OCI_MANIFEST) -> str:
    body = canonical(doc)
    r = requests.put(
        f"{registry.url}/v2/{repo}/manifests/{tag}", data=body, headers={"Content-Type": media_type}, timeout=10
    )
    assert r.status_code == 201, r.text
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_trivy_export_referrer_through_the_referrers_api(registry, fresh_repo, run_cli, tmp_path):
    """A registry with the OCI 1.1 referrers API indexes the export referrer itself (no fallback tag)."""
    from tests.support.referrers_server import start_referrers_proxy

    proxy = start_referrers_proxy(registry.host)
    try:
        ref = f"{proxy.host}/{fresh_repo}"
        pushed = cli_json(run_cli, "push", copy_example("trivy-db", tmp_path / "bundle"), ref)
        found = cli_json(run_cli, "discover", f"{ref}:2")
        assert found["source"] == "referrers-api"
        assert [r["digest"] for r in found["referrers"]] == [r["digest"] for r in pushed["referrers"]]
        assert cli_json(run_cli, "verify", f"{ref}:2")["digest"] == pushed["digest"]
        fallback = requests.get(f"{registry.url}/v2/{fresh_repo}/manifests/{pushed['digest'].replace(':', '-')}",
                                headers={"Accept": "application/vnd.oci.image.index.v1+json"}, timeout=10)
        assert fallback.status_code == 404
    finally:
        proxy.stop()


def test_save_and_load_carry_the_export_referrer(registry, fresh_repo, run_cli, tmp_path):
    """The multi-export transfers: save puts the Trivy manifest and its export referrer into the
    archive, load brings both into the mirror, where verify passes."""
    pushed = cli_json(run_cli, "push", copy_example("trivy-db", tmp_path / "bundle"), f"{registry.host}/{fresh_repo}")
    archive = tmp_path / "transfer.tar"
    cli_json(run_cli, "save", f"{registry.host}/{fresh_repo}:2", "--output", archive)
    cli_json(run_cli, "verify", f"oci-archive:{archive}:2", "--offline")
    cli_json(run_cli, "load", archive, f"{registry.host}/mirror")
    loaded = f"{registry.host}/mirror/{fresh_repo}:2"
    assert cli_json(run_cli, "verify", loaded)["digest"] == pushed["digest"]
    found = cli_json(run_cli, "discover", loaded)
    assert [r["digest"] for r in found["referrers"]] == [r["digest"] for r in pushed["referrers"]]
