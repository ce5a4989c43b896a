"""Staleness evaluation: is an export fresh enough to import into an air-gapped site?

``stalenessSeconds = anchor time - export generatedAt`` (whole seconds, never negative).
The rules, with ``T = freshnessThresholdSeconds`` and ``G = gracePeriodSeconds``:

* ``DISABLED``: nothing is checked; the result passes and only reports the numbers.
* a domain listed in ``allowedDomains``: exempt, the same as ``DISABLED`` for that domain.
* export generated after the anchor by more than the allowed clock skew (300 s):
  ``ERR_AIRGAP_TIME_DRIFT`` -- fails in STRICT; in WARN it passes with
  ``WARN_AIRGAP_TIME_UNCERTAINTY_HIGH`` whose message names ``ERR_AIRGAP_TIME_DRIFT``.
* anchor ``uncertainty`` above 60 000 ms: ``WARN_AIRGAP_TIME_UNCERTAINTY_HIGH``.
* ``staleness > T + G``: STRICT fails with ``ERR_AIRGAP_STALE``; WARN passes with
  ``WARN_AIRGAP_BUNDLE_OLD``.
* ``T < staleness <= T + G`` (grace): passes, with ``WARN_AIRGAP_BUNDLE_OLD`` in both modes.
* ``staleness <= T``: the highest ``notificationThresholds`` entry reached
  (``staleness >= percentOfThreshold % of T``) gives ``WARN_AIRGAP_APPROACHING_STALE``.

Every evaluation returns a :class:`StalenessOutcome` whose ``result`` is a schema-valid
``StalenessValidationResult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from stella_oci.airgap.models import (
    StalenessConfig,
    TimeAnchor,
    format_rfc3339,
    to_utc,
)
from stella_oci.errors import StalenessError

DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300
DEFAULT_MAX_UNCERTAINTY_MS = 60_000

Context = Literal["EXPORT", "QUERY", "POLICY_EVAL", "ATTESTATION"]

ERR_STALE = "ERR_AIRGAP_STALE"
ERR_NO_BUNDLE = "ERR_AIRGAP_NO_BUNDLE"
ERR_TIME_DRIFT = "ERR_AIRGAP_TIME_DRIFT"
WARN_APPROACHING = "WARN_AIRGAP_APPROACHING_STALE"
WARN_UNCERTAINTY = "WARN_AIRGAP_TIME_UNCERTAINTY_HIGH"
WARN_BUNDLE_OLD = "WARN_AIRGAP_BUNDLE_OLD"
WARN_NO_RECENT_IMPORT = "WARN_AIRGAP_NO_RECENT_IMPORT"


def system_anchor(now: datetime) -> TimeAnchor:
    """The anchor used when no ``--time-anchor`` is given: this host's clock, unverified."""
    return TimeAnchor(
        anchorType="HARDWARE_CLOCK", timestamp=to_utc(now), source="system-clock", verified=False
    )


