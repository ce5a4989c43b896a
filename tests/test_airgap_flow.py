"""Issue 4 acceptance: registry A -> oci-archive -> registry B (the mirror) -> pull, offline mode,
staleness, deltas and the import ledger, through the CLI against two real registries."""

from __future__ import annotations

import hashlib
import json
import socket
import tarfile
import threading
from pathlib import Path

import pytest
import requests

from stella_oci.export.canonical import manifest_digest
from stella_oci.schemas import validate_against
from tests.support.bundles import copy_example, make_bundle, read_export_json, tree
from tests.support.registry import start_registry

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STRICT = EXAMPLES / "airgap" / "staleness-strict.json"
WARN = EXAMPLES / "airgap" / "staleness-warn.json"
ANCHOR_OK = EXAMPLES / "airgap" / "time-anchor.json"  # 4 days after generatedAt


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """Registry B: the mirror inside the gap (a second real registry)."""
    reg = start_registry(tmp_path_factory.mktemp("mirror-registry"))
    yield reg
    reg.stop()


def cli_json(run_cli, *args, expect: int = 0, env=None) -> dict:
    code, out, err = run_cli(*args, "--format", "json", env=env)
    assert code == expect, f"exit {code}: {out}{err}"
    return json.loads(out)


def anchor_file(tmp_path: Path, timestamp: str, uncertainty: int = 50) -> Path:
    p = tmp_path / f"anchor-{timestamp.replace(':', '')}.json"
    p.write_text(json.dumps({"anchorType": "NTP", "timestamp": timestamp, "uncertainty": uncertainty, "verified": True}))
    return p


