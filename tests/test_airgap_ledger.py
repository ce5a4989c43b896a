"""The import ledger on real SQLite files: records, delta bases, concurrency, metrics."""

from __future__ import annotations

import copy
import multiprocessing
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from stella_oci.airgap import (
    ERR_EXPORT_BASE_MISSING,
    Ledger,
    StalenessConfig,
    TimeAnchor,
    build_provenance,
    check_delta,
    default_ledger_path,
    evaluate_staleness,
    export_uuid,
    parse_rfc3339,
    render_prometheus,
    system_anchor,
)
from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.canonical import manifest_digest
from stella_oci.export.models import ExportManifest, validate_export_manifest
from stella_oci.schemas import validate_against

model_of = ExportManifest.from_json_obj

SCHEMA = "ledger-airgap-staleness"
DAY = 86400
NOW = datetime(2025, 11, 28, 12, 0, tzinfo=timezone.utc)
OCI_DIGEST = "sha256:" + "e" * 64


def export_doc(
    export_id: str,
    *,
    generated: str = "2025-11-20T08:00:00Z",
    name: str = "vex-advisories",
    variant: str = "full",
    tenant: str = "acme",
    delta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "https://stellaops.io/export-center/manifest/v1alpha2",
        "version": "1.1.0",
        "exportId": export_id,
        "runId": f"run-{export_id}",
        "profile": {"kind": "mirror", "variant": variant, "name": name},
        "tenant": tenant,
        "selectors": {},
        "generatedAt": generated,
        "contents": [{"path": "data/a.ndjson", "digest": "sha256:" + "1" * 64, "bytes": 3, "records": 1}],
    }
    if delta is not None:
        doc["delta"] = delta
    return doc


def record(
    ledger: Ledger,
    doc: dict[str, Any],
    *,
    imported_at: datetime = NOW,
    domain: str | None = None,
    anchor: TimeAnchor | None = None,
) -> Any:
    anchor = anchor or system_anchor(imported_at)
    dom = domain or doc["profile"]["name"]
    outcome = evaluate_staleness(
        generated_at=parse_rfc3339(doc["generatedAt"]),
        config=StalenessConfig(),
        anchor=anchor,
        domain=dom,
        now=imported_at,
        export_id=doc["exportId"],
    )
    prov = build_provenance(
        export=model_of(doc),
        manifest_digest=OCI_DIGEST,
        bundle_digest=None,
        anchor=anchor,
        imported_at=imported_at,
        domain=dom,
        staleness_seconds=outcome.result["stalenessSeconds"],
        source_environment="upstream",
    )
    validate_against(prov, SCHEMA, definition="BundleProvenance", source="provenance")
    return ledger.record_import(
        export=model_of(doc),
        provenance=prov,
        export_manifest_digest=manifest_digest(doc),
        reference=f"127.0.0.1:5000/mirror/{dom}:{doc['exportId']}",
    )


# --------------------------------------------------------------------------- records


def test_record_import_round_trip_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "ledger.sqlite3"
    base = export_doc("exp-base-0001", delta=None)
    validate_export_manifest(base)
    with Ledger(path) as ledger:
        rec = record(ledger, base)
        assert rec.export_id == "exp-base-0001"
        assert rec.bundle_id == export_uuid("exp-base-0001")
        assert rec.run_id == "run-exp-base-0001"
        assert rec.profile == "mirror:full" and rec.profile_name == "vex-advisories"
        assert rec.domain == "vex-advisories" and rec.tenant == "acme"
        assert rec.manifest_digest == OCI_DIGEST
        assert rec.export_manifest_digest == manifest_digest(base)
        assert rec.generated_at == datetime(2025, 11, 20, 8, tzinfo=timezone.utc)
        assert rec.imported_at == NOW
        assert rec.time_anchor == {
            "anchorType": "HARDWARE_CLOCK",
            "timestamp": "2025-11-28T12:00:00Z",
            "source": "system-clock",
            "verified": False,
        }
        assert rec.staleness_seconds == 8 * DAY + 4 * 3600
        assert rec.reference == "127.0.0.1:5000/mirror/vex-advisories:exp-base-0001"
        assert rec.base_export_id is None and rec.base_manifest_digest is None
        assert rec.provenance["bundleId"] == rec.bundle_id
    assert path.is_file()
    # reopened by plain sqlite3: WAL, the row is there, the database is intact
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT export_id, domain FROM imports").fetchall() == [
            ("exp-base-0001", "vex-advisories")
        ]
    finally:
        conn.close()
    with Ledger(path) as again:
        assert len(again) == 1
        assert again.imports()[0].provenance == rec.provenance


