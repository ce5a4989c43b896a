"""Issue 13: ``stella-oci have DEST`` lists what a mirror holds (a have-list), and
``save --since HAVELIST`` leaves out every blob it has. Real registries: A (the session
registry, outside) and B (started per test, inside); a catalog-less B is B behind a real
proxy that answers 404 to ``/v2/_catalog``."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import jsonschema
import pytest

from stella_oci.airgap.havelist import SCHEMA_FILE, have_list_schema
from stella_oci.transport import RegistryClient, TransportOptions
from stella_oci.transport.repository import iter_catalog
from tests.support.bundles import make_bundle
from tests.support.fault_proxy import FaultProxy, StatusRule
from tests.support.registry import start_registry
from tests.test_airgap_archive import cli_json, digest_at, three_exports


@pytest.fixture
def b(tmp_path):
    reg = start_registry(tmp_path / "b")
    yield reg
    reg.stop()


def blob_members(archive: Path) -> set[str]:
    with tarfile.open(archive) as tf:
        return {"sha256:" + n.rsplit("/", 1)[1] for n in tf.getnames() if n.startswith("blobs/sha256/")}


def test_shipped_schema_is_the_models():
    assert json.loads(SCHEMA_FILE.read_text()) == have_list_schema(), (
        "stella_oci/data/have-list.schema.json is stale: run python -m stella_oci.airgap.havelist"
    )


def test_have_list_then_save_since_leaves_out_what_b_has(registry, b, fresh_repo, run_cli, tmp_path):
    exports = three_exports(registry, fresh_repo, run_cli, tmp_path)
    repos = [f"{registry.host}/{fresh_repo}/{n}" for n in ("base", "delta", "trivy")]
    week1 = tmp_path / "week-1.tar"
    cli_json(run_cli, "save", *repos, "--all-tags", "--output", week1)
    cli_json(run_cli, "load", week1, b.host, "--ledger", tmp_path / "l.sqlite3")

    # the have-list of B, through the catalog API read one repository per page
    have = tmp_path / "have-b.json"
    ledger = tmp_path / "l.sqlite3"
    result = cli_json(run_cli, "have", b.host, "--output", have, "--page-size", "1", "--ledger", ledger)
    # 6 export tags, and the referrers-API fallback tag (sha256-<hex>) of trivy-db's export.json
    assert result["catalog"] is True and result["repositories"] == 3 and result["tags"] == 7
    doc = json.loads(have.read_text())
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))
    assert (
        doc["kind"] == "stella-oci/have-list" and doc["schemaVersion"] == 1 and doc["destination"] == b.host
    )
    # the last generation load applied at B, per origin, from the ledger load recorded into
    assert doc["generations"] == {registry.host: 1} and result["generations"] == {registry.host: 1}
    assert [r["repository"] for r in doc["repositories"]] == sorted(
        f"{fresh_repo}/{n}" for n in ("base", "delta", "trivy")
    )
    for r in doc["repositories"]:
        assert r["blobs"] == sorted(set(r["blobs"])) and r["blobs"]
        for tag, digest in r["tags"].items():
            assert exports.get(f"{r['repository']}:{tag}", digest) == digest
            assert f"{r['repository']}:{tag}" in exports or tag.startswith("sha256-")
    assert {f"{r['repository']}:{t}" for r in doc["repositories"] for t in r["tags"]} >= set(exports)
    held = {d for r in doc["repositories"] for d in r["blobs"]}
    assert held == blob_members(week1) - {d for d in exports.values()} - _referrer_manifests(week1), (
        "B holds exactly the configs and layers week 1 carried"
    )
    # deterministic: the same mirror gives the same bytes
    again = tmp_path / "have-b-again.json"
    cli_json(run_cli, "have", b.host, "--output", again, "--ledger", ledger)
    assert again.read_bytes() == have.read_bytes()

    # an increment against the have-list holds none of B's blobs, and loads into B
    newer = make_bundle(
        tmp_path / "base-3",
        {"data/big.bin": 3 * 1024 * 1024, "advisories/b.json": b'{"id":"GHSA-b"}\n'},
        export_id="exp-base-000003",
    )
    pushed = cli_json(run_cli, "push", newer, f"{repos[0]}:base-3")
    week2 = tmp_path / "week-2.tar"
    # the have-list says generation 1 of this origin is applied at B: the increment is numbered 2,
    # and a --generation not above it is refused before anything is read
    low = cli_json(run_cli, "save", f"{repos[0]}:base-3", "--since", have, "--output", week2, "--generation", "1", expect=2)
    assert "not above 1" in low["error"]["message"] and not week2.exists()
    saved = cli_json(run_cli, "save", f"{repos[0]}:base-3", "--since", have, "--output", week2)
    assert saved["mirrorGeneration"] == 2
    assert saved["leftOut"] >= 2
    assert blob_members(week2).isdisjoint(held), "the increment holds no blob B has"
    assert pushed["digest"] in blob_members(week2), "manifests always travel"
    assert week2.stat().st_size < 1024 * 1024
    with tarfile.open(week2) as tf:
        omitted = json.loads(tf.extractfile("stella-oci/inventory.json").read())["omitted"]
    assert omitted and all(v.startswith("have-b.json") for v in omitted.values())
    cli_json(run_cli, "load", week2, b.host, "--ledger", tmp_path / "l.sqlite3")
    assert digest_at(b, f"{fresh_repo}/base", "base-3") == pushed["digest"]


def _referrer_manifests(archive: Path) -> set[str]:
    """Referrer manifests (signatures travel as referrers) are manifests, not configs or layers."""
    with tarfile.open(archive) as tf:
        inv = json.loads(tf.extractfile("stella-oci/inventory.json").read())
    return {d for e in inv["exports"] for d in [*e.get("referrers", []), *e.get("cosignTags", {}).values()]}


def test_have_refuses_a_registry_without_catalog_then_takes_repositories(
    registry, b, fresh_repo, run_cli, tmp_path
):
    bundle = make_bundle(tmp_path / "x", {"data/x.bin": 4096}, export_id="exp-have-000001")
    repo = f"{fresh_repo}/x"
    cli_json(run_cli, "push", bundle, f"{registry.host}/{repo}:x-1")
    archive = tmp_path / "x.tar"
    cli_json(run_cli, "save", f"{registry.host}/{repo}:x-1", "--output", archive)
    cli_json(run_cli, "load", archive, f"{b.host}/site", "--ledger", tmp_path / "l.sqlite3")
    proxy = FaultProxy(b.host)
    proxy.rules.append(StatusRule(404, method="GET", path_contains="/v2/_catalog", times=-1))
    try:
        refused = cli_json(run_cli, "have", f"{proxy.host}/site", "--output", tmp_path / "h.json", expect=2)
        err = refused["error"]
        assert "no catalog API" in err["message"] and "404" in err["message"]
        assert f"stella-oci have {proxy.host}/site REPO1 REPO2" in err["hint"]
        assert not (tmp_path / "h.json").exists()
        # named explicitly (relative, or in full as DEST/REPO): no catalog request
        before = len([r for r in proxy.requests if "_catalog" in r.path])
        named = tmp_path / "named.json"
        got = cli_json(
            run_cli,
            "have",
            f"{proxy.host}/site",
            f"{proxy.host}/site/{repo}",
            "no/such/repo",
            "--output",
            named,
        )
        assert got["catalog"] is False and got["missing"] == ["no/such/repo"]
        doc = json.loads(named.read_text())
        assert [r["repository"] for r in doc["repositories"]] == sorted([repo, "no/such/repo"])
        assert doc["repositories"][[r["repository"] for r in doc["repositories"]].index(repo)]["tags"] == {
            "x-1": digest_at(b, f"site/{repo}", "x-1")
        }
        assert len([r for r in proxy.requests if "_catalog" in r.path]) == before
    finally:
        proxy.stop()
    # the same registry without the proxy: the catalog below the prefix gives the same list
    # (destination aside) as naming the repository
    direct = tmp_path / "direct.json"
    cli_json(run_cli, "have", f"{b.host}/site", "--output", direct)
    listed = json.loads(direct.read_text())["repositories"]
    assert listed == [r for r in json.loads(named.read_text())["repositories"] if r["repository"] == repo]


def test_have_of_an_oci_directory(registry, fresh_repo, run_cli, tmp_path):
    bundle = make_bundle(tmp_path / "x", {"data/x.bin": 4096}, export_id="exp-have-000002")
    repo = f"{fresh_repo}/x"
    pushed = cli_json(run_cli, "push", bundle, f"{registry.host}/{repo}:x-1")
    archive = tmp_path / "x.tar"
    cli_json(run_cli, "save", f"{registry.host}/{repo}:x-1", "--output", archive)
    cli_json(run_cli, "load", archive, f"oci:{tmp_path / 'mirror'}", "--ledger", tmp_path / "l.sqlite3")
    have = tmp_path / "have.json"
    got = cli_json(run_cli, "have", f"oci:{tmp_path / 'mirror'}", "--output", have)
    assert got["repositories"] == 1
    doc = json.loads(have.read_text())
    assert doc["repositories"][0]["repository"] == repo
    assert doc["repositories"][0]["tags"] == {"x-1": pushed["digest"]}
    saved = cli_json(
        run_cli, "save", f"{registry.host}/{repo}:x-1", "--since", have, "--output", tmp_path / "y.tar"
    )
    assert saved["leftOut"] == len(doc["repositories"][0]["blobs"])


def test_save_since_refuses_a_bad_have_list(registry, fresh_repo, run_cli, tmp_path):
    bad = tmp_path / "have.json"
    bad.write_text(
        json.dumps(
            {
                "kind": "stella-oci/have-list",
                "schemaVersion": 1,
                "destination": "x:5000",
                "createdBy": "t",
                "repositories": [{"repository": "a", "tags": {}, "blobs": ["sha256:zz"]}],
            }
        )
    )
    code, out, err = run_cli(
        "save", f"{registry.host}/{fresh_repo}/x:1", "--since", bad, "--output", tmp_path / "o.tar"
    )
    assert code == 2, (code, out, err)
    assert "have-list" in err and "repositories/0/blobs/0" in err


def _put_tiny_image(client: RegistryClient, repo: str) -> None:
    """One empty config and a manifest naming it: enough for the registry to list ``repo``."""
    config = b"{}"
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    client.upload_blob(repo, digest, len(config), lambda start: io.BytesIO(config[start:]))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest, "size": len(config)},
            "layers": [],
        }
    ).encode()
    client.put_manifest(repo, "t", manifest, "application/vnd.oci.image.manifest.v1+json")


def test_catalog_read_page_by_page_following_link(b):
    """The catalog of a real registry (distribution honours ``n`` there and sends ``Link``),
    read two repositories a page: every page asked for once, in order, and every repository
    listed once (iter_catalog and iter_tags share one paginator)."""
    repos = sorted(f"cat/r{i}" for i in range(5))
    with RegistryClient(b.host, TransportOptions()) as setup:
        for repo in repos:
            _put_tiny_image(setup, repo)
    proxy = FaultProxy(b.host)
    try:
        with RegistryClient(proxy.host, TransportOptions()) as client:
            listed = list(iter_catalog(client, page_size=2))
        pages = [r.path for r in proxy.requests if r.path.startswith("/v2/_catalog")]
    finally:
        proxy.stop()
    assert listed == repos
    assert pages == [
        "/v2/_catalog?n=2",
        "/v2/_catalog?last=cat%2Fr1&n=2",
        "/v2/_catalog?last=cat%2Fr3&n=2",
    ], pages
