"""StalenessMetrics (``$defs/StalenessMetrics``) and its Prometheus text exposition.

Per domain: ``stalenessSeconds = (anchor or now) - lastSourceTimestamp``, where
``lastSourceTimestamp`` is the newest ``generatedAt`` imported for the domain (an old
bundle imported late does not make fresher data look stale); ``isStale`` when staleness
exceeds the threshold (the grace period is not counted); ``percentOfThreshold``;
``projectedStaleAt = lastSourceTimestamp + threshold``.

Aggregates: a domain is *stale* when ``isStale``, *warning* when not stale and at or above
the lowest ``notificationThresholds`` percentage (75 % when none are configured), else
*healthy*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from stella_oci.airgap.models import (
    DomainSummary,
    StalenessConfig,
    TimeAnchor,
    format_rfc3339,
    parse_rfc3339,
    to_utc,
)
from stella_oci.airgap.staleness import percent_of

DEFAULT_WARNING_PERCENT = 75


def warning_percent(config: StalenessConfig) -> int:
    """The percentage of the threshold from which a domain counts as *warning*."""
    if config.notificationThresholds:
        return min(n.percentOfThreshold for n in config.notificationThresholds)
    return DEFAULT_WARNING_PERCENT


def build_metrics(
    summaries: Sequence[DomainSummary],
    config: StalenessConfig,
    now: datetime,
    *,
    tenant: str | None = None,
    anchor: TimeAnchor | None = None,
) -> dict[str, Any]:
    """A StalenessMetrics document from the ledger's per-domain summaries."""
    reference_time = anchor.timestamp if anchor is not None else to_utc(now)
    threshold = config.freshnessThresholdSeconds
    warn_at = warning_percent(config)
    domains: list[dict[str, Any]] = []
    stale = warning = 0
    for s in sorted(summaries, key=lambda x: x.domain):
        staleness = max(0, math.floor((reference_time - to_utc(s.last_source_at)).total_seconds()))
        percent = percent_of(staleness, threshold)
        is_stale = staleness > threshold
        entry: dict[str, Any] = {
            "domainId": s.domain,
            "stalenessSeconds": staleness,
            "lastImportAt": format_rfc3339(s.last_import_at),
            "lastSourceTimestamp": format_rfc3339(s.last_source_at),
            "bundleCount": s.bundle_count,
            "isStale": is_stale,
        }
        if percent is not None:
            entry["percentOfThreshold"] = percent
        entry["projectedStaleAt"] = format_rfc3339(to_utc(s.last_source_at) + timedelta(seconds=threshold))
        domains.append(entry)
        if is_stale:
            stale += 1
        elif staleness * 100 >= warn_at * threshold:
            warning += 1
    values = [d["stalenessSeconds"] for d in domains]
    aggregates: dict[str, Any] = {
        "totalDomains": len(domains),
        "staleDomains": stale,
        "warningDomains": warning,
        "healthyDomains": len(domains) - stale - warning,
        "maxStalenessSeconds": max(values, default=0),
        "avgStalenessSeconds": round(sum(values) / len(values), 3) if values else 0,
    }
    if domains:
        aggregates["oldestBundle"] = format_rfc3339(min(to_utc(s.last_source_at) for s in summaries))
    metrics: dict[str, Any] = {"metricsType": "STALENESS_METRICS", "collectedAt": format_rfc3339(now)}
    if tenant is not None:
        metrics["tenantId"] = tenant
    metrics["domainMetrics"] = domains
    metrics["aggregates"] = aggregates
    return metrics


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _epoch(text: str) -> float:
    stamp = parse_rfc3339(text)
    return stamp.timestamp()


def render_prometheus(metrics: dict[str, Any], *, config: StalenessConfig | None = None) -> str:
    """Prometheus text exposition (format 0.0.4) of a StalenessMetrics document.

    Gauges (per domain, label ``domain``, plus ``tenant`` when the metrics are scoped):
    ``stella_oci_airgap_staleness_seconds``, ``..._percent_of_threshold``, ``..._stale``
    (0/1), ``..._bundles``, ``..._last_import_timestamp_seconds``,
    ``..._last_source_timestamp_seconds``, ``..._projected_stale_timestamp_seconds``; and
    ``stella_oci_airgap_domains{state=...}``, ``..._max_staleness_seconds``,
    ``..._avg_staleness_seconds``, with ``..._threshold_seconds`` /
    ``..._grace_period_seconds`` when ``config`` is given. Timestamps are Unix seconds.
    """
    base: list[tuple[str, str]] = []
    if metrics.get("tenantId") is not None:
        base.append(("tenant", str(metrics["tenantId"])))
    families: list[tuple[str, str, list[tuple[list[tuple[str, str]], float | int | bool]]]] = []

    def family(name: str, help_text: str) -> list[tuple[list[tuple[str, str]], float | int | bool]]:
        samples: list[tuple[list[tuple[str, str]], float | int | bool]] = []
        families.append((f"stella_oci_airgap_{name}", help_text, samples))
        return samples

    staleness = family(
        "staleness_seconds", "Seconds between the time anchor and the newest imported generatedAt."
    )
    percent = family("percent_of_threshold", "Staleness as a percentage of the freshness threshold.")
    is_stale = family("stale", "1 when the domain's data exceeds the freshness threshold.")
    bundles = family("bundles", "Distinct exports imported for the domain.")
    last_import = family("last_import_timestamp_seconds", "Unix time of the domain's last import.")
    last_source = family("last_source_timestamp_seconds", "Unix time of the newest imported generatedAt.")
    projected = family("projected_stale_timestamp_seconds", "Unix time when the domain's data becomes stale.")
    for d in metrics.get("domainMetrics", []):
        labels = [*base, ("domain", str(d["domainId"]))]
        staleness.append((labels, d["stalenessSeconds"]))
        if "percentOfThreshold" in d:
            percent.append((labels, d["percentOfThreshold"]))
        if "isStale" in d:
            is_stale.append((labels, bool(d["isStale"])))
        if "bundleCount" in d:
            bundles.append((labels, d["bundleCount"]))
        last_import.append((labels, _epoch(d["lastImportAt"])))
        if "lastSourceTimestamp" in d:
            last_source.append((labels, _epoch(d["lastSourceTimestamp"])))
        if "projectedStaleAt" in d:
            projected.append((labels, _epoch(d["projectedStaleAt"])))

    agg = metrics.get("aggregates", {})
    domains = family("domains", "Tracked domains by state (stale, warning, healthy).")
    for state in ("stale", "warning", "healthy"):
        key = f"{state}Domains"
        if key in agg:
            domains.append(([*base, ("state", state)], agg[key]))
    if "maxStalenessSeconds" in agg:
        family("max_staleness_seconds", "Largest staleness across domains.").append(
            (base, agg["maxStalenessSeconds"])
        )
    if "avgStalenessSeconds" in agg:
        family("avg_staleness_seconds", "Mean staleness across domains.").append(
            (base, agg["avgStalenessSeconds"])
        )
    if config is not None:
        family("threshold_seconds", "Configured freshness threshold.").append(
            (base, config.freshnessThresholdSeconds)
        )
        family("grace_period_seconds", "Configured grace period.").append((base, config.gracePeriodSeconds))

    lines: list[str] = []
    for name, help_text, samples in families:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            lines.append(f"{name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"
