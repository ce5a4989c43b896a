"""Issue 13, acceptance 5: mirror generations and export rollback, through the CLI against two
real registries (A: the session registry, outside; B: started here, inside), plus the ledger's
migration from schema version 1."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone

import jsonschema
import pytest
import requests

from stella_oci.airgap import Ledger
from stella_oci.errors import InvalidInputError
from stella_oci.output_schemas import shipped
from tests.conftest import CLI_TIMEOUT, REPO_ROOT, _cli_env
from tests.support.bundles import make_bundle
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.ledger_barrier import release_when_racing
from tests.support.registry import start_registry
from tests.test_airgap_archive import cli_json, digest_at

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
FORCE = "--force-activate --force-reason"
EXAMPLES = REPO_ROOT / "examples"
#: The members of ``airgap history --format json`` (docs/output.md), nulls included.
HISTORY_GENERATION_KEYS = {
    "id", "origin", "destination", "mirrorGeneration", "previousGeneration", "archive", "archiveName",
    "activatedAt", "forcedReason",
}
HISTORY_IMPORT_KEYS = {
    "id", "exportId", "tenant", "profile", "profileName", "domain", "manifestDigest", "generatedAt",
    "importedAt", "reference", "archive", "forcedReason",
}


def history_json(run_cli, ledger) -> dict:
    """``airgap history --format json``, checked against its shipped schema and documented members."""
    doc = cli_json(run_cli, "airgap", "history", "--ledger", ledger)
    jsonschema.Draft202012Validator(shipped("airgap-history")).validate(doc)
    assert set(doc) == {"generations", "imports"}
    assert all(set(g) == HISTORY_GENERATION_KEYS for g in doc["generations"]), doc["generations"]
    assert all(set(i) == HISTORY_IMPORT_KEYS for i in doc["imports"]), doc["imports"]
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
    assert all(stamp.match(g["activatedAt"]) for g in doc["generations"])
    assert all(stamp.match(i["generatedAt"]) and stamp.match(i["importedAt"]) for i in doc["imports"])
    return doc




def layer_digests(reg, repo: str, tag: str) -> list[str]:
    r = requests.get(f"{reg.url}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=10)
    r.raise_for_status()
    return [layer["digest"] for layer in r.json()["layers"]]


def has_blob(reg, repo: str, digest: str) -> bool:
    return requests.head(f"{reg.url}/v2/{repo}/blobs/{digest}", timeout=10).status_code == 200


def rows(ledger, sql: str) -> list[tuple]:
    with sqlite3.connect(ledger) as db:
        return db.execute(sql).fetchall()


def push_week(registry, run_cli, tmp_path, repo: str, week: int, generated_at: str = "2026-11-20T08:00:00Z") -> str:
    bundle = make_bundle(
        tmp_path / f"week-{week}",
        {f"data/week-{week}.json": f'{{"week": {week}}}\n'.encode()},
        export_id=f"exp-week-0000{week}",
        extra={"generatedAt": generated_at},
    )
    return cli_json(run_cli, "push", bundle, f"{registry.host}/{repo}:w{week}")["digest"]


def test_generation_replay_and_lower_generation_refused_before_writing(
    registry, inside, fresh_repo, run_cli, tmp_path
):
    repo = f"{fresh_repo}/gen"
    pushed = {n: push_week(registry, run_cli, tmp_path, repo, n) for n in (1, 2, 3, 4)}

    def save(week: int, name: str, *extra: str) -> dict:
        return cli_json(run_cli, "save", f"{registry.host}/{repo}:w{week}", "--output", tmp_path / name, *extra)

    ledger = tmp_path / "ledger.sqlite3"
    assert save(1, "g5.tar", "--generation", "5")["origin"] == registry.host
    loaded = cli_json(run_cli, "load", tmp_path / "g5.tar", inside.host, "--ledger", ledger)
    assert [(a["mirrorGeneration"], a["status"]) for a in loaded["activations"]] == [(5, "activated")]

    # save --since: the previous archive's generation + 1; one not above it is refused (exit 2)
    assert save(2, "since.tar", "--since", tmp_path / "g5.tar")["mirrorGeneration"] == 6
    code, out, err = run_cli("save", f"{registry.host}/{repo}:w2", "--output", tmp_path / "x.tar",
                             "--since", tmp_path / "g5.tar", "--generation", "5")
    assert code == 2 and "not above 5" in err and not (tmp_path / "x.tar").exists()

    # the same generation again, in another archive: a replay, refused before anything is written
    save(2, "g5-replay.tar", "--generation", "5")
    refused = cli_json(run_cli, "load", tmp_path / "g5-replay.tar", inside.host, "--ledger", ledger, expect=3)
    msg = refused["error"]["message"]
    assert "ERR_AIRGAP_GENERATION_REPLAY" in msg and "g5-replay.tar has mirrorGeneration 5" in msg, msg
    assert "mirrorGeneration 5 already applied" in msg and "g5.tar" in msg and FORCE in refused["error"]["hint"]
    assert refused["error"]["details"]["lastGeneration"] == 5
    assert digest_at(inside, repo, "w2") is None, "a refused load writes no manifest"
    w2_layer = layer_digests(registry, repo, "w2")[-1]
    assert not has_blob(inside, repo, w2_layer), "a refused load writes no blob"

    # a lower generation: refused, naming both
    save(3, "g7.tar", "--generation", "7")
    cli_json(run_cli, "load", tmp_path / "g7.tar", inside.host, "--ledger", ledger)
    save(4, "g6.tar", "--generation", "6")
    lower = cli_json(run_cli, "load", tmp_path / "g6.tar", inside.host, "--ledger", ledger, expect=3)
    msg = lower["error"]["message"]
    assert "g6.tar has mirrorGeneration 6, older than mirrorGeneration 7" in msg and "g7.tar" in msg, msg
    assert digest_at(inside, repo, "w4") is None
    # an old archive whose exports are all there already is refused as well
    cli_json(run_cli, "load", tmp_path / "g5.tar", inside.host, "--ledger", ledger, expect=3)
    # the archive activated last, run again: a resume (nothing new recorded)
    again = cli_json(run_cli, "load", tmp_path / "g7.tar", inside.host, "--ledger", ledger)
    assert [a["status"] for a in again["activations"]] == ["resumed"]
    assert {e["status"] for e in again["exports"]} == {"present"}
    code, out, err = run_cli("load", tmp_path / "g7.tar", inside.host, "--ledger", ledger)
    assert code == 0 and f"g7.tar: mirrorGeneration 7 of {registry.host} resumed (before: 7)" in out, out + err

    # --force-activate without a reason: exit 2, nothing written
    code, out, err = run_cli("load", tmp_path / "g6.tar", inside.host, "--ledger", ledger, "--force-activate")
    assert code == 2 and "--force-reason" in err and digest_at(inside, repo, "w4") is None
    forced = cli_json(run_cli, "load", tmp_path / "g6.tar", inside.host, "--ledger", ledger,
                      "--force-activate", "--force-reason", "drill: back to 6 (ticket 12)")
    assert [(a["status"], a["forceReason"], a["previousGeneration"]) for a in forced["activations"]] == [
        ("forced", "drill: back to 6 (ticket 12)", 7)
    ]
    assert digest_at(inside, repo, "w4") == pushed[4]
    assert rows(ledger, "SELECT generation, previous_generation, archive_name, forced_reason FROM generations "
                        "ORDER BY id") == [
        (5, None, "g5.tar", None),
        (7, 5, "g7.tar", None),
        (6, 7, "g6.tar", "drill: back to 6 (ticket 12)"),
    ]
    history = history_json(run_cli, ledger)
    assert [g["forcedReason"] for g in history["generations"]] == [None, None, "drill: back to 6 (ticket 12)"]
    # monotonic: the forced 6 does not lower the mark, 7 is still the last one to beat
    save(1, "g7-again.tar", "--generation", "7")
    cli_json(run_cli, "load", tmp_path / "g7-again.tar", inside.host, "--ledger", ledger, expect=3)
    assert digest_at(inside, repo, "w1") == pushed[1]


def test_export_rollback_refused_wherever_an_import_is_recorded(registry, inside, fresh_repo, run_cli, tmp_path):
    repo = f"{fresh_repo}/feed"
    push_week(registry, run_cli, tmp_path, repo, 47, "2026-11-27T08:00:00Z")
    old = push_week(registry, run_cli, tmp_path, repo, 46, "2026-11-20T08:00:00Z")
    ledger = tmp_path / "ledger.sqlite3"
    cli_json(run_cli, "save", f"{registry.host}/{repo}:w47", "--output", tmp_path / "w47.tar")
    cli_json(run_cli, "load", tmp_path / "w47.tar", inside.host, "--ledger", ledger)

    cli_json(run_cli, "save", f"{registry.host}/{repo}:w46", "--output", tmp_path / "w46.tar", "--since",
             tmp_path / "w47.tar")
    refused = cli_json(run_cli, "load", tmp_path / "w46.tar", inside.host, "--ledger", ledger, expect=3)
    msg = refused["error"]["message"]
    assert "quarantined" in msg and "ERR_AIRGAP_EXPORT_ROLLBACK" in msg, msg
    assert "exp-week-000046" in msg and "2026-11-20T08:00:00Z" in msg
    assert "exp-week-000047" in msg and "2026-11-27T08:00:00Z" in msg and FORCE in msg
    assert digest_at(inside, repo, "w46") is None

    # copy into a registry and pull with the ledger record imports too: the same rule
    copied = cli_json(run_cli, "copy", f"{registry.host}/{repo}:w46", f"{inside.host}/{repo}-copy:w46",
                      "--ledger", ledger, expect=3)
    assert "ERR_AIRGAP_EXPORT_ROLLBACK" in copied["error"]["message"]
    assert digest_at(inside, f"{repo}-copy", "w46") is None
    pulled = cli_json(run_cli, "pull", f"{registry.host}/{repo}:w46", "--output", tmp_path / "out",
                      "--ledger", ledger, expect=3)
    assert "ERR_AIRGAP_EXPORT_ROLLBACK" in pulled["error"]["message"] and not (tmp_path / "out").exists()
    # verify records nothing: --force-activate makes no sense there
    code, _, err = run_cli("verify", f"{registry.host}/{repo}:w46", "--force-activate", "--force-reason", "x")
    assert code == 2 and "nothing is activated" in err
    assert rows(ledger, "SELECT export_id FROM imports") == [("exp-week-000047",)]

    reason = "re-issue week 46 after the bad week 47 feed (ticket 7)"
    forced = cli_json(run_cli, "load", tmp_path / "w46.tar", inside.host, "--ledger", ledger,
                      "--force-activate", "--force-reason", reason)
    assert [e["status"] for e in forced["exports"]] == ["loaded"]
    assert [a["status"] for a in forced["activations"]] == ["resumed"], "generation 2 was activated by the refused run"
    assert digest_at(inside, repo, "w46") == old
    pulled = cli_json(run_cli, "pull", f"{registry.host}/{repo}:w46", "--output", tmp_path / "out",
                      "--ledger", ledger, "--force-activate", "--force-reason", reason)
    assert pulled["provenance"]["metadata"]["forceReason"] == reason
    assert rows(ledger, "SELECT export_id, forced_reason FROM imports ORDER BY id") == [
        ("exp-week-000047", None),
        ("exp-week-000046", reason),
        ("exp-week-000046", reason),
    ]
    history = history_json(run_cli, ledger)
    assert [i["forcedReason"] for i in history["imports"]] == [None, reason, reason]
    assert [i["generatedAt"] for i in history["imports"]] == [
        "2026-11-27T08:00:00Z", "2026-11-20T08:00:00Z", "2026-11-20T08:00:00Z"
    ]


def test_exports_of_one_archive_are_not_rollbacks_of_each_other(registry, inside, fresh_repo, run_cli, tmp_path):
    """--latest 2 saves the newest first; loading it must not refuse the older one."""
    repo = f"{fresh_repo}/latest"
    push_week(registry, run_cli, tmp_path, repo, 46, "2026-11-20T08:00:00Z")
    push_week(registry, run_cli, tmp_path, repo, 47, "2026-11-27T08:00:00Z")
    saved = cli_json(run_cli, "save", f"{registry.host}/{repo}", "--latest", "2", "--output", tmp_path / "both.tar")
    assert [e["tag"] for e in saved["exports"]] == ["w47", "w46"], "newest first: the older one is loaded second"
    ledger = tmp_path / "ledger.sqlite3"
    loaded = cli_json(run_cli, "load", tmp_path / "both.tar", inside.host, "--ledger", ledger)
    assert sorted(e["status"] for e in loaded["exports"]) == ["loaded"] * len(saved["exports"])
    assert sorted(r[0] for r in rows(ledger, "SELECT export_id FROM imports")) == [
        "exp-week-000046", "exp-week-000047"
    ]


def test_latest_counts_exports_not_tags(registry, fresh_repo, run_cli, tmp_path):
    """--latest 2 is the two newest manifests: a second tag on the newest one (latest) does not
    push the older export out, and both tags of the newest are saved."""
    repo = f"{fresh_repo}/two-tags"
    w45 = push_week(registry, run_cli, tmp_path, repo, 45, "2026-11-13T08:00:00Z")
    w46 = push_week(registry, run_cli, tmp_path, repo, 46, "2026-11-20T08:00:00Z")
    w47 = push_week(registry, run_cli, tmp_path, repo, 47, "2026-11-27T08:00:00Z")
    code, _, err = run_cli("tag", f"{registry.host}/{repo}:w47", "latest")
    assert code == 0, err
    saved = cli_json(run_cli, "save", f"{registry.host}/{repo}", "--latest", "2", "--output", tmp_path / "two.tar")
    assert [(e["tag"], e["digest"]) for e in saved["exports"]] == [("w47", w47), ("latest", w47), ("w46", w46)]
    assert w45 not in {e["digest"] for e in saved["exports"]}
    code, out, err = run_cli("save", f"{registry.host}/{repo}", "--latest", "1", "--output", tmp_path / "one.tar")
    assert code == 0, err
    assert "one.tar: 1 export(s) under 2 tags," in out, out
    assert {line.rsplit("@", 1)[-1] for line in out.splitlines()[1:]} == {w47}, out


def test_a_cut_load_run_again_is_a_resume_not_a_replay(registry, fresh_repo, run_cli, tmp_path):
    """The generation is activated before the first export moves; the load is cut (the second
    export's manifest upload fails, exit 10); the same archive at the same DEST finishes."""
    b = start_registry(tmp_path / "b")
    proxy = FaultProxy(b.host)
    try:
        first = push_week(registry, run_cli, tmp_path, f"{fresh_repo}/first", 1)
        second = push_week(registry, run_cli, tmp_path, f"{fresh_repo}/second", 2)
        archive = tmp_path / "cut.tar"
        cli_json(run_cli, "save", f"{registry.host}/{fresh_repo}/first:w1", f"{registry.host}/{fresh_repo}/second:w2",
                 "--output", archive, "--generation", "9")
        ledger = tmp_path / "ledger.sqlite3"
        proxy.faults = [Fault("status", method="PUT", path=rf"/v2/{re.escape(fresh_repo)}/second/manifests/",
                              times=-1, status=503)]
        code, out, err = run_cli("load", archive, proxy.host, "--ledger", ledger, "--retries", "0")
        assert code == 10, (code, out, err)
        assert digest_at(b, f"{fresh_repo}/first", "w1") == first
        assert digest_at(b, f"{fresh_repo}/second", "w2") is None
        assert rows(ledger, "SELECT generation FROM generations") == [(9,)], "activated before the first write"

        proxy.faults = []
        again = cli_json(run_cli, "load", archive, proxy.host, "--ledger", ledger)
        assert [a["status"] for a in again["activations"]] == ["resumed"]
        assert sorted(e["status"] for e in again["exports"]) == ["loaded", "present"]
        assert digest_at(b, f"{fresh_repo}/second", "w2") == second
        assert rows(ledger, "SELECT generation FROM generations") == [(9,)]
    finally:
        proxy.stop()
        b.stop()


V1_SCHEMA = """
CREATE TABLE imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT, export_id TEXT NOT NULL, bundle_id TEXT NOT NULL, run_id TEXT,
    tenant TEXT, profile TEXT, profile_name TEXT, domain TEXT NOT NULL, manifest_digest TEXT,
    export_manifest_digest TEXT NOT NULL, generated_at TEXT NOT NULL, generated_at_us INTEGER NOT NULL,
    imported_at TEXT NOT NULL, imported_at_us INTEGER NOT NULL, time_anchor TEXT NOT NULL, reference TEXT,
    base_export_id TEXT, base_manifest_digest TEXT, staleness_seconds INTEGER, provenance TEXT NOT NULL
);
CREATE INDEX imports_export ON imports (export_id, export_manifest_digest);
CREATE INDEX imports_domain ON imports (domain, tenant);
INSERT INTO imports VALUES (1, 'exp-old-000001', 'b', NULL, 'acme', 'mirror:full', 'mirror-full', 'mirror-full',
    NULL, 'sha256:00', '2026-11-27T08:00:00Z', 1795766400000000, '2026-11-28T08:00:00Z', 1795852800000000,
    '{}', NULL, NULL, NULL, 0, '{}');
PRAGMA user_version = 1;
"""


def test_a_version_1_ledger_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
    with Ledger(path) as ledger:
        (old,) = ledger.imports()
        assert (old.export_id, old.archive, old.forced_reason) == ("exp-old-000001", None, None)
        newest = ledger.newest_export(tenant="acme", profile="mirror:full", profile_name="mirror-full")
        assert newest is not None and newest.export_id == "exp-old-000001"
        assert ledger.generations() == []
    assert rows(path, "PRAGMA user_version") == [(2,)]
    columns = {r[1] for r in rows(path, "PRAGMA table_info(imports)")}
    assert {"archive", "forced_reason"} <= columns
    with Ledger(path) as ledger:  # opening again changes nothing
        assert len(ledger) == 1


def test_ledger_read_only_and_in_memory_only_read_the_file(tmp_path):
    """Ledger.read_only reads a version-1 ledger as it is (nothing migrated, writes refused);
    Ledger.in_memory copies a current (WAL) ledger without leaving -wal/-shm beside it; a newer
    schema is refused; no file is an empty ledger, not created."""
    v1 = tmp_path / "v1" / "ledger.sqlite3"
    v1.parent.mkdir()
    with sqlite3.connect(v1) as db:
        db.executescript(V1_SCHEMA)
    current = tmp_path / "current" / "ledger.sqlite3"
    Ledger(current).close()
    states = {p: _file_state(p) for p in (v1, current)}
    with Ledger.read_only(v1) as ledger:
        (old,) = ledger.imports()
        assert (old.export_id, old.archive, old.forced_reason) == ("exp-old-000001", None, None)
        assert ledger.generations() == [] and len(ledger) == 1
        with pytest.raises(InvalidInputError, match=r"readonly|read-only"):
            ledger.record_generation(
                origin="o", destination="d", generation=1, previous_generation=None, archive="a",
                archive_name=None, activated_at=datetime(2026, 11, 29, tzinfo=timezone.utc),
            )
    for path in (v1, current):
        with Ledger.in_memory(path) as copy, Ledger.read_only(path) as ledger:
            assert len(copy) == len(ledger)
        assert _file_state(path) == states[path], path
    with sqlite3.connect(tmp_path / "newer.sqlite3") as db:
        db.execute("PRAGMA user_version = 3")
    with pytest.raises(InvalidInputError, match="schema version 3, newer"):
        Ledger.read_only(tmp_path / "newer.sqlite3")
    with Ledger.read_only(tmp_path / "none" / "ledger.sqlite3") as ledger:
        assert len(ledger) == 0
    assert not (tmp_path / "none").exists()


def test_dry_run_on_a_version_1_ledger_leaves_the_file_as_it_was(registry, inside, fresh_repo, run_cli, tmp_path):
    """load --dry-run reads a version-1 ledger (migrated in memory only) and reports what the
    real load would do; the file keeps its bytes, mtime and schema version, and nothing is
    added next to it. The real load then migrates it."""
    repo = f"{fresh_repo}/v1dry"
    push_week(registry, run_cli, tmp_path, repo, 48, "2026-12-04T08:00:00Z")
    cli_json(run_cli, "save", f"{registry.host}/{repo}:w48", "--output", tmp_path / "w48.tar", "--generation", "3")
    ledger = tmp_path / "v1" / "ledger.sqlite3"
    ledger.parent.mkdir()
    with sqlite3.connect(ledger) as db:
        db.executescript(V1_SCHEMA)
    before = (ledger.read_bytes(), ledger.stat().st_mtime_ns, sorted(p.name for p in ledger.parent.iterdir()))
    os.utime(ledger, ns=(before[1] - 10**9, before[1] - 10**9))  # (an mtime a rewrite would surely move)
    before = (before[0], ledger.stat().st_mtime_ns, before[2])

    dry = cli_json(run_cli, "load", tmp_path / "w48.tar", inside.host, "--dry-run", "--ledger", ledger)
    assert [(a["mirrorGeneration"], a["status"]) for a in dry["activations"]] == [(3, "would-activate")]
    assert [e["status"] for e in dry["exports"]] == ["would-load"]
    after = (ledger.read_bytes(), ledger.stat().st_mtime_ns, sorted(p.name for p in ledger.parent.iterdir()))
    assert after == before, "a dry run changed the ledger file"
    assert rows(ledger, "PRAGMA user_version") == [(1,)]
    assert digest_at(inside, repo, "w48") is None

    real = cli_json(run_cli, "load", tmp_path / "w48.tar", inside.host, "--ledger", ledger)
    assert [(a["mirrorGeneration"], a["status"]) for a in real["activations"]] == [(3, "activated")]
    assert [e["status"] for e in real["exports"]] == ["loaded"]
    assert rows(ledger, "PRAGMA user_version") == [(2,)]


def _file_state(ledger) -> tuple:
    """What a command that only reads must leave as it was: the bytes, the mtime, the files
    beside the ledger (no -wal/-shm/-journal), and the schema version."""
    return (
        ledger.read_bytes(),
        ledger.stat().st_mtime_ns,
        sorted(p.name for p in ledger.parent.iterdir()),
        ledger.read_bytes()[60:64],  # the header's user_version (read without opening it)
    )


def test_read_only_commands_leave_the_ledger_file_as_it_was(inside, fresh_repo, run_cli, tmp_path):
    """airgap status (all domains, one domain; json, text, prometheus), airgap history and have
    only read the ledger: a version-1 one keeps its bytes, mtime and schema version (it is not
    migrated) and a current one is left without -wal/-shm files; each prints what it prints for
    the same ledger migrated (the rows of a version 1 ledger, the generations of a current one)."""
    dest = f"{inside.host}/{fresh_repo}"
    v1 = tmp_path / "v1" / "ledger.sqlite3"
    v1.parent.mkdir()
    with sqlite3.connect(v1) as db:
        db.executescript(V1_SCHEMA)
    migrated = tmp_path / "migrated" / "ledger.sqlite3"
    migrated.parent.mkdir()
    migrated.write_bytes(v1.read_bytes())
    Ledger(migrated).close()
    current = tmp_path / "current" / "ledger.sqlite3"
    with Ledger(current) as db:
        db.record_generation(
            origin="a.example", destination=dest, generation=7, previous_generation=None,
            archive="sha256:" + "a" * 64, archive_name="w48.tar",
            activated_at=datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc),
        )
    anchor = EXAMPLES / "airgap" / "time-anchor-8-days-later.json"
    commands = [
        ("airgap", "status", "--time-anchor", anchor, "--format", "json"),
        ("airgap", "status", "--time-anchor", anchor, "--format", "prometheus"),
        ("airgap", "status", "--time-anchor", anchor),
        ("airgap", "status", "--time-anchor", anchor, "--domain", "mirror-full", "--tenant", "acme", "--format", "json"),
        ("airgap", "history", "--format", "json"),
        ("airgap", "history", "--forced"),
        ("have", dest, "--format", "json"),
    ]
    for ledger, same_as in ((v1, migrated), (current, current)):
        old = ledger.stat().st_mtime_ns - 10**9  # (an mtime a rewrite would surely move)
        os.utime(ledger, ns=(old, old))
        before = _file_state(ledger)
        for n, command in enumerate(commands):
            extra = ("--output", tmp_path / f"have-{n}.json") if command[0] == "have" else ()
            code, out, err = run_cli(*command, "--ledger", ledger, *extra)
            # (the current ledger has no import: its one-domain check is STRICT's exit 7)
            assert code == (7 if ledger == current and "--domain" in command else 0), f"{command}: {out}{err}"
            assert _file_state(ledger) == before, f"{' '.join(map(str, command))} changed the ledger {ledger}"
            again, expected, err = run_cli(*command, "--ledger", same_as, *extra)
            assert again == code, f"{command}: exit {again}: {expected}{err}"
            assert out.replace(str(ledger), "L") == expected.replace(str(same_as), "L"), command
            if command[0] == "have":
                generations = json.loads(out)["generations"]
                assert generations == ({} if ledger == v1 else {"a.example": 7})
    assert rows(v1, "PRAGMA user_version") == [(1,)]
    assert "archive" not in {r[1] for r in rows(v1, "PRAGMA table_info(imports)")}
    history = history_json(run_cli, v1)
    assert [(i["exportId"], i["archive"], i["forcedReason"]) for i in history["imports"]] == [
        ("exp-old-000001", None, None)
    ]

    missing = tmp_path / "nowhere" / "ledger.sqlite3"
    for command in (("airgap", "status"), ("airgap", "history"), ("have", dest, "--output", tmp_path / "h.json")):
        code, out, err = run_cli(*command, "--ledger", missing)
        assert code == 2, f"{command}: exit {code}: {out}{err}"
    assert not missing.parent.exists()


