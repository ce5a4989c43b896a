"""Issue 13: save / load of many exports per transfer, through the CLI against two real
registries: A (outside, the session registry) and B (inside, started here)."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest
import requests

from stella_oci.export.canonical import manifest_digest
from tests.support.bundles import copy_example, make_bundle, read_export_json
from tests.support.registry import start_registry

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"


def cli_json(run_cli, *args, expect: int = 0) -> dict:
    code, out, err = run_cli(*args, "--format", "json")
    assert code == expect, f"exit {code}: {out}{err}"
    return json.loads(out)


def digest_at(reg, repo: str, ref: str) -> str | None:
    r = requests.head(f"{reg.url}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.headers["Docker-Content-Digest"]


def three_exports(registry, fresh_repo, run_cli, tmp_path) -> dict[str, str]:
    """base (mirror:full with a 3 MiB file), delta (mirror:delta sharing that file), trivy-db;
    two tags each, in three repositories of A. Returns {repo:tag: digest}."""
    shared = 3 * 1024 * 1024
    base = make_bundle(
        tmp_path / "base",
        {"data/big.bin": shared, "advisories/a.json": b'{"id":"GHSA-a"}\n'},
        export_id="exp-base-000001",
    )
    base_doc = read_export_json(base)
    delta = make_bundle(
        tmp_path / "delta",
        {"data/big.bin": shared, "advisories/new.json": b'{"id":"GHSA-new"}\n'},
        export_id="exp-delta-000002",
        run_id="run-delta-000002",
        profile=("mirror", "delta", "mirror-full"),
        extra={"delta": {"baseExportId": base_doc["exportId"], "baseManifestDigest": manifest_digest(base_doc),
                         "tombstones": ["advisories/a.json"]}},
    )
    trivy = copy_example("trivy-db", tmp_path / "trivy")
    out: dict[str, str] = {}
    for name, bundle in (("base", base), ("delta", delta), ("trivy", trivy)):
        repo = f"{fresh_repo}/{name}"
        pushed = cli_json(run_cli, "push", bundle, f"{registry.host}/{repo}:{name}-1")
        cli_json(run_cli, "tag", f"{registry.host}/{repo}:{name}-1", f"{name}-2")
        out[f"{repo}:{name}-1"] = out[f"{repo}:{name}-2"] = pushed["digest"]
    return out


def test_save_many_exports_load_into_b(registry, inside, fresh_repo, run_cli, skopeo, tmp_path):
    """Acceptance 1 (+ dry-run, resume-as-rerun, checksums)."""
    exports = three_exports(registry, fresh_repo, run_cli, tmp_path)
    repos = [f"{registry.host}/{fresh_repo}/{n}" for n in ("base", "delta", "trivy")]
    archive = tmp_path / "weekly.tar"
    saved = cli_json(run_cli, "save", *repos, "--all-tags", "--output", archive, "--generation", "3")
    assert saved["mirrorGeneration"] == 3
    assert sorted(f"{e['repository']}:{e['tag']}" for e in saved["exports"]) == sorted(exports)
    for e in saved["exports"]:
        assert e["digest"] == exports[f"{e['repository']}:{e['tag']}"], "every export keeps its digest"

    singles = 0
    for i, repo in enumerate(repos):
        single = tmp_path / f"single-{i}.tar"
        cli_json(run_cli, "save", repo, "--all-tags", "--output", single)
        singles += single.stat().st_size
    assert archive.stat().st_size < singles, "shared blobs are stored once"
    # the 3 MiB blob shared by base and delta is in the archive once
    with tarfile.open(archive) as tf:
        names = tf.getnames()
        assert len([n for n in names if n.startswith("blobs/sha256/")]) == len(set(names)) - len(
            [n for n in names if not n.startswith("blobs/sha256/")]
        )
        inventory = json.loads(tf.extractfile("stella-oci/inventory.json").read())
        sums = tf.extractfile("stella-oci/checksums.sha256").read().decode()
    assert archive.stat().st_size < 2 * 3 * 1024 * 1024 + 1024 * 1024
    assert inventory["mirrorGeneration"] == 3 and inventory["createdBy"].startswith("stella-oci")
    assert "index.json" in sums and "stella-oci/inventory.json" in sums

    # skopeo reads every tag from it
    for key, digest in exports.items():
        tag = key.rsplit(":", 1)[1]
        raw = skopeo("inspect", "--raw", f"oci-archive:{archive}:{tag}")
        assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest, tag

    # dry run: says what would move, writes nothing
    ledger = tmp_path / "ledger.sqlite3"
    dry = cli_json(run_cli, "load", archive, inside.host, "--dry-run", "--ledger", ledger)
    assert {e["status"] for e in dry["exports"]} == {"would-load"}
    assert all(e["newBlobs"] > 0 for e in dry["exports"])
    for key in exports:
        repo, tag = key.rsplit(":", 1)
        assert digest_at(inside, repo, tag) is None, "a dry run writes nothing"

    loaded = cli_json(run_cli, "load", archive, inside.host, "--ledger", ledger)
    assert {e["status"] for e in loaded["exports"]} == {"loaded"}
    for key, digest in exports.items():
        repo, tag = key.rsplit(":", 1)
        assert digest_at(inside, repo, tag) == digest, f"{key}: identical digest in B"

    again = cli_json(run_cli, "load", archive, inside.host, "--ledger", ledger)
    assert {e["status"] for e in again["exports"]} == {"present"}


def test_load_refuses_a_changed_archive_before_writing(registry, inside, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "trivy")
    repo = f"{fresh_repo}/trivy"
    cli_json(run_cli, "push", bundle, f"{registry.host}/{repo}:t-1")
    archive = tmp_path / "a.tar"
    cli_json(run_cli, "save", f"{registry.host}/{repo}:t-1", "--output", archive)
    with tarfile.open(archive) as tf:
        blob = max((m for m in tf.getmembers() if m.name.startswith("blobs/")), key=lambda m: m.size)
    data = bytearray(archive.read_bytes())
    data[blob.offset_data + blob.size // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    refused = cli_json(run_cli, "load", archive, inside.host, "--ledger", tmp_path / "l.sqlite3", expect=3)
    assert blob.name in refused["error"]["message"]
    assert digest_at(inside, repo, "t-1") is None


def test_a_failed_export_is_quarantined_while_others_load(registry, inside, fresh_repo, run_cli, tmp_path):
    """An export that fails verification (here: STRICT staleness with a far-future anchor is not
    used; a delta whose base was never imported) is reported, not tagged; the others load."""
    base_doc = read_export_json(copy_example("mirror-full", tmp_path / "base"))
    delta = make_bundle(
        tmp_path / "delta",
        {"advisories/new.json": b'{"id":"GHSA-new"}\n'},
        export_id="exp-delta-000009",
        run_id="run-delta-000009",
        profile=("mirror", "delta", "mirror-full"),
        extra={"delta": {"baseExportId": base_doc["exportId"], "baseManifestDigest": manifest_digest(base_doc),
                         "tombstones": []}},
    )
    trivy = copy_example("trivy-db", tmp_path / "trivy")
    cli_json(run_cli, "push", delta, f"{registry.host}/{fresh_repo}/delta:q-delta")
    good = cli_json(run_cli, "push", trivy, f"{registry.host}/{fresh_repo}/trivy:q-trivy")
    archive = tmp_path / "q.tar"
    cli_json(
        run_cli, "save", f"{registry.host}/{fresh_repo}/delta:q-delta", f"{registry.host}/{fresh_repo}/trivy:q-trivy",
        "--output", archive,
    )
    refused = cli_json(run_cli, "load", archive, inside.host, "--ledger", tmp_path / "l.sqlite3", expect=3)
    msg = refused["error"]["message"]
    assert "quarantined" in msg and "ERR_EXPORT_BASE_MISSING" in msg
    statuses = {e["source"].rsplit("/", 1)[1]: e["status"] for e in refused["error"]["details"]["exports"]}
    assert statuses == {"delta": "quarantined", "trivy": "loaded"}
    assert digest_at(inside, f"{fresh_repo}/delta", "q-delta") is None
    assert digest_at(inside, f"{fresh_repo}/trivy", "q-trivy") == good["digest"]


def test_load_cut_by_stopping_b_then_run_again_completes(registry, fresh_repo, run_cli, tmp_path):
    """Acceptance 4: the first export is already in B; the second one's first blob upload is
    held by a proxy, B is stopped under it, the load fails (exit 10); B restarts on the same
    port and storage; load again completes and B has every export with its digest."""
    import threading

    from tests.support.stall_proxy import StallProxy

    b_dir = tmp_path / "b"
    b = start_registry(b_dir)
    port = int(b.host.rsplit(":", 1)[1])
    exports = three_exports(registry, fresh_repo, run_cli, tmp_path)
    first = f"{registry.host}/{fresh_repo}/base"
    repos = [first, *(f"{registry.host}/{fresh_repo}/{n}" for n in ("trivy", "delta"))]
    archive, early = tmp_path / "all.tar", tmp_path / "first.tar"
    cli_json(run_cli, "save", first, "--all-tags", "--output", early)
    cli_json(run_cli, "save", *repos, "--all-tags", "--output", archive, "--generation", "2")
    ledger = tmp_path / "ledger.sqlite3"
    try:
        cli_json(run_cli, "load", early, b.host, "--ledger", ledger)
        proxy = StallProxy(b.host, stall_uploads=True)
        got: list = []
        t = threading.Thread(
            target=lambda: got.append(
                run_cli("load", archive, proxy.host, "--ledger", ledger, "--retries", "0", "--format", "json")
            )
        )
        t.start()
        try:
            assert proxy.wait_stalled(1, timeout=120), "the load never reached an upload"
            b.stop()
            proxy.release()
            t.join(timeout=300)
        finally:
            proxy.stop()
        code, out, err = got[0]
        assert code == 10, (code, out, err)
        # B restarts on the same storage: what was loaded before the cut is still there, the
        # cut left the second export untagged
        b = start_registry(b_dir, port=port)
        before = [k for k in exports if "/base:" in k]
        assert all(digest_at(b, *k.rsplit(":", 1)) == exports[k] for k in before), "restart kept B's tags"
        cut = [k for k in exports if "/trivy:" in k]
        assert all(digest_at(b, *k.rsplit(":", 1)) is None for k in cut)
        again = cli_json(run_cli, "load", archive, b.host, "--ledger", ledger)
        statuses = {e["source"].rsplit("/", 1)[1] + ":" + e["destination"].rsplit(":", 1)[1]: e["status"]
                    for e in again["exports"]}
        assert statuses == {
            "base:base-1": "present", "base:base-2": "present", "trivy:trivy-1": "loaded",
            "trivy:trivy-2": "loaded", "delta:delta-1": "loaded", "delta:delta-2": "loaded",
        }, again
        for key, digest in exports.items():
            repo, tag = key.rsplit(":", 1)
            assert digest_at(b, repo, tag) == digest, key
    finally:
        b.stop()


def blob_members(archive) -> set[str]:
    with tarfile.open(archive) as tf:
        return {n for n in tf.getnames() if n.startswith("blobs/sha256/")}


def test_increment_since_previous_archive(registry, inside, fresh_repo, run_cli, tmp_path):
    """Acceptance 2: a second save --since the first holds none of the first's blobs (its new
    manifest travels); it loads into B after the first; into an empty C it fails (exit 3)
    naming a missing blob and the archive that had it, and C has no manifest."""
    exports = three_exports(registry, fresh_repo, run_cli, tmp_path)
    repos = [f"{registry.host}/{fresh_repo}/{n}" for n in ("base", "delta", "trivy")]
    first, second = tmp_path / "week-1.tar", tmp_path / "week-2.tar"
    cli_json(run_cli, "save", *repos, "--all-tags", "--output", first, "--generation", "1")
    newer = make_bundle(
        tmp_path / "base-3",
        {"data/big.bin": 3 * 1024 * 1024, "advisories/b.json": b'{"id":"GHSA-b"}\n'},
        export_id="exp-base-000003",
    )
    pushed = cli_json(run_cli, "push", newer, f"{repos[0]}:base-3")
    saved = cli_json(run_cli, "save", f"{repos[0]}:base-3", "--since", first, "--output", second, "--generation", "2")
    assert saved["leftOut"] >= 2  # the shared 3 MiB file and the config at least
    assert blob_members(second).isdisjoint(blob_members(first)), "the increment holds none of the first's blobs"
    assert f"blobs/sha256/{pushed['digest'].split(':')[1]}" in blob_members(second), "manifests always travel"
    assert second.stat().st_size < 1024 * 1024

    ledger = tmp_path / "ledger.sqlite3"
    cli_json(run_cli, "load", first, inside.host, "--ledger", ledger)
    cli_json(run_cli, "load", second, inside.host, "--ledger", ledger)
    assert digest_at(inside, f"{fresh_repo}/base", "base-3") == pushed["digest"]
    for key, digest in exports.items():
        assert digest_at(inside, *key.rsplit(":", 1)) == digest

    c = start_registry(tmp_path / "c")
    try:
        refused = cli_json(run_cli, "load", second, c.host, "--ledger", tmp_path / "c.sqlite3", expect=3)
        msg = refused["error"]["message"]
        big = json.loads(
            requests.get(
                f"{registry.url}/v2/{fresh_repo}/base/manifests/base-3", headers={"Accept": ACCEPT}, timeout=10
            ).content
        )
        big_digest = next(layer["digest"] for layer in big["layers"] if layer["size"] == 3 * 1024 * 1024)
        assert big_digest in msg and "week-1.tar" in msg
        catalog = requests.get(f"{c.url}/v2/_catalog", timeout=10).json()
        assert catalog.get("repositories") in ([], None), "C has no manifest"
        assert digest_at(c, f"{fresh_repo}/base", "base-3") is None
    finally:
        c.stop()


@pytest.mark.parametrize("damage", ["remove", "flip"])
def test_split_volumes_are_checked_before_writing(registry, inside, fresh_repo, run_cli, tmp_path, damage):
    """Acceptance 3: --split-size writes FILE.000, FILE.001, ... each with its checksum; with one
    part removed or one byte changed, load refuses (exit 3) before writing; whole, it loads."""
    bundle = make_bundle(tmp_path / "b", {"data/big.bin": 2 * 1024 * 1024}, export_id="exp-split-000001")
    repo = f"{fresh_repo}/split"
    pushed = cli_json(run_cli, "push", bundle, f"{registry.host}/{repo}:s-1")
    archive = tmp_path / "media" / "w.tar"
    archive.parent.mkdir()
    saved = cli_json(run_cli, "save", f"{registry.host}/{repo}:s-1", "--output", archive, "--split-size", "1MiB")
    parts = sorted(archive.parent.glob("w.tar.[0-9][0-9][0-9]"))
    assert [p.name for p in parts] == [f"w.tar.{i:03d}" for i in range(len(parts))] and len(parts) >= 3
    assert sorted(saved["parts"]) == sorted(str(p) for p in parts) and not archive.exists()
    assert all(p.stat().st_size <= 1024 * 1024 for p in parts)
    assert all((p.parent / (p.name + ".sha256")).is_file() for p in parts)
    middle = parts[1]
    original = middle.read_bytes()
    if damage == "remove":
        middle.unlink()
    else:
        middle.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    ledger = tmp_path / "l.sqlite3"
    refused = cli_json(run_cli, "load", archive, inside.host, "--ledger", ledger, expect=3)
    assert middle.name in refused["error"]["message"]
    assert digest_at(inside, repo, "s-1") is None, "nothing written"
    middle.write_bytes(original)
    cli_json(run_cli, "load", parts[0], inside.host, "--ledger", ledger)
    assert digest_at(inside, repo, "s-1") == pushed["digest"]


def test_an_import_cut_before_its_record_is_recorded_when_run_again(registry, inside, fresh_repo, run_cli, tmp_path):
    """copy (and load, through it) writes the export, then records the import: a cut between
    the two leaves the export at DEST without its ledger row (played here by deleting the row, what
    a crash right after the write leaves). Running again records it: copy always does; load no
    longer counts an export that is there but unrecorded as present, it copies it again (every
    blob is found there) and records it. Once recorded, a run again is 'present' and adds no row."""
    import sqlite3

    def rows(ledger, sql: str) -> list[tuple]:
        with sqlite3.connect(ledger) as db:
            return db.execute(sql).fetchall()

    def forget(ledger) -> None:
        with sqlite3.connect(ledger) as db:
            db.execute("DELETE FROM imports")

    bundle = make_bundle(tmp_path / "b", {"data/cut.json": b'{"cut": 1}\n'}, export_id="exp-cut-000001")
    repo = f"{fresh_repo}/cut"
    digest = cli_json(run_cli, "push", bundle, f"{registry.host}/{repo}:c1")["digest"]

    ledger = tmp_path / "copy.sqlite3"
    target = f"{inside.host}/{repo}-copy"
    cli_json(run_cli, "copy", f"{registry.host}/{repo}:c1", f"{target}:c1", "--ledger", ledger)
    assert rows(ledger, "SELECT export_id, reference FROM imports") == [("exp-cut-000001", f"{target}@{digest}")]
    forget(ledger)
    cli_json(run_cli, "copy", f"{registry.host}/{repo}:c1", f"{target}:c1", "--ledger", ledger)
    assert rows(ledger, "SELECT export_id, reference FROM imports") == [("exp-cut-000001", f"{target}@{digest}")]

    archive = tmp_path / "cut.tar"
    cli_json(run_cli, "save", f"{registry.host}/{repo}:c1", "--output", archive)
    ledger = tmp_path / "load.sqlite3"
    dest = f"{inside.host}/site"
    where = f"{dest}/{repo}@{digest}"
    first = cli_json(run_cli, "load", archive, dest, "--ledger", ledger)
    assert [e["status"] for e in first["exports"]] == ["loaded"]
    forget(ledger)
    assert digest_at(inside, f"site/{repo}", "c1") == digest, "the export is there, its record is not"
    dry = cli_json(run_cli, "load", archive, dest, "--dry-run", "--ledger", ledger)
    assert [e["status"] for e in dry["exports"]] == ["would-load"] and rows(ledger, "SELECT * FROM imports") == []
    again = cli_json(run_cli, "load", archive, dest, "--ledger", ledger)
    assert [e["status"] for e in again["exports"]] == ["loaded"]
    assert [a["status"] for a in again["activations"]] == ["resumed"]
    assert rows(ledger, "SELECT export_id, reference FROM imports") == [("exp-cut-000001", where)]
    third = cli_json(run_cli, "load", archive, dest, "--ledger", ledger)
    assert [e["status"] for e in third["exports"]] == ["present"]
    assert rows(ledger, "SELECT COUNT(*) FROM imports") == [(1,)], "a recorded export is not recorded twice"