def human_duration(seconds: float) -> str:
    """``691200`` -> ``"8d"``, ``93784`` -> ``"1d 2h 3m"``, ``42`` -> ``"42s"``."""
    total = int(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    if secs and not days:
        parts.append(f"{secs}s")
    return " ".join(parts) or "0s"


def percent_of(staleness: int, threshold: int) -> float | None:
    """Staleness as a percentage of the threshold (2 decimals); ``None`` for a zero threshold."""
    if threshold <= 0:
        return None
    return round(staleness * 100.0 / threshold, 2)


@dataclass(frozen=True)
class StalenessOutcome:
    """The outcome of one staleness check; ``result`` is a StalenessValidationResult."""

    result: dict[str, Any]
    message: str
    recommendation: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.result["passed"])

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return list(self.result.get("warnings", []))

    @property
    def warning_codes(self) -> list[str]:
        return [w["code"] for w in self.result.get("warnings", [])]

    @property
    def error_code(self) -> str | None:
        error = self.result.get("error")
        return None if error is None else str(error["code"])

    def text_report(self) -> str:
        """The outcome as lines of text (for output without ``--format json``)."""
        r = self.result
        state = "passed" if self.passed else "FAILED"
        head = f"staleness {state} ({r.get('enforcementMode')}, domain {r.get('domainId')})"
        lines = [f"{head}: {self.message}"]
        for w in r.get("warnings", []):
            lines.append(f"  warning {w['code']}: {w['message']}")
        if self.recommendation and not self.passed:
            lines.append(f"  fix: {self.recommendation}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`StalenessError` (exit 7) when the check failed.

        The exception's ``details`` hold ``{"staleness": <StalenessValidationResult>}`` so
        the CLI can print the same document on exit 7 as on success.
        """
        if not self.passed:
            raise StalenessError(self.message, hint=self.recommendation, details={"staleness": self.result})


def _warning(code: str, message: str, percent: float | None, projected: datetime | None) -> dict[str, Any]:
    warning: dict[str, Any] = {"code": code, "message": message}
    if percent is not None:
        warning["percentOfThreshold"] = percent
    if projected is not None:
        warning["projectedStaleAt"] = format_rfc3339(projected)
    return warning


def _error(
    code: str, message: str, *, domain: str, staleness: int | None, threshold: int, recommendation: str
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "domainId": domain}
    if staleness is not None:
        error["stalenessSeconds"] = staleness
    error["thresholdSeconds"] = threshold
    error["recommendation"] = recommendation
    return error


def _base_result(
    *, now: datetime, context: Context, domain: str, staleness: int | None, config: StalenessConfig
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "validationType": "STALENESS_VALIDATION",
        "validatedAt": format_rfc3339(now),
        "passed": True,
        "context": context,
        "domainId": domain,
    }
    if staleness is not None:
        result["stalenessSeconds"] = staleness
    result["thresholdSeconds"] = config.freshnessThresholdSeconds
    result["enforcementMode"] = config.enforcementMode
    result["warnings"] = []
    return result


def _evaluate(
    *,
    source_time: datetime,
    anchor_time: datetime,
    uncertainty_ms: int | None,
    config: StalenessConfig,
    domain: str,
    now: datetime,
    context: Context,
    subject: str,
    max_clock_skew_seconds: int,
    max_uncertainty_ms: int,
) -> StalenessOutcome:
    source_time = to_utc(source_time)
    anchor_time = to_utc(anchor_time)
    raw = (anchor_time - source_time).total_seconds()
    staleness = max(0, math.floor(raw))
    threshold = config.freshnessThresholdSeconds
    grace = config.gracePeriodSeconds
    mode = config.enforcementMode
    percent = percent_of(staleness, threshold)
    projected = source_time + timedelta(seconds=threshold)
    hard_limit = source_time + timedelta(seconds=threshold + grace)
    result = _base_result(now=now, context=context, domain=domain, staleness=staleness, config=config)
    warnings: list[dict[str, Any]] = result["warnings"]
    age = f"{subject} is {human_duration(staleness)} old (stalenessSeconds {staleness})"
    limits = (
        f"threshold {human_duration(threshold)} ({threshold} s), grace {human_duration(grace)} ({grace} s)"
    )

    if mode == "DISABLED":
        return StalenessOutcome(result, f"{age}; staleness enforcement is DISABLED")
    if config.is_exempt(domain):
        return StalenessOutcome(result, f"{age}; domain {domain!r} is exempt (allowedDomains)")

    if uncertainty_ms is not None and uncertainty_ms > max_uncertainty_ms:
        warnings.append(
            _warning(
                WARN_UNCERTAINTY,
                f"time anchor uncertainty {uncertainty_ms} ms exceeds {max_uncertainty_ms} ms; "
                "staleness may be off by that much",
                percent,
                None,
            )
        )

    if raw < -max_clock_skew_seconds:
        ahead = -raw
        text = (
            f"{subject} was generated {human_duration(ahead)} ({math.ceil(ahead)} s) after the time anchor "
            f"{format_rfc3339(anchor_time)} (allowed skew {max_clock_skew_seconds} s): "
            "the anchor or the exporting site's clock is wrong"
        )
        recommendation = (
            "check the time anchor (--time-anchor) and the source site's clock; "
            "supply a verified, current anchor (NTP, Roughtime or TSA)"
        )
        if mode == "STRICT":
            result["passed"] = False
            result["error"] = _error(
                ERR_TIME_DRIFT,
                text,
                domain=domain,
                staleness=staleness,
                threshold=threshold,
                recommendation=recommendation,
            )
            return StalenessOutcome(result, f"{ERR_TIME_DRIFT}: {text}", recommendation)
        warnings.append(
            _warning(WARN_UNCERTAINTY, f"{ERR_TIME_DRIFT} (not enforced in WARN mode): {text}", None, None)
        )
        return StalenessOutcome(result, f"{subject}: {ERR_TIME_DRIFT} reported as a warning (WARN mode)")

    if staleness > threshold + grace:
        text = f"{age}, beyond the {limits}"
        recommendation = (
            f"import a fresher export for domain {domain!r}; or set enforcementMode WARN, raise "
            f"freshnessThresholdSeconds, or add {domain!r} to allowedDomains in the staleness config"
        )
        if mode == "STRICT":
            result["passed"] = False
            result["error"] = _error(
                ERR_STALE,
                text,
                domain=domain,
                staleness=staleness,
                threshold=threshold,
                recommendation=recommendation,
            )
            return StalenessOutcome(result, f"{ERR_STALE}: {text}", recommendation)
        warnings.append(_warning(WARN_BUNDLE_OLD, f"{text} (WARN mode: not enforced)", percent, projected))
        return StalenessOutcome(result, f"{age}: stale, passed with a warning (WARN mode)")

    if staleness > threshold:
        warnings.append(
            _warning(
                WARN_BUNDLE_OLD,
                f"{age}, beyond the threshold ({threshold} s) but within the grace period; "
                f"hard enforcement from {format_rfc3339(hard_limit)}",
                percent,
                projected,
            )
        )
        return StalenessOutcome(result, f"{age}: within the grace period, passed with a warning")

    reached = [
        n
        for n in config.notificationThresholds
        if threshold > 0 and staleness * 100 >= n.percentOfThreshold * threshold
    ]
    if reached:
        top = max(reached, key=lambda n: n.percentOfThreshold)
        warnings.append(
            _warning(
                WARN_APPROACHING,
                f"{age}: {percent}% of the threshold, at or above the {top.severity} notification "
                f"threshold {top.percentOfThreshold}%; stale at {format_rfc3339(projected)}",
                percent,
                projected,
            )
        )
    return StalenessOutcome(result, f"{age}; fresh ({limits})")


def evaluate_staleness(
    *,
    generated_at: datetime,
    config: StalenessConfig,
    anchor: TimeAnchor,
    domain: str,
    now: datetime,
    export_id: str | None = None,
    context: Context = "EXPORT",
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    max_uncertainty_ms: int = DEFAULT_MAX_UNCERTAINTY_MS,
) -> StalenessOutcome:
    """Check one export (its ``generatedAt``) against ``config`` at ``anchor`` time.

    ``now`` is only the ``validatedAt`` of the result; staleness is measured against the
    anchor. Never raises for a stale export: call :meth:`StalenessOutcome.raise_if_failed`.
    """
    subject = f"export {export_id}" if export_id else "export"
    return _evaluate(
        source_time=generated_at,
        anchor_time=anchor.timestamp,
        uncertainty_ms=anchor.uncertainty,
        config=config,
        domain=domain,
        now=now,
        context=context,
        subject=f"{subject} (domain {domain!r}, generatedAt {format_rfc3339(generated_at)})",
        max_clock_skew_seconds=max_clock_skew_seconds,
        max_uncertainty_ms=max_uncertainty_ms,
    )


def evaluate_domain(
    *,
    domain: str,
    config: StalenessConfig,
    now: datetime,
    last_import_at: datetime | None,
    last_source_at: datetime | None,
    anchor: TimeAnchor | None = None,
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    max_uncertainty_ms: int = DEFAULT_MAX_UNCERTAINTY_MS,
) -> StalenessOutcome:
    """Check the current state of a domain from its import history (context ``QUERY``).

    No import at all: ``ERR_AIRGAP_NO_BUNDLE`` (fails in STRICT; in WARN passes with
    ``WARN_AIRGAP_NO_RECENT_IMPORT``). Otherwise the data (newest ``generatedAt``) is
    checked like an export, and ``WARN_AIRGAP_NO_RECENT_IMPORT`` is added when the last
    import is older than the threshold.
    """
    anchor_time = anchor.timestamp if anchor is not None else to_utc(now)
    threshold = config.freshnessThresholdSeconds
    if last_import_at is None or last_source_at is None:
        result = _base_result(now=now, context="QUERY", domain=domain, staleness=None, config=config)
        if config.enforcementMode == "DISABLED":
            return StalenessOutcome(result, f"no bundle imported for domain {domain!r}; enforcement DISABLED")
        if config.is_exempt(domain):
            return StalenessOutcome(result, f"no bundle imported for domain {domain!r}; domain is exempt")
        text = f"no bundle has ever been imported for domain {domain!r}"
        recommendation = f"import an export for domain {domain!r} (stella-oci pull ... --domain {domain})"
        if config.enforcementMode == "STRICT":
            result["passed"] = False
            result["error"] = _error(
                ERR_NO_BUNDLE,
                text,
                domain=domain,
                staleness=None,
                threshold=threshold,
                recommendation=recommendation,
            )
            return StalenessOutcome(result, f"{ERR_NO_BUNDLE}: {text}", recommendation)
        result["warnings"].append(_warning(WARN_NO_RECENT_IMPORT, f"{text} (WARN mode)", None, None))
        return StalenessOutcome(result, f"{text}; passed with a warning (WARN mode)")

    outcome = _evaluate(
        source_time=last_source_at,
        anchor_time=anchor_time,
        uncertainty_ms=anchor.uncertainty if anchor is not None else None,
        config=config,
        domain=domain,
        now=now,
        context="QUERY",
        subject=f"newest data of domain {domain!r} (generatedAt {format_rfc3339(last_source_at)})",
        max_clock_skew_seconds=max_clock_skew_seconds,
        max_uncertainty_ms=max_uncertainty_ms,
    )
    if config.enforcementMode == "DISABLED" or config.is_exempt(domain):
        return outcome
    since_import = (anchor_time - to_utc(last_import_at)).total_seconds()
    if since_import > threshold:
        outcome.result["warnings"].append(
            _warning(
                WARN_NO_RECENT_IMPORT,
                f"last import for domain {domain!r} was at {format_rfc3339(last_import_at)}, "
                f"{human_duration(since_import)} ago, longer than the threshold ({threshold} s)",
                percent_of(max(0, math.floor(since_import)), threshold),
                None,
            )
        )
    return outcome
