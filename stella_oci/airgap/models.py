"""Typed models of the air-gap staleness schema (``ledger-airgap-staleness.schema.json``).

Only the two documents a user hands to stella-oci are modelled here: the
:class:`StalenessConfig` (``--staleness-config``) and the :class:`TimeAnchor`
(``--time-anchor``). The documents stella-oci *writes* (StalenessValidationResult,
BundleProvenance, StalenessMetrics) are plain ``dict`` values built to the schema and
tested against it, so that what is printed is exactly what is validated.

Timestamps are UTC RFC 3339 with a ``Z`` suffix, see :func:`format_rfc3339`.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from stella_oci.errors import InvalidInputError
from stella_oci.export.models import ExportManifest
from stella_oci.jsonio import load_json_file
from stella_oci.schemas import validate_against

EnforcementMode = Literal["STRICT", "WARN", "DISABLED"]
AnchorType = Literal["NTP", "ROUGHTIME", "HARDWARE_CLOCK", "ATTESTATION_TSA", "MANUAL"]
Severity = Literal["info", "warning", "critical"]
Channel = Literal["email", "slack", "teams", "webhook", "metric"]

DEFAULT_THRESHOLD_SECONDS = 7 * 24 * 3600
DEFAULT_GRACE_SECONDS = 24 * 3600

#: Namespace of the deterministic UUIDv5 given to export ids that are not UUIDs.
EXPORT_CENTER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://stellaops.io/export-center")

_CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class DomainSummary:
    """What the ledger knows about one domain: the inputs of StalenessMetrics."""

    domain: str
    bundle_count: int
    import_count: int
    last_import_at: datetime
    last_source_at: datetime


def export_uuid(export_id: str) -> str:
    """The UUID the schema wants for an export id (``bundleId``, ``exports[].exportId``).

    An export id that already is a UUID in canonical 8-4-4-4-12 form is kept (lower-cased);
    any other id becomes the UUIDv5 of that id in :data:`EXPORT_CENTER_NAMESPACE`, so the
    same export always gets the same UUID, on every machine.
    """
    if _CANONICAL_UUID.fullmatch(export_id):
        return export_id.lower()
    return str(uuid.uuid5(EXPORT_CENTER_NAMESPACE, export_id))


def export_domain(export: ExportManifest, domain: str | None = None) -> str:
    """The domain of an export: ``domain`` when given (CLI ``--domain``), else export.json
    ``profile.name`` (which the schema requires)."""
    return domain or export.profile.name


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is refused (it has no defined instant)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"timestamp {value.isoformat()} has no UTC offset; give it as RFC 3339 with 'Z'")
    return value.astimezone(timezone.utc)


def format_rfc3339(value: datetime) -> str:
    """UTC RFC 3339 with ``Z``; fractional seconds only when there are any."""
    value = to_utc(value)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str, *, field: str = "timestamp") -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or an offset required) into an aware UTC datetime."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise ValueError(
            f"{field} {text!r} is not an RFC 3339 timestamp (e.g. 2025-11-21T10:00:00Z)"
        ) from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{field} {text!r} has no UTC offset; write it with 'Z' (e.g. 2025-11-21T10:00:00Z)")
    return parsed.astimezone(timezone.utc)


class NotificationThreshold(BaseModel):
    """Alert threshold: warn once staleness reaches ``percentOfThreshold`` % of the threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percentOfThreshold: int = Field(ge=1, le=100)
    severity: Severity
    channels: list[Channel] = Field(default_factory=list)