def test_has_import_by_id_and_manifest_digest(tmp_path: Path) -> None:
    base = export_doc("exp-base-0001")
    with Ledger(tmp_path / "l.db") as ledger:
        assert not ledger.has_import("exp-base-0001")
        record(ledger, base)
        assert ledger.has_import("exp-base-0001")
        assert ledger.has_import("exp-base-0001", None)
        assert ledger.has_import("exp-base-0001", manifest_digest(base))
        assert not ledger.has_import("exp-base-0001", "sha256:" + "0" * 64)
        assert not ledger.has_import("exp-base-0002", manifest_digest(base))
        # the OCI manifest digest is not the export manifest-digest
        assert not ledger.has_import("exp-base-0001", OCI_DIGEST)


def test_default_path_is_platformdirs_or_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STELLA_OCI_LEDGER", raising=False)
    assert default_ledger_path() == Path(platformdirs.user_data_dir("stella-oci")) / "ledger.sqlite3"
    monkeypatch.setenv("STELLA_OCI_LEDGER", str(tmp_path / "env.sqlite3"))
    assert default_ledger_path() == tmp_path / "env.sqlite3"
    with Ledger() as ledger:
        assert ledger.path == tmp_path / "env.sqlite3"
    assert (tmp_path / "env.sqlite3").is_file()


def test_not_a_database_is_refused_with_path(tmp_path: Path) -> None:
    bogus = tmp_path / "ledger.sqlite3"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InvalidInputError) as info:
        Ledger(bogus)
    assert info.value.exit_code == 2
    assert str(bogus) in str(info.value)
    assert bogus.read_bytes() == b"this is not sqlite" * 100


# --------------------------------------------------------------------------- deltas


def test_delta_base_missing_then_present(tmp_path: Path) -> None:
    base = export_doc("exp-base-0001", generated="2025-11-20T08:00:00Z")
    base_digest = manifest_digest(base)
    delta = export_doc(
        "exp-delta-0002",
        variant="delta",
        generated="2025-11-21T08:00:00Z",
        delta={
            "baseExportId": "exp-base-0001",
            "baseManifestDigest": base_digest,
            "tombstones": ["data/old.ndjson"],
        },
    )
    validate_export_manifest(delta)
    with Ledger(tmp_path / "l.db") as ledger:
        with pytest.raises(VerificationError) as info:
            check_delta(model_of(delta), ledger)
        err = info.value
        assert err.exit_code == 3
        assert ERR_EXPORT_BASE_MISSING in str(err)
        assert "exp-base-0001" in str(err) and base_digest in str(err)
        assert err.details == {
            "code": ERR_EXPORT_BASE_MISSING,
            "exportId": "exp-delta-0002",
            "baseExportId": "exp-base-0001",
            "baseManifestDigest": base_digest,
        }
        record(ledger, base)
        check_delta(model_of(delta), ledger)  # passes now
        rec = record(ledger, delta)
        assert rec.base_export_id == "exp-base-0001" and rec.base_manifest_digest == base_digest
        assert rec.provenance["metadata"]["baseExportId"] == "exp-base-0001"