def manifest_of(reg, repo: str, ref: str) -> bytes:
    r = requests.get(
        f"{reg.url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    r.raise_for_status()
    return r.content


# ---------------------------------------------------------------------------- 1, 2: the mirror flow
def test_registry_to_archive_to_mirror_to_pull(registry, mirror, fresh_repo, run_cli, skopeo, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    ledger = tmp_path / "ledger.sqlite3"
    pushed = cli_json(run_cli, "push", bundle, f"{registry.host}/{fresh_repo}:v1")
    archive = tmp_path / "carry" / "exports.tar"
    archive.parent.mkdir()
    cli_json(run_cli, "copy", f"{registry.host}/{fresh_repo}:v1", f"oci-archive:{archive}:v1")
    # skopeo reads the archive we wrote, manifest bytes unchanged
    raw = skopeo("inspect", "--raw", f"oci-archive:{archive}:v1")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == pushed["digest"]

    # "carry" it: inside the gap, import into the mirror with the network cut off from anything else
    copied = cli_json(
        run_cli,
        "copy",
        f"oci-archive:{archive}:v1",
        f"{mirror.host}/{fresh_repo}:v1",
        "--staleness-config",
        STRICT,
        "--time-anchor",
        ANCHOR_OK,
        "--ledger",
        ledger,
    )
    assert copied["digest"] == pushed["digest"]
    assert copied["staleness"]["passed"] is True
    validate_against(copied["staleness"], "ledger-airgap-staleness", definition="StalenessValidationResult")
    validate_against(copied["provenance"], "ledger-airgap-staleness", definition="BundleProvenance")
    assert manifest_of(mirror, fresh_repo, "v1") == manifest_of(registry, fresh_repo, "v1")

    # pull "from A" by digest, served by the mirror B through --registry-mirror
    out = tmp_path / "got"
    pulled = cli_json(
        run_cli,
        "pull",
        f"{registry.host}/{fresh_repo}@{pushed['digest']}",
        "-o",
        out,
        "--registry-mirror",
        f"{registry.host}={mirror.host}",
        "--staleness-config",
        STRICT,
        "--time-anchor",
        ANCHOR_OK,
        "--ledger",
        ledger,
    )
    assert pulled["digest"] == pushed["digest"]
    assert tree(out) == tree(bundle)
    for layer in pulled["layers"]:
        assert layer in pushed["layers"]
    # every blob in B is byte-identical to A's (same digests, B verified them while copying)
    for layer in pushed["layers"]:
        assert mirror.blob_path(layer["digest"]).read_bytes() == registry.blob_path(layer["digest"]).read_bytes()

    status = cli_json(run_cli, "airgap", "status", "--ledger", ledger, "--time-anchor", ANCHOR_OK)
    validate_against(status, "ledger-airgap-staleness", definition="StalenessMetrics")
    (domain,) = status["domainMetrics"]
    assert domain["domainId"] == "mirror-full" and domain["bundleCount"] == 1


def test_mirror_really_serves_the_pull(registry, mirror, fresh_repo, run_cli, tmp_path):
    """The source registry does not have the artifact: only the mirror mapping makes the pull work."""
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    pushed = cli_json(run_cli, "push", bundle, f"{mirror.host}/upstream/{fresh_repo}:v1")
    ref = f"ghcr.io/acme/{fresh_repo}@{pushed['digest']}"
    mirrors = tmp_path / "mirrors.json"
    mirrors.write_text(json.dumps({"mirrors": {"ghcr.io/acme": f"{mirror.host}/upstream"}}))
    got = cli_json(run_cli, "pull", ref, "-o", tmp_path / "got", "--mirror-config", mirrors)
    assert got["digest"] == pushed["digest"]
    assert tree(tmp_path / "got") == tree(bundle)


def test_skopeo_layouts_read_by_copy_and_ours_read_by_skopeo(registry, fresh_repo, run_cli, skopeo, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    pushed = cli_json(run_cli, "push", bundle, f"{registry.host}/{fresh_repo}:v1")
    sk_dir = tmp_path / "skopeo-layout"
    skopeo("copy", f"docker://{registry.host}/{fresh_repo}:v1", f"oci:{sk_dir}:v1")
    ours = tmp_path / "ours.tar"
    res = cli_json(run_cli, "copy", f"oci:{sk_dir}:v1", f"oci-archive:{ours}:v1")
    assert res["digest"] == pushed["digest"]
    our_dir = tmp_path / "ours-layout"
    cli_json(run_cli, "copy", f"oci-archive:{ours}:v1", f"oci:{our_dir}:v1")
    raw = skopeo("inspect", "--raw", f"oci:{our_dir}:v1")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == pushed["digest"]
    skopeo("copy", f"oci:{our_dir}:v1", f"docker://{registry.host}/{fresh_repo}-back:v1")
    code, _, err = run_cli("verify", f"{registry.host}/{fresh_repo}-back@{pushed['digest']}")
    assert code == 0, err


# ---------------------------------------------------------------------------- 3: tampered archive
def test_tampered_archive_blob_fails_copy_and_mirror_gets_nothing(registry, mirror, fresh_repo, run_cli, tmp_path):
    # content unique to this test, so that no earlier test put the same blob into the mirror
    unique = fresh_repo.encode()
    bundle = make_bundle(
        tmp_path / "bundle",
        {"data/packages.ndjson": b'{"pkg":"a"}\n' * 200 + unique, "data/index.json": b"{}" + unique},
    )
    pushed = cli_json(run_cli, "push", bundle, f"{registry.host}/{fresh_repo}:v1")
    archive = tmp_path / "exports.tar"
    cli_json(run_cli, "copy", f"{registry.host}/{fresh_repo}:v1", f"oci-archive:{archive}:v1")
    victim = next(layer for layer in pushed["layers"] if layer["path"] == "data/packages.ndjson")
    member = f"blobs/sha256/{victim['digest'].split(':')[1]}"
    with tarfile.open(archive) as tar:
        info = tar.getmember(member)
        offset = info.offset_data
    with open(archive, "r+b") as fh:
        fh.seek(offset + 10)
        b = fh.read(1)
        fh.seek(offset + 10)
        fh.write(bytes([b[0] ^ 0x20]))
    code, out, err = run_cli("copy", f"oci-archive:{archive}:v1", f"{mirror.host}/{fresh_repo}:v1")
    assert code == 3, err
    assert victim["digest"] in err
    r = requests.get(f"{mirror.url}/v2/{fresh_repo}/tags/list", timeout=10)
    assert r.status_code == 404, "the mirror must hold no manifest of the tampered artifact"
    assert not mirror.blob_path(victim["digest"]).exists()
    code, out, err = run_cli("pull", f"oci-archive:{archive}:v1", "-o", tmp_path / "got", "--offline")
    assert code == 3 and not (tmp_path / "got").exists()


# ---------------------------------------------------------------------------- 4: offline
def test_offline_with_registry_reference_exits_5_without_a_socket(run_cli, tmp_path):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept_loop, daemon=True)
    t.start()
    try:
        for args in (
            ("pull", f"127.0.0.1:{port}/x/y:v1", "-o", str(tmp_path / "got")),
            ("verify", f"127.0.0.1:{port}/x/y:v1"),
            ("inspect", f"127.0.0.1:{port}/x/y:v1"),
            ("copy", f"oci:{tmp_path}/nothing:v1", f"127.0.0.1:{port}/x/y:v1"),
            ("push", str(EXAMPLES / "trivy-db"), f"127.0.0.1:{port}/x/y:v1"),
        ):
            code, out, err = run_cli(*args, "--offline", "--format", "json")
            assert code == 5, (args, out, err)
            assert json.loads(out)["error"]["kind"] == "offline-violation"
    finally:
        stop.set()
        t.join()
        listener.close()
    assert accepted == [], "no connection may be opened in --offline mode"


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_stella_offline_env_means_offline_for_every_command(run_cli, tmp_path, value):
    """Issue 13 acceptance 7: STELLA_OFFLINE=true (the StellaOps CLI's switch) is --offline:
    exit 5, no connection reaches a listening socket, and no partial output is left behind."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept_loop, daemon=True)
    t.start()
    env = {"STELLA_OFFLINE": value}
    try:
        for args in (
            ("pull", f"127.0.0.1:{port}/x/y:v1", "-o", str(tmp_path / "got")),
            ("verify", f"127.0.0.1:{port}/x/y:v1"),
            ("inspect", f"127.0.0.1:{port}/x/y:v1"),
            ("tags", f"127.0.0.1:{port}/x/y"),
            ("discover", f"127.0.0.1:{port}/x/y:v1"),
            ("copy", f"oci:{tmp_path}/nothing:v1", f"127.0.0.1:{port}/x/y:v1"),
            ("push", str(EXAMPLES / "trivy-db"), f"127.0.0.1:{port}/x/y:v1"),
        ):
            code, out, err = run_cli(*args, "--format", "json", env=env)
            assert code == 5, (args, out, err)
            assert json.loads(out)["error"]["kind"] == "offline-violation"
    finally:
        stop.set()
        t.join()
        listener.close()
    assert accepted == [], "STELLA_OFFLINE=true must open no connection"
    assert sorted(p.name for p in tmp_path.iterdir() if "got" in p.name) == [], "no partial pull left"


def test_stella_offline_false_still_contacts_the_registry(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    ref = f"{registry.host}/{fresh_repo}:v1"
    cli_json(run_cli, "push", bundle, ref, env={"STELLA_OFFLINE": "false"})
    cli_json(run_cli, "verify", ref, env={"STELLA_OFFLINE": "0"})


def test_offline_flow_from_archive_works(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    cli_json(run_cli, "push", bundle, f"oci-archive:{tmp_path / 'a.tar'}:v1")
    got = cli_json(run_cli, "pull", f"oci-archive:{tmp_path / 'a.tar'}:v1", "-o", tmp_path / "got", "--offline")
    assert tree(tmp_path / "got") == tree(bundle)
    assert got["provenance"]["provenanceType"] == "BUNDLE_PROVENANCE"


# ---------------------------------------------------------------------------- 5: staleness
def test_staleness_strict_warn_and_grace(run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")  # generatedAt 2026-11-20T08:00:00Z
    archive = f"oci-archive:{tmp_path / 'a.tar'}:v1"
    cli_json(run_cli, "push", bundle, archive)
    ledger = tmp_path / "ledger.sqlite3"
    eight_days = anchor_file(tmp_path, "2026-11-28T08:00:01Z")
    strict = cli_json(
        run_cli, "pull", archive, "-o", tmp_path / "s", "--staleness-config", STRICT,
        "--time-anchor", eight_days, "--ledger", ledger, expect=7,
    )
    assert strict["error"]["code"] == 7
    result = strict["staleness"]
    validate_against(result, "ledger-airgap-staleness", definition="StalenessValidationResult")
    assert result["passed"] is False and result["error"]["code"] == "ERR_AIRGAP_STALE"
    assert result["stalenessSeconds"] == 8 * 86400 + 1
    validate_against(strict["provenance"], "ledger-airgap-staleness", definition="BundleProvenance")
    assert not (tmp_path / "s").exists()

    code, out, err = run_cli(
        "pull", archive, "-o", tmp_path / "s-text", "--staleness-config", STRICT, "--time-anchor", eight_days,
        "--ledger", ledger,
    )
    assert code == 7 and "ERR_AIRGAP_STALE" in err

    warn_cfg = tmp_path / "warn.json"
    warn_cfg.write_text(json.dumps({**json.loads(STRICT.read_text()), "enforcementMode": "WARN"}))
    warned = cli_json(
        run_cli, "pull", archive, "-o", tmp_path / "w", "--staleness-config", warn_cfg,
        "--time-anchor", eight_days, "--ledger", ledger,
    )
    assert warned["staleness"]["passed"] is True
    assert warned["staleness"]["warnings"], "WARN mode passes with a warning"
    assert (tmp_path / "w" / "export.json").exists()

    grace = anchor_file(tmp_path, "2026-11-27T20:00:00Z")  # 7.5 days: past threshold, inside grace
    graced = cli_json(
        run_cli, "verify", archive, "--staleness-config", STRICT, "--time-anchor", grace, "--ledger", ledger
    )
    assert graced["staleness"]["passed"] is True
    assert graced["staleness"]["warnings"]
    validate_against(graced["staleness"], "ledger-airgap-staleness", definition="StalenessValidationResult")


# ---------------------------------------------------------------------------- 6: deltas
def _delta_bundle(root: Path, base_doc: dict, tombstones: list[str] | None) -> Path:
    delta: dict = {"baseExportId": base_doc["exportId"], "baseManifestDigest": manifest_digest(base_doc)}
    if tombstones is not None:
        delta["tombstones"] = tombstones
    return make_bundle(
        root,
        {"advisories/new.json": b'{"id":"GHSA-new"}\n'},
        export_id="exp-delta-000002",
        run_id="run-delta-000002",
        profile=("mirror", "delta", "mirror-full"),
        extra={"delta": delta},
    )


def test_delta_needs_its_base_imported_first(run_cli, tmp_path):
    base = copy_example("mirror-full", tmp_path / "base")
    base_doc = read_export_json(base)
    ledger = tmp_path / "ledger.sqlite3"
    delta = _delta_bundle(tmp_path / "delta", base_doc, ["advisories/osv/GHSA-35jh-r3h4-6jhm.json"])
    cli_json(run_cli, "push", base, f"oci-archive:{tmp_path / 'base.tar'}:v1")
    cli_json(run_cli, "push", delta, f"oci-archive:{tmp_path / 'delta.tar'}:v1")

    refused = cli_json(
        run_cli, "pull", f"oci-archive:{tmp_path / 'delta.tar'}:v1", "-o", tmp_path / "d1", "--ledger", ledger,
        expect=3,
    )
    msg = refused["error"]["message"]
    assert "ERR_EXPORT_BASE_MISSING" in msg and base_doc["exportId"] in msg
    assert not (tmp_path / "d1").exists()

    cli_json(run_cli, "pull", f"oci-archive:{tmp_path / 'base.tar'}:v1", "-o", tmp_path / "b", "--ledger", ledger)
    cli_json(run_cli, "pull", f"oci-archive:{tmp_path / 'delta.tar'}:v1", "-o", tmp_path / "d2", "--ledger", ledger)
    assert (tmp_path / "d2" / "advisories" / "new.json").exists()


def test_delta_without_tombstones_is_refused(run_cli, tmp_path):
    base_doc = read_export_json(copy_example("mirror-full", tmp_path / "base"))
    delta = _delta_bundle(tmp_path / "delta", base_doc, None)
    code, out, err = run_cli("push", delta, f"oci-archive:{tmp_path / 'd.tar'}:v1")
    # the schema itself requires delta.tombstones: such an export cannot even be pushed
    assert code == 2 and "tombstones" in err


# ---------------------------------------------------------------------------- 7: concurrent imports
def test_two_concurrent_imports_into_one_ledger(run_cli, tmp_path):
    ledger = tmp_path / "ledger.sqlite3"
    refs = []
    for name in ("mirror-full", "trivy-db"):
        bundle = copy_example(name, tmp_path / name)
        refs.append(f"oci-archive:{tmp_path / (name + '.tar')}:v1")
        cli_json(run_cli, "push", bundle, refs[-1])
    results: dict[str, int] = {}

    def pull(i: int) -> None:
        code, out, err = run_cli("pull", refs[i], "-o", tmp_path / f"got{i}", "--ledger", ledger)
        results[refs[i]] = code

    threads = [threading.Thread(target=pull, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert set(results.values()) == {0}
    status = cli_json(run_cli, "airgap", "status", "--ledger", ledger)
    validate_against(status, "ledger-airgap-staleness", definition="StalenessMetrics")
    assert sorted(d["domainId"] for d in status["domainMetrics"]) == ["mirror-full", "trivy-db"]
    assert all(d["bundleCount"] == 1 for d in status["domainMetrics"])
    code, out, err = run_cli("airgap", "status", "--ledger", ledger, "--format", "prometheus")
    assert code == 0 and 'stella_oci_airgap_staleness_seconds{domain="trivy-db"}' in out
    code, out, err = run_cli("airgap", "status", "--ledger", ledger, "--domain", "vex-advisories", "--format", "json")
    assert code == 7 and json.loads(out)["staleness"]["error"]["code"] == "ERR_AIRGAP_NO_BUNDLE"


def test_default_ledger_is_the_tests_own_file(run_cli, tmp_path, ledger_path):
    """A pull without --ledger records into $STELLA_OCI_LEDGER, which the autouse fixture points
    at this test's temporary file: the suite never writes the user's real ledger."""
    import sqlite3

    from stella_oci.airgap.ledger import LEDGER_ENV, default_ledger_path
    from tests.conftest import LEDGER_ENV as CONFTEST_LEDGER_ENV

    assert CONFTEST_LEDGER_ENV == LEDGER_ENV
    assert default_ledger_path() == ledger_path
    assert not ledger_path.exists()
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    cli_json(run_cli, "push", bundle, f"oci-archive:{tmp_path / 'a.tar'}:v1")
    cli_json(run_cli, "pull", f"oci-archive:{tmp_path / 'a.tar'}:v1", "-o", tmp_path / "got", "--offline")
    with sqlite3.connect(ledger_path) as db:
        rows = db.execute("SELECT export_id FROM imports").fetchall()
    assert rows == [(read_export_json(bundle)["exportId"],)]