class StalenessConfig(BaseModel):
    """``$defs/StalenessConfig``: how staleness is enforced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    configType: Literal["STALENESS_CONFIG"] = "STALENESS_CONFIG"
    freshnessThresholdSeconds: int = Field(default=DEFAULT_THRESHOLD_SECONDS, ge=0)
    enforcementMode: EnforcementMode = "STRICT"
    gracePeriodSeconds: int = Field(default=DEFAULT_GRACE_SECONDS, ge=0)
    allowedDomains: list[str] = Field(default_factory=list)
    notificationThresholds: list[NotificationThreshold] = Field(default_factory=list)
    requireTimeAnchor: bool = False
    """stella-oci's member (the StellaOps air-gap docs' name; not in the LEDGER-AIRGAP-56-002
    schema): refuse (exit 7) to measure against anything but a verified, signed time anchor."""

    def is_exempt(self, domain: str) -> bool:
        return domain in self.allowedDomains

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class TimeAnchor(BaseModel):
    """``$defs/TimeAnchor``: the trusted "now" that staleness is measured against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    anchorType: AnchorType
    timestamp: AwareDatetime
    source: str | None = None
    uncertainty: int | None = Field(default=None, ge=0, description="milliseconds")
    signatureDigest: str | None = Field(default=None, pattern=r"^sha256:[a-f0-9]{64}$")
    verified: bool | None = None

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return to_utc(value)

    def to_json(self) -> dict[str, Any]:
        """The anchor as the schema's TimeAnchor object (absent fields left out)."""
        out: dict[str, Any] = {"anchorType": self.anchorType, "timestamp": format_rfc3339(self.timestamp)}
        if self.source is not None:
            out["source"] = self.source
        if self.uncertainty is not None:
            out["uncertainty"] = self.uncertainty
        if self.signatureDigest is not None:
            out["signatureDigest"] = self.signatureDigest
        if self.verified is not None:
            out["verified"] = self.verified
        return out


def _pydantic_problem(exc: ValidationError, source: str, what: str) -> InvalidInputError:
    lines = []
    for err in exc.errors():
        pointer = "/" + "/".join(str(p) for p in err["loc"]) if err["loc"] else "/"
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: {pointer}: unknown member (a typo? see the {what} schema)")
        else:
            lines.append(f"{source}: {pointer}: {err['msg']}")
    return InvalidInputError(
        f"{source} is not a valid {what}:\n" + "\n".join("  " + line for line in lines),
        hint=f"fix the listed members; the schema is stella_oci/data/ledger-airgap-staleness.schema.json "
        f"($defs/{what})",
        details={"source": source, "schema": f"ledger-airgap-staleness#/$defs/{what}"},
    )


def load_staleness_config(path: str | os.PathLike[str]) -> StalenessConfig:
    """Read ``--staleness-config FILE``: JSON, validated against ``$defs/StalenessConfig``.

    Members the schema does not define are refused as well (most likely typos, which would
    otherwise silently fall back to STRICT defaults). Raises InvalidInputError (exit 2).
    """
    obj = load_json_file(Path(path), "staleness config")
    validate_against(obj, "ledger-airgap-staleness", definition="StalenessConfig", source=str(path))
    try:
        return StalenessConfig.model_validate(obj)
    except ValidationError as exc:
        raise _pydantic_problem(exc, str(path), "StalenessConfig") from exc


def load_time_anchor(path: str | os.PathLike[str]) -> TimeAnchor:
    """Read a plain TimeAnchor JSON file, validated against ``$defs/TimeAnchor``.

    The result is what the file says, ``verified`` included: it is *not* a trusted time. The
    CLI reads ``--time-anchor`` through :func:`stella_oci.airgap.timeanchor.resolve_clock`,
    which verifies signed anchors and marks every other one unverified.
    """
    return time_anchor_from_json(load_json_file(Path(path), "time anchor"), str(path))


def time_anchor_from_json(obj: Any, source: str) -> TimeAnchor:
    """A parsed TimeAnchor document, validated against ``$defs/TimeAnchor`` (exit 2 naming
    ``source`` and the members at fault)."""
    validate_against(obj, "ledger-airgap-staleness", definition="TimeAnchor", source=source)
    try:
        return TimeAnchor.model_validate(obj)
    except ValidationError as exc:
        raise _pydantic_problem(exc, source, "TimeAnchor") from exc