def test_delta_base_with_other_digest_is_missing(tmp_path: Path) -> None:
    base = export_doc("exp-base-0001")
    changed = copy.deepcopy(base)
    changed["generatedAt"] = "2025-11-20T09:00:00Z"
    delta = export_doc(
        "exp-delta-0002",
        variant="delta",
        delta={
            "baseExportId": "exp-base-0001",
            "baseManifestDigest": manifest_digest(changed),
            "tombstones": [],
        },
    )
    with Ledger(tmp_path / "l.db") as ledger:
        record(ledger, base)
        with pytest.raises(VerificationError) as info:
            check_delta(model_of(delta), ledger)
    assert ERR_EXPORT_BASE_MISSING in str(info.value)
    assert f"only with manifest-digest {manifest_digest(base)}" in str(info.value)


def test_delta_without_block_or_tombstones_fails(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        no_block = export_doc("exp-delta-0002", variant="delta")
        with pytest.raises(VerificationError) as info:
            check_delta(model_of(no_block), ledger)
        assert info.value.exit_code == 3 and "'delta'" in str(info.value)
        no_tomb = export_doc(
            "exp-delta-0003",
            variant="delta",
            delta={"baseExportId": "exp-base-0001", "baseManifestDigest": "sha256:" + "0" * 64},
        )
        # the schema requires delta.tombstones: such an export.json never becomes a model
        with pytest.raises(InvalidInputError) as info2:
            model_of(no_tomb)
        assert "/delta: missing required member 'tombstones'" in str(info2.value)
        # a full export without a delta block needs nothing
        check_delta(model_of(export_doc("exp-full-0004")), ledger)


def test_empty_tombstones_list_is_accepted(tmp_path: Path) -> None:
    base = export_doc("exp-base-0001")
    delta = export_doc(
        "exp-delta-0002",
        variant="delta",
        delta={
            "baseExportId": "exp-base-0001",
            "baseManifestDigest": manifest_digest(base),
            "tombstones": [],
        },
    )
    validate_export_manifest(delta)
    with Ledger(tmp_path / "l.db") as ledger:
        with pytest.raises(VerificationError) as missing:
            check_delta(model_of(delta), ledger)  # the tombstones pass; the base is what is missing
        assert missing.value.details["code"] == ERR_EXPORT_BASE_MISSING
        record(ledger, base)
        assert check_delta(model_of(delta), ledger) is None


# --------------------------------------------------------------------------- concurrency

N_PER_PROCESS = 40


def _import_many(path: str, worker: int, start: Any, count: int) -> None:
    start.wait(30)
    with Ledger(path) as ledger:
        for i in range(count):
            doc = export_doc(f"exp-w{worker}-{i:04d}", name=f"domain-{worker}")
            record(ledger, doc, imported_at=NOW + timedelta(seconds=i))


def test_two_processes_import_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_import_many, args=(str(path), w, start, N_PER_PROCESS)) for w in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with Ledger(path) as ledger:
        assert len(ledger) == 2 * N_PER_PROCESS
        ids = {r.export_id for r in ledger.imports()}
        assert ids == {f"exp-w{w}-{i:04d}" for w in (1, 2) for i in range(N_PER_PROCESS)}
        for w in (1, 2):
            summary = ledger.domain_summary(f"domain-{w}")
            assert summary is not None and summary.bundle_count == N_PER_PROCESS
            assert summary.last_import_at == NOW + timedelta(seconds=N_PER_PROCESS - 1)
        metrics = ledger.metrics(StalenessConfig(), NOW + timedelta(days=1))
        validate_against(metrics, SCHEMA, definition="StalenessMetrics", source="metrics")
        assert metrics["aggregates"]["totalDomains"] == 2
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(DISTINCT id) FROM imports").fetchone()[0] == 2 * N_PER_PROCESS
    finally:
        conn.close()


# --------------------------------------------------------------------------- metrics and status


