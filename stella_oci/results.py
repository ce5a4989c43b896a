"""Typed results of the verbs (what ``--format json`` prints, and what the Python API returns)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LayerInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str | None
    media_type: str = Field(serialization_alias="mediaType")
    digest: str
    size: int


class TransferStats(BaseModel):
    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes: int = 0


class PushResult(BaseModel):
    reference: str
    """``REGISTRY/REPO@sha256:...`` (or ``oci:PATH@sha256:...``)."""
    digest: str
    tags: list[str]
    manifest_digest: str = Field(serialization_alias="manifestDigest")
    """The ``io.stellaops.export.manifest-digest`` annotation."""
    export_id: str = Field(serialization_alias="exportId")
    profile: str
    annotations: dict[str, str]
    layers: list[LayerInfo]
    ignored: list[str] = Field(default_factory=list)
    transfer: TransferStats = Field(default_factory=TransferStats)
    referrers: list[str] = Field(default_factory=list)
    """Digests of the referrer manifests attached with ``--attach-signatures``."""


class VerifyResult(BaseModel):
    reference: str
    digest: str
    manifest_digest: str = Field(serialization_alias="manifestDigest")
    export_id: str = Field(serialization_alias="exportId")
    profile: str
    tenant: str
    generated_at: str = Field(serialization_alias="generatedAt")
    annotations: dict[str, str]
    layers: list[LayerInfo]
    checks: list[str]
    """What was checked, in order (CONTRACT section 5)."""
    output: str | None = None
    """Where the bundle was written (pull), or None (verify)."""
    staleness: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    signatures: dict[str, Any] | None = None
    transfer: TransferStats = Field(default_factory=TransferStats)


class InspectResult(BaseModel):
    reference: str
    digest: str
    media_type: str = Field(serialization_alias="mediaType")
    artifact_type: str | None = Field(serialization_alias="artifactType")
    size: int
    annotations: dict[str, str]
    layers: list[LayerInfo]
    manifest: dict[str, Any]


class CopyResult(BaseModel):
    source: str
    destination: str
    digest: str
    tags: list[str]
    referrers: int
    transfer: TransferStats = Field(default_factory=TransferStats)
    staleness: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None


def to_json_dict(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return out