def test_dry_run_refuses_what_load_would_refuse_and_writes_nothing(registry, inside, fresh_repo, run_cli, tmp_path):
    """load --dry-run checks the rollback rule as the real load does (against the ledger, and
    against what the exports before it in the same load would have recorded), reports the export
    as would-quarantine with the real load's reason, exits 3 as the real load does, and writes
    neither the ledger nor the registry."""
    repo = f"{fresh_repo}/dry"
    push_week(registry, run_cli, tmp_path, repo, 47, "2026-11-27T08:00:00Z")
    push_week(registry, run_cli, tmp_path, repo, 46, "2026-11-20T08:00:00Z")
    cli_json(run_cli, "save", f"{registry.host}/{repo}:w47", "--output", tmp_path / "w47.tar")
    cli_json(run_cli, "save", f"{registry.host}/{repo}:w46", "--output", tmp_path / "w46.tar", "--since",
             tmp_path / "w47.tar")

    # 1. both archives in one load, into an empty mirror with no ledger yet: w47 would be recorded
    # first, so w46 would roll it back
    fresh_ledger = tmp_path / "fresh" / "ledger.sqlite3"
    fresh_ledger.parent.mkdir()
    dest = f"{inside.host}/fresh"
    dry = cli_json(run_cli, "load", tmp_path / "w47.tar", tmp_path / "w46.tar", dest, "--dry-run",
                   "--ledger", fresh_ledger, expect=3)
    err = dry["error"]
    assert err["message"].startswith("load --dry-run: 1 export(s) would be quarantined"), err["message"]
    assert "ERR_AIRGAP_EXPORT_ROLLBACK" in err["message"] and "exp-week-000047" in err["message"]
    assert err["message"].endswith("nothing was written (dry run)")
    assert [(e["destination"].rsplit(":", 1)[1], e["status"]) for e in err["details"]["exports"]] == [
        ("w47", "would-load"), ("w46", "would-quarantine")
    ]
    assert list(fresh_ledger.parent.iterdir()) == [], "a dry run creates no ledger"
    assert digest_at(inside, f"fresh/{repo}", "w47") is None and digest_at(inside, f"fresh/{repo}", "w46") is None
    real = cli_json(run_cli, "load", tmp_path / "w47.tar", tmp_path / "w46.tar", dest, "--ledger", fresh_ledger,
                    expect=3)
    assert [(e["destination"].rsplit(":", 1)[1], e["status"]) for e in real["error"]["details"]["exports"]] == [
        ("w47", "loaded"), ("w46", "quarantined")
    ]

    # 2. week 47 loaded (recorded) first, week 46 alone afterwards
    ledger = tmp_path / "ledger.sqlite3"
    cli_json(run_cli, "load", tmp_path / "w47.tar", inside.host, "--ledger", ledger)
    ledger_bytes = ledger.read_bytes()
    dry = cli_json(run_cli, "load", tmp_path / "w46.tar", inside.host, "--dry-run", "--ledger", ledger, expect=3)
    msg = dry["error"]["message"]
    assert "ERR_AIRGAP_EXPORT_ROLLBACK" in msg and "exp-week-000046" in msg and "exp-week-000047" in msg, msg
    assert f"(ledger {ledger})" in msg, "the message names the real ledger, not the dry run's copy"
    assert [e["status"] for e in dry["error"]["details"]["exports"]] == ["would-quarantine"]
    assert ledger.read_bytes() == ledger_bytes, "a dry run writes nothing to the ledger"
    assert rows(ledger, "SELECT export_id FROM imports") == [("exp-week-000047",)]
    assert rows(ledger, "SELECT generation FROM generations") == [(1,)]
    assert digest_at(inside, repo, "w46") is None, "a dry run writes nothing to the registry"
    # forced, the dry run would load it (exit 0), still writing nothing
    forced = cli_json(run_cli, "load", tmp_path / "w46.tar", inside.host, "--dry-run", "--ledger", ledger,
                      "--force-activate", "--force-reason", "drill")
    assert [e["status"] for e in forced["exports"]] == ["would-load"]
    assert ledger.read_bytes() == ledger_bytes and digest_at(inside, repo, "w46") is None
    # the real load: the same refusal, the same exit code
    real = cli_json(run_cli, "load", tmp_path / "w46.tar", inside.host, "--ledger", ledger, expect=3)
    assert "ERR_AIRGAP_EXPORT_ROLLBACK" in real["error"]["message"]
    assert [e["status"] for e in real["error"]["details"]["exports"]] == ["quarantined"]
    assert digest_at(inside, repo, "w46") is None