def _three_domains(ledger: Ledger) -> None:
    # vex: newest data 2025-11-27T12:00Z (1 d old), two bundles; an older bundle imported later
    record(
        ledger,
        export_doc("exp-vex-0001", generated="2025-11-27T12:00:00Z"),
        imported_at=NOW - timedelta(hours=6),
    )
    record(
        ledger,
        export_doc("exp-vex-0000", generated="2025-11-20T12:00:00Z"),
        imported_at=NOW - timedelta(hours=1),
    )
    record(
        ledger,
        export_doc("exp-vex-0000", generated="2025-11-20T12:00:00Z"),
        imported_at=NOW - timedelta(hours=1),
    )
    # feeds: 6 d old (85.71 %: warning at 75 %)
    record(
        ledger,
        export_doc("exp-feed-0001", generated="2025-11-22T12:00:00Z", name="vulnerability-feeds"),
        imported_at=NOW - timedelta(days=5),
    )
    # trivy: 10 d old (stale), other tenant
    record(
        ledger,
        export_doc("exp-trivy-0001", generated="2025-11-18T12:00:00Z", name="trivy-db", tenant="other"),
        imported_at=NOW - timedelta(days=9),
    )


def test_metrics_document_valid_and_exact(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        _three_domains(ledger)
        metrics = ledger.metrics(StalenessConfig(), NOW)
    validate_against(metrics, SCHEMA, definition="StalenessMetrics", source="metrics")
    validate_against(metrics, SCHEMA, source="metrics")
    assert metrics["metricsType"] == "STALENESS_METRICS"
    assert metrics["collectedAt"] == "2025-11-28T12:00:00Z"
    assert "tenantId" not in metrics
    by = {d["domainId"]: d for d in metrics["domainMetrics"]}
    assert [d["domainId"] for d in metrics["domainMetrics"]] == [
        "trivy-db",
        "vex-advisories",
        "vulnerability-feeds",
    ]
    assert by["vex-advisories"] == {
        "domainId": "vex-advisories",
        "stalenessSeconds": DAY,
        "lastImportAt": "2025-11-28T11:00:00Z",
        "lastSourceTimestamp": "2025-11-27T12:00:00Z",
        "bundleCount": 2,
        "isStale": False,
        "percentOfThreshold": 14.29,
        "projectedStaleAt": "2025-12-04T12:00:00Z",
    }
    assert by["vulnerability-feeds"]["percentOfThreshold"] == 85.71
    assert by["trivy-db"]["isStale"] is True and by["trivy-db"]["stalenessSeconds"] == 10 * DAY
    assert metrics["aggregates"] == {
        "totalDomains": 3,
        "staleDomains": 1,
        "warningDomains": 1,
        "healthyDomains": 1,
        "maxStalenessSeconds": 10 * DAY,
        "avgStalenessSeconds": round((1 + 6 + 10) * DAY / 3, 3),
        "oldestBundle": "2025-11-18T12:00:00Z",
    }


def test_metrics_tenant_scope_and_anchor(tmp_path: Path) -> None:
    anchor = TimeAnchor(anchorType="ROUGHTIME", timestamp=NOW + timedelta(days=1), verified=True)
    with Ledger(tmp_path / "l.db") as ledger:
        _three_domains(ledger)
        scoped = ledger.metrics(StalenessConfig(), NOW, tenant="other", anchor=anchor)
        empty = ledger.metrics(StalenessConfig(), NOW, tenant="nobody")
    validate_against(scoped, SCHEMA, definition="StalenessMetrics", source="metrics")
    validate_against(empty, SCHEMA, definition="StalenessMetrics", source="metrics")
    assert scoped["tenantId"] == "other"
    assert [d["domainId"] for d in scoped["domainMetrics"]] == ["trivy-db"]
    assert scoped["domainMetrics"][0]["stalenessSeconds"] == 11 * DAY
    assert empty["domainMetrics"] == [] and empty["aggregates"]["totalDomains"] == 0


def test_prometheus_text(tmp_path: Path) -> None:
    cfg = StalenessConfig()
    with Ledger(tmp_path / "l.db") as ledger:
        _three_domains(ledger)
        text = render_prometheus(ledger.metrics(cfg, NOW), config=cfg)
    lines = text.splitlines()
    assert text.endswith("\n")
    assert "# TYPE stella_oci_airgap_staleness_seconds gauge" in lines
    assert 'stella_oci_airgap_staleness_seconds{domain="vex-advisories"} 86400' in lines
    assert 'stella_oci_airgap_staleness_seconds{domain="trivy-db"} 864000' in lines
    assert 'stella_oci_airgap_stale{domain="trivy-db"} 1' in lines
    assert 'stella_oci_airgap_stale{domain="vex-advisories"} 0' in lines
    assert 'stella_oci_airgap_percent_of_threshold{domain="vulnerability-feeds"} 85.71' in lines
    assert 'stella_oci_airgap_bundles{domain="vex-advisories"} 2' in lines
    ts = int(datetime(2025, 11, 28, 11, tzinfo=timezone.utc).timestamp())
    assert f'stella_oci_airgap_last_import_timestamp_seconds{{domain="vex-advisories"}} {ts}' in lines
    assert 'stella_oci_airgap_domains{state="stale"} 1' in lines
    assert "stella_oci_airgap_threshold_seconds 604800" in lines
    assert "stella_oci_airgap_max_staleness_seconds 864000" in lines
    # every sample line parses as NAME{LABELS} VALUE with a float value
    for line in lines:
        if line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        float(value)
        assert name.startswith("stella_oci_airgap_")


def test_prometheus_escapes_labels() -> None:
    metrics = {
        "metricsType": "STALENESS_METRICS",
        "collectedAt": "2025-11-28T12:00:00Z",
        "tenantId": 'a"b',
        "domainMetrics": [
            {"domainId": 'we"ird\\dom\nain', "stalenessSeconds": 5, "lastImportAt": "2025-11-28T12:00:00Z"}
        ],
    }
    text = render_prometheus(metrics)
    assert 'stella_oci_airgap_staleness_seconds{tenant="a\\"b",domain="we\\"ird\\\\dom\\nain"} 5' in text


def test_check_domain_no_bundle_and_no_recent_import(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        _three_domains(ledger)
        none = ledger.check_domain("sbom-feeds", StalenessConfig(), NOW)
        assert not none.passed and none.error_code == "ERR_AIRGAP_NO_BUNDLE"
        assert none.result["context"] == "QUERY" and "stalenessSeconds" not in none.result
        warn_none = ledger.check_domain("sbom-feeds", StalenessConfig(enforcementMode="WARN"), NOW)
        assert warn_none.passed and warn_none.warning_codes == ["WARN_AIRGAP_NO_RECENT_IMPORT"]
        old = ledger.check_domain("trivy-db", StalenessConfig(gracePeriodSeconds=5 * DAY), NOW)
        assert old.passed
        assert old.warning_codes == ["WARN_AIRGAP_BUNDLE_OLD", "WARN_AIRGAP_NO_RECENT_IMPORT"]
        stale = ledger.check_domain("trivy-db", StalenessConfig(), NOW)
        assert not stale.passed and stale.error_code == "ERR_AIRGAP_STALE"
        fresh = ledger.check_domain("vex-advisories", StalenessConfig(), NOW)
        assert fresh.passed and fresh.result["warnings"] == []
        exempt = ledger.check_domain("sbom-feeds", StalenessConfig(allowedDomains=["sbom-feeds"]), NOW)
        assert exempt.passed
        for outcome in (none, warn_none, old, stale, fresh, exempt):
            validate_against(outcome.result, SCHEMA, definition="StalenessValidationResult", source="r")
