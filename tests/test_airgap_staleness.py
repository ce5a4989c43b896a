"""Air-gap staleness: rules of issue 4, every result validated against the real schema."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from stella_oci.airgap import (
    EXPORT_CENTER_NAMESPACE,
    NotificationThreshold,
    StalenessConfig,
    TimeAnchor,
    build_provenance,
    evaluate_staleness,
    export_domain,
    export_uuid,
    load_staleness_config,
    load_time_anchor,
    system_anchor,
)
from stella_oci.airgap import (
    StalenessOutcome as Outcome,
)
from stella_oci.errors import InvalidInputError, StalenessError, StellaOciError
from stella_oci.export.models import ExportManifest, validate_export_manifest
from stella_oci.schemas import validate_against

model_of = ExportManifest.from_json_obj

REPO = Path(__file__).resolve().parent.parent
SCHEMA = "ledger-airgap-staleness"
DAY = 86400
WEEK = 7 * DAY
ANCHOR_AT = datetime(2025, 11, 28, 14, 30, tzinfo=timezone.utc)
NOW = datetime(2025, 11, 28, 14, 31, 5, tzinfo=timezone.utc)


def anchor(at: datetime = ANCHOR_AT, **kw: Any) -> TimeAnchor:
    return TimeAnchor(anchorType="NTP", timestamp=at, source="pool.ntp.org", verified=True, **kw)


def config(mode: str = "STRICT", **kw: Any) -> StalenessConfig:
    return StalenessConfig.model_validate({"enforcementMode": mode, **kw})


def valid_result(result: dict[str, Any]) -> dict[str, Any]:
    validate_against(result, SCHEMA, definition="StalenessValidationResult", source="result")
    validate_against(result, SCHEMA, source="result")  # the top-level oneOf as well
    return result


def check(age: timedelta, cfg: StalenessConfig, domain: str = "vex-advisories", **kw: Any) -> Outcome:
    outcome = evaluate_staleness(
        generated_at=ANCHOR_AT - age,
        config=cfg,
        anchor=kw.pop("anch", anchor()),
        domain=domain,
        now=NOW,
        **kw,
    )
    valid_result(outcome.result)
    return outcome


# --------------------------------------------------------------------------- acceptance


def test_strict_fails_eight_days_old_with_seven_day_threshold() -> None:
    outcome = check(
        timedelta(days=8), config("STRICT", freshnessThresholdSeconds=WEEK, gracePeriodSeconds=DAY // 2)
    )
    assert not outcome.passed
    assert outcome.error_code == "ERR_AIRGAP_STALE"
    r = outcome.result
    assert r["stalenessSeconds"] == 8 * DAY == 691200
    assert r["thresholdSeconds"] == WEEK
    assert r["enforcementMode"] == "STRICT"
    assert r["context"] == "EXPORT"
    assert r["domainId"] == "vex-advisories"
    assert r["validatedAt"] == "2025-11-28T14:31:05Z"
    assert r["error"]["stalenessSeconds"] == 691200
    assert r["error"]["thresholdSeconds"] == WEEK
    assert "allowedDomains" in r["error"]["recommendation"]
    with pytest.raises(StalenessError) as info:
        outcome.raise_if_failed()
    assert info.value.exit_code == 7
    assert info.value.details["staleness"] == r
    assert "ERR_AIRGAP_STALE" in str(info.value)
    assert json.loads(json.dumps(info.value.to_json()))["error"]["code"] == 7


def test_strict_default_grace_one_day_eight_days_exactly_is_still_grace() -> None:
    # default threshold 7 d + grace 1 d: exactly 8 d is within grace, 8 d + 1 s is beyond
    inside = check(timedelta(days=8), config("STRICT"))
    assert inside.passed and inside.warning_codes == ["WARN_AIRGAP_BUNDLE_OLD"]
    beyond = check(timedelta(days=8, seconds=1), config("STRICT"))
    assert not beyond.passed and beyond.error_code == "ERR_AIRGAP_STALE"


def test_warn_passes_with_warning() -> None:
    outcome = check(timedelta(days=8), config("WARN", gracePeriodSeconds=0))
    assert outcome.passed
    assert outcome.error_code is None
    assert "error" not in outcome.result
    assert outcome.warning_codes == ["WARN_AIRGAP_BUNDLE_OLD"]
    w = outcome.warnings[0]
    assert w["percentOfThreshold"] == pytest.approx(114.29)
    assert w["projectedStaleAt"] == "2025-11-27T14:30:00Z"
    outcome.raise_if_failed()  # does not raise


def test_strict_within_grace_passes_with_bundle_old_warning() -> None:
    outcome = check(timedelta(days=7, hours=12), config("STRICT", gracePeriodSeconds=DAY))
    assert outcome.passed
    assert outcome.warning_codes == ["WARN_AIRGAP_BUNDLE_OLD"]
    assert "grace" in outcome.warnings[0]["message"]
    assert "2025-11-29T02:30:00Z" in outcome.warnings[0]["message"]  # hard limit = generatedAt + 8 d
    outcome.raise_if_failed()


def test_disabled_skips_everything() -> None:
    outcome = check(timedelta(days=400), config("DISABLED"))
    assert outcome.passed
    assert outcome.result["enforcementMode"] == "DISABLED"
    assert outcome.result["warnings"] == []
    assert outcome.result["stalenessSeconds"] == 400 * DAY
    drift = check(-timedelta(days=3), config("DISABLED"))
    assert drift.passed and drift.result["warnings"] == []


def test_allowed_domains_are_exempt() -> None:
    cfg = config("STRICT", allowedDomains=["local-overrides"])
    exempt = check(timedelta(days=30), cfg, domain="local-overrides")
    assert exempt.passed and exempt.result["warnings"] == []
    assert "exempt" in exempt.message
    other = check(timedelta(days=30), cfg, domain="vex-advisories")
    assert not other.passed and other.error_code == "ERR_AIRGAP_STALE"


def test_fresh_export_passes_clean() -> None:
    outcome = check(timedelta(hours=5), config("STRICT"))
    assert outcome.passed
    assert outcome.result["warnings"] == []
    assert outcome.result["stalenessSeconds"] == 5 * 3600


# --------------------------------------------------------------------------- notifications


def test_notification_thresholds_raise_approaching_stale() -> None:
    cfg = config(
        "STRICT",
        notificationThresholds=[
            {"percentOfThreshold": 75, "severity": "warning", "channels": ["metric"]},
            {"percentOfThreshold": 90, "severity": "critical"},
        ],
    )
    below = check(timedelta(days=5), cfg)  # 71.43 %
    assert below.result["warnings"] == []
    at75 = check(timedelta(seconds=WEEK * 75 // 100), cfg)  # exactly 75 %
    assert at75.warning_codes == ["WARN_AIRGAP_APPROACHING_STALE"]
    assert at75.warnings[0]["percentOfThreshold"] == 75.0
    assert "warning notification threshold 75%" in at75.warnings[0]["message"]
    high = check(timedelta(days=6, hours=12), cfg)  # 92.86 %: the highest reached wins
    assert high.warning_codes == ["WARN_AIRGAP_APPROACHING_STALE"]
    assert high.warnings[0]["percentOfThreshold"] == pytest.approx(92.86)
    assert "critical" in high.warnings[0]["message"]
    assert high.warnings[0]["projectedStaleAt"] == "2025-11-29T02:30:00Z"
    assert high.passed


# --------------------------------------------------------------------------- time


def test_drift_strict_fails_warn_warns_small_skew_tolerated() -> None:
    future = -timedelta(minutes=10)
    strict = check(future, config("STRICT"))
    assert not strict.passed and strict.error_code == "ERR_AIRGAP_TIME_DRIFT"
    assert strict.result["stalenessSeconds"] == 0
    with pytest.raises(StalenessError) as info:
        strict.raise_if_failed()
    assert info.value.exit_code == 7
    warn = check(future, config("WARN"))
    assert warn.passed
    assert warn.warning_codes == ["WARN_AIRGAP_TIME_UNCERTAINTY_HIGH"]
    assert "ERR_AIRGAP_TIME_DRIFT" in warn.warnings[0]["message"]
    skew = check(-timedelta(seconds=299), config("STRICT"))
    assert skew.passed and skew.result["warnings"] == [] and skew.result["stalenessSeconds"] == 0
    custom = check(-timedelta(seconds=299), config("STRICT"), max_clock_skew_seconds=60)
    assert custom.error_code == "ERR_AIRGAP_TIME_DRIFT"


def test_anchor_uncertainty_warning() -> None:
    ok = check(timedelta(days=1), config("STRICT"), anch=anchor(uncertainty=60_000))
    assert ok.result["warnings"] == []
    high = check(timedelta(days=1), config("STRICT"), anch=anchor(uncertainty=60_001))
    assert high.passed
    assert high.warning_codes == ["WARN_AIRGAP_TIME_UNCERTAINTY_HIGH"]
    assert "60001 ms" in high.warnings[0]["message"]
    both = check(timedelta(days=9), config("WARN"), anch=anchor(uncertainty=120_000))
    assert both.warning_codes == ["WARN_AIRGAP_TIME_UNCERTAINTY_HIGH", "WARN_AIRGAP_BUNDLE_OLD"]


def test_system_anchor_is_unverified_hardware_clock() -> None:
    a = system_anchor(NOW)
    assert a.to_json() == {
        "anchorType": "HARDWARE_CLOCK",
        "timestamp": "2025-11-28T14:31:05Z",
        "source": "system-clock",
        "verified": False,
    }
    validate_against(a.to_json(), SCHEMA, definition="TimeAnchor", source="anchor")
    with pytest.raises(ValueError):
        system_anchor(datetime(2025, 1, 1))  # naive: no instant


def test_staleness_is_measured_against_anchor_not_now() -> None:
    cfg = config("STRICT")
    outcome = evaluate_staleness(
        generated_at=ANCHOR_AT - timedelta(days=2),
        config=cfg,
        anchor=anchor(),
        domain="d",
        now=ANCHOR_AT + timedelta(days=100),
    )
    assert outcome.passed and outcome.result["stalenessSeconds"] == 2 * DAY


def test_non_utc_offsets_are_normalised() -> None:
    plus2 = timezone(timedelta(hours=2))
    outcome = evaluate_staleness(
        generated_at=datetime(2025, 11, 28, 16, 30, tzinfo=plus2) - timedelta(hours=1),
        config=config(),
        anchor=anchor(),
        domain="d",
        now=NOW.astimezone(plus2),
    )
    assert outcome.result["stalenessSeconds"] == 3600
    assert outcome.result["validatedAt"].endswith("Z")


# --------------------------------------------------------------------------- files


def test_load_config_and_anchor_examples() -> None:
    strict = load_staleness_config(REPO / "examples/airgap/staleness-strict.json")
    assert strict.enforcementMode == "STRICT"
    assert strict.freshnessThresholdSeconds == WEEK
    assert strict.notificationThresholds[0] == NotificationThreshold(
        percentOfThreshold=75, severity="warning", channels=["metric"]
    )
    warn = load_staleness_config(REPO / "examples/airgap/staleness-warn.json")
    assert warn.enforcementMode == "WARN"
    a = load_time_anchor(REPO / "examples/airgap/time-anchor.json")
    assert a.anchorType == "NTP" and a.timestamp.tzinfo is not None and a.verified is True


def test_load_config_rejects_schema_violations(tmp_path: Path) -> None:
    bad = tmp_path / "cfg.json"
    bad.write_text(
        json.dumps(
            {"configType": "STALENESS_CONFIG", "freshnessThresholdSeconds": -1, "enforcementMode": "LOUD"}
        )
    )
    with pytest.raises(InvalidInputError) as info:
        load_staleness_config(bad)
    text = str(info.value)
    assert str(bad) in text and "/freshnessThresholdSeconds" in text and "/enforcementMode" in text
    assert info.value.exit_code == 2

    typo = tmp_path / "typo.json"
    typo.write_text(
        json.dumps(
            {"configType": "STALENESS_CONFIG", "freshnessThresholdSeconds": 10, "enforcmentMode": "WARN"}
        )
    )
    with pytest.raises(InvalidInputError) as info2:
        load_staleness_config(typo)
    assert "/enforcmentMode" in str(info2.value) and "unknown member" in str(info2.value)

    missing = tmp_path / "none.json"
    with pytest.raises(InvalidInputError, match="no such file"):
        load_staleness_config(missing)


def test_load_anchor_rejects_bad_timestamp(tmp_path: Path) -> None:
    bad = tmp_path / "anchor.json"
    bad.write_text(json.dumps({"anchorType": "NTP", "timestamp": "2025-11-28 14:30"}))
    with pytest.raises(StellaOciError) as info:
        load_time_anchor(bad)
    assert info.value.exit_code == 2 and "/timestamp" in str(info.value)


# --------------------------------------------------------------------------- provenance


def export_doc(export_id: str = "exp-20251120-vex") -> dict[str, Any]:
    doc = {
        "schema": "https://stellaops.io/export-center/manifest/v1alpha2",
        "version": "1.1.0",
        "exportId": export_id,
        "runId": "run-20251120-0001",
        "profile": {"kind": "mirror", "variant": "full", "name": "vex-advisories"},
        "tenant": "acme",
        "selectors": {"tenants": ["acme"]},
        "generatedAt": "2025-11-20T08:00:00Z",
        "contents": [
            {
                "path": "advisories/a.openvex.json",
                "digest": "sha256:" + "1" * 64,
                "bytes": 10,
                "records": 7,
                "contentType": "application/vnd.openvex+json",
            },
            {
                "path": "advisories/b.openvex.json",
                "digest": "sha256:" + "2" * 64,
                "bytes": 12,
                "records": 3,
                "contentType": "application/vnd.openvex+json",
            },
        ],
    }
    validate_export_manifest(doc)
    return doc


def test_uuid5_is_deterministic_and_uuids_are_kept() -> None:
    ns = uuid.uuid5(uuid.NAMESPACE_URL, "https://stellaops.io/export-center")
    assert ns == EXPORT_CENTER_NAMESPACE
    assert export_uuid("exp-20251120-vex") == str(uuid.uuid5(ns, "exp-20251120-vex"))
    assert export_uuid("exp-20251120-vex") == export_uuid("exp-20251120-vex")
    assert export_uuid("exp-20251120-vex") != export_uuid("exp-20251120-vez")
    assert uuid.UUID(export_uuid("exp-20251120-vex")).version == 5
    real = "660e8400-e29b-41d4-a716-446655440001"
    assert export_uuid(real) == real
    # a fixed value: the UUID must not change between releases or machines
    assert export_uuid("exp-20251120-vex") == str(
        uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "https://stellaops.io/export-center"), "exp-20251120-vex")
    )


def test_build_provenance_validates_and_is_deterministic() -> None:
    doc = export_doc()
    kwargs: dict[str, Any] = dict(
        export=model_of(doc),
        manifest_digest="sha256:" + "a" * 64,
        bundle_digest="sha256:" + "b" * 64,
        anchor=anchor(uncertainty=50),
        imported_at=NOW,
        domain="vex-advisories",
        staleness_seconds=691200,
        source_environment="prod-us-east",
        export_manifest_digest="sha256:" + "c" * 64,
        reference="registry.local/mirror/vex@sha256:" + "a" * 64,
    )
    prov = build_provenance(**kwargs)
    validate_against(prov, SCHEMA, definition="BundleProvenance", source="provenance")
    validate_against(prov, SCHEMA, source="provenance")
    assert prov == build_provenance(**kwargs)
    assert prov["bundleId"] == export_uuid("exp-20251120-vex")
    assert prov["importedAt"] == "2025-11-28T14:31:05Z"
    assert prov["sourceTimestamp"] == "2025-11-20T08:00:00Z"
    assert prov["timeAnchor"] == {
        "anchorType": "NTP",
        "timestamp": "2025-11-28T14:30:00Z",
        "source": "pool.ntp.org",
        "uncertainty": 50,
        "verified": True,
    }
    assert prov["exports"] == [
        {
            "exportId": export_uuid("exp-20251120-vex"),
            "key": "vex-advisories",
            "format": "openvex",
            "createdAt": "2025-11-20T08:00:00Z",
            "artifactDigest": "sha256:" + "a" * 64,
            "recordCount": 10,
        }
    ]
    assert prov["metadata"]["exportId"] == "exp-20251120-vex"
    assert prov["metadata"]["profile"] == "mirror:full"
    assert prov["metadata"]["io.stellaops.export.manifest-digest"] == "sha256:" + "c" * 64
    assert list(prov["metadata"]) == sorted(prov["metadata"])


def test_build_provenance_minimal_without_oci_manifest() -> None:
    doc = export_doc()
    doc["contents"][1]["contentType"] = "application/x-ndjson"
    doc["contents"][1]["path"] = "b.ndjson"
    prov = build_provenance(
        export=model_of(doc),
        manifest_digest=None,
        bundle_digest=None,
        anchor=system_anchor(NOW),
        imported_at=NOW,
        domain="x",
        staleness_seconds=-5,
        source_environment=None,
    )
    validate_against(prov, SCHEMA, definition="BundleProvenance", source="provenance")
    assert "exports" not in prov and "manifestDigest" not in prov and "bundleDigest" not in prov
    assert prov["stalenessSeconds"] == 0
    assert prov["timeAnchor"]["verified"] is False


def test_export_domain_explicit_else_profile_name() -> None:
    doc = export_doc()
    assert export_domain(model_of(doc)) == "vex-advisories"
    assert export_domain(model_of(doc), "vulnerability-feeds") == "vulnerability-feeds"
    del doc["profile"]["name"]  # the schema requires it: no model, so no export without a domain
    with pytest.raises(InvalidInputError) as info:
        model_of(doc)
    assert "/profile: missing required member 'name'" in str(info.value)


def test_text_report_names_codes_and_fix() -> None:
    failed = check(timedelta(days=9), config("STRICT"), anch=anchor(uncertainty=90_000))
    text = failed.text_report()
    assert text.startswith("staleness FAILED (STRICT, domain vex-advisories): ERR_AIRGAP_STALE: ")
    assert "  warning WARN_AIRGAP_TIME_UNCERTAINTY_HIGH: " in text
    assert "  fix: import a fresher export" in text
    ok = check(timedelta(days=1), config("STRICT"))
    assert ok.text_report().startswith("staleness passed (STRICT, domain vex-advisories)")