def test_two_loads_at_once_activate_a_generation_once(registry, inside, fresh_repo, run_cli, tmp_path):
    """Two ``stella-oci load`` processes, two archives of one origin with the same
    mirrorGeneration, one DEST and one ledger, inside the generation check at the same time
    (tests/support/ledger_barrier.py holds each one after it read the generations until the test
    releases them): the check and the record are one BEGIN IMMEDIATE transaction, so the second
    waits at the lock, then sees the first's activation: exactly one activates, the other is
    refused as a replay (exit 3) before writing anything, and the ledger has one row for it."""
    repo = f"{fresh_repo}/race"
    pushed = {n: push_week(registry, run_cli, tmp_path, repo, n) for n in (1, 2)}
    for n in (1, 2):
        cli_json(run_cli, "save", f"{registry.host}/{repo}:w{n}", "--output", tmp_path / f"race-{n}.tar",
                 "--generation", "9")
    ledger = tmp_path / "ledger.sqlite3"
    Ledger(ledger).close()  # created (WAL) before: the race is about the generation, not the file
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = _cli_env({"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))})
    names = ("one", "two")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "tests.support.ledger_barrier", str(barrier), name, "load",
             str(tmp_path / f"race-{n}.tar"), inside.host, "--ledger", str(ledger), "--format", "json"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            cwd=tmp_path,
        )
        for name, n in zip(names, (1, 2))
    }

    def ended() -> str | None:
        for name, p in procs.items():
            if p.poll() is not None:
                out, err = p.communicate()
                return f"{name}: exit {p.returncode}: {out}{err}"
        return None

    try:
        how = release_when_racing(barrier, names, ledger, ended)
        outs = {name: p.communicate(timeout=CLI_TIMEOUT) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    assert how == "one-waits", "both processes read the generations at once: the check is not under the lock"
    codes = {name: p.returncode for name, p in procs.items()}
    assert sorted(codes.values()) == [0, 3], (codes, outs)
    winner = next(n for n in names if codes[n] == 0)
    loser = next(n for n in names if codes[n] == 3)
    won, lost = json.loads(outs[winner][0]), json.loads(outs[loser][0])
    assert [(a["mirrorGeneration"], a["status"]) for a in won["activations"]] == [(9, "activated")]
    msg = lost["error"]["message"]
    assert "ERR_AIRGAP_GENERATION_REPLAY" in msg and "the same generation as mirrorGeneration 9" in msg, msg
    w, lw = names.index(winner) + 1, names.index(loser) + 1
    assert rows(ledger, "SELECT generation, archive_name FROM generations") == [(9, f"race-{w}.tar")]
    assert rows(ledger, "SELECT export_id FROM imports") == [(f"exp-week-0000{w}",)]
    assert digest_at(inside, repo, f"w{w}") == pushed[w]
    assert digest_at(inside, repo, f"w{lw}") is None, "the refused load wrote nothing"


def test_a_generation_counts_in_a_ledger_without_imports(registry, inside, fresh_repo, run_cli, tmp_path):
    """A load whose every export was quarantined has activated its generation, and its ledger
    holds that activation but no import: another archive of the same generation is still a
    replay (before, a Ledger's truth value, its number of imports, hid the generations)."""
    repo = f"{fresh_repo}/noimports"
    for n in (1, 2):
        push_week(registry, run_cli, tmp_path, repo, n)  # generatedAt 2026-11-20
        cli_json(run_cli, "save", f"{registry.host}/{repo}:w{n}", "--output", tmp_path / f"g5-{n}.tar",
                 "--generation", "5")
    anchor = tmp_path / "anchor.json"  # 30 days later: stale under the STRICT 7-day policy
    anchor.write_text('{"anchorType": "NTP", "source": "t", "timestamp": "2026-12-20T08:00:00Z", "uncertainty": 0}')
    ledger = tmp_path / "ledger.sqlite3"
    stale = cli_json(run_cli, "load", tmp_path / "g5-1.tar", inside.host, "--ledger", ledger,
                     "--staleness-config", EXAMPLES / "airgap" / "staleness-strict.json", "--time-anchor", anchor,
                     expect=3)
    assert [e["status"] for e in stale["error"]["details"]["exports"]] == ["quarantined"]
    assert rows(ledger, "SELECT generation FROM generations") == [(5,)]
    assert rows(ledger, "SELECT COUNT(*) FROM imports") == [(0,)]
    refused = cli_json(run_cli, "load", tmp_path / "g5-2.tar", inside.host, "--ledger", ledger, expect=3)
    assert "ERR_AIRGAP_GENERATION_REPLAY" in refused["error"]["message"], refused
    assert rows(ledger, "SELECT generation FROM generations") == [(5,)]
    assert digest_at(inside, repo, "w2") is None
