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
from collections.abc import Callable, Iterable, Sequence
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


_DOMAIN_GAUGES: tuple[tuple[str, str, str, Callable[[Any], float | int | bool] | None], ...] = (
    ("staleness_seconds", "Seconds between the time anchor and the newest imported generatedAt.", "stalenessSeconds", None),
    ("percent_of_threshold", "Staleness as a percentage of the freshness threshold.", "percentOfThreshold", None),
    ("stale", "1 when the domain's data exceeds the freshness threshold.", "isStale", bool),
    ("bundles", "Distinct exports imported for the domain.", "bundleCount", None),
    ("last_import_timestamp_seconds", "Unix time of the domain's last import.", "lastImportAt", lambda v: _epoch(v)),
    (
        "last_source_timestamp_seconds",
        "Unix time of the newest imported generatedAt.",
        "lastSourceTimestamp",
        lambda v: _epoch(v),
    ),
    (
        "projected_stale_timestamp_seconds",
        "Unix time when the domain's data becomes stale.",
        "projectedStaleAt",
        lambda v: _epoch(v),
    ),
)
"""Per-domain gauges: name, help, the DomainMetrics member, how to turn it into a number."""


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
    families: list[_Family] = []
    domains = metrics.get("domainMetrics", [])
    for name, help_text, key, convert in _DOMAIN_GAUGES:
        samples: list[_Sample] = [
            ([*base, ("domain", str(d["domainId"]))], convert(d[key]) if convert else d[key])
            for d in domains
            if key in d
        ]
        families.append((f"stella_oci_airgap_{name}", help_text, samples))
    families.extend(_aggregate_families(metrics.get("aggregates", {}), base, config))
    lines: list[str] = []
    for name, help_text, samples in families:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            lines.append(f"{name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


_Sample = tuple[list[tuple[str, str]], float | int | bool]
_Family = tuple[str, str, list[_Sample]]


def _aggregate_families(
    agg: dict[str, Any], base: list[tuple[str, str]], config: StalenessConfig | None
) -> list[_Family]:
    """The gauges over all domains, and the configuration when it is known."""
    by_state: list[_Sample] = [
        ([*base, ("state", state)], agg[f"{state}Domains"])
        for state in ("stale", "warning", "healthy")
        if f"{state}Domains" in agg
    ]
    families: list[_Family] = [
        ("stella_oci_airgap_domains", "Tracked domains by state (stale, warning, healthy).", by_state)
    ]
    optional = [
        ("max_staleness_seconds", "Largest staleness across domains.", agg.get("maxStalenessSeconds")),
        ("avg_staleness_seconds", "Mean staleness across domains.", agg.get("avgStalenessSeconds")),
    ]
    if config is not None:
        optional += [
            ("threshold_seconds", "Configured freshness threshold.", config.freshnessThresholdSeconds),
            ("grace_period_seconds", "Configured grace period.", config.gracePeriodSeconds),
        ]
    families += [(f"stella_oci_airgap_{n}", h, [(base, v)]) for n, h, v in optional if v is not None]
    return families
