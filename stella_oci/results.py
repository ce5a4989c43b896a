"""Typed results of the verbs (what ``--format json`` prints, and what the Python API returns).

Naming, the same in every document (docs/output.md; JSON Schemas in ``stella_oci/data/output``):
``digest`` is always the OCI manifest digest (``sha256:`` of the manifest bytes);
``exportManifestDigest`` is the ``io.stellaops.export.manifest-digest`` annotation (the JCS
digest of export.json); keys are camelCase (Python attributes are their snake_case twins);
``referrers`` is always a list of :class:`ReferrerInfo`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from stella_oci.oci.manifest import Descriptor
from stella_oci.signing.models import EnvelopeResult, ProvenanceResult, SignatureReport, SigstoreBundleResult

#: Serialize every field under its camelCase name; Python code uses the snake_case names.
#: ``defer_build``: a model's validator and serializer are built when it is first used, not at
#: import, so a push builds its own result, not every verb's (start-up, issue 15).
CAMEL = ConfigDict(
    alias_generator=AliasGenerator(serialization_alias=to_camel), use_attribute_docstrings=True, defer_build=True
)


class ResultModel(BaseModel):
    """Base of the result models: camelCase keys in JSON."""

    model_config = CAMEL


class LayerInfo(ResultModel):
    model_config = ConfigDict(frozen=True)

    path: str | None = None
    """The file's path in the bundle (``org.opencontainers.image.title``); absent when untitled."""
    media_type: str = Field(serialization_alias="mediaType")
    digest: str
    size: int


class ReferrerInfo(ResultModel):
    """One referrer manifest (OCI 1.1 ``subject``), as the referrers API, the fallback index or an
    OCI layout lists it. The one shape of every ``referrers`` member."""

    digest: str
    media_type: str = Field(serialization_alias="mediaType")
    size: int
    artifact_type: str | None = Field(default=None, serialization_alias="artifactType")
    annotations: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, d: Descriptor) -> ReferrerInfo:
        return cls(
            digest=d.digest,
            media_type=d.media_type,
            size=d.size,
            artifact_type=d.artifact_type,
            annotations=dict(d.annotations or {}),
        )


class TransferStats(ResultModel):
    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes: int = 0


class PushResult(ResultModel):
    """Where ``push`` put the export: its reference, digests, tags and what was sent."""

    reference: str
    """``REGISTRY/REPO@sha256:...`` (or ``oci:PATH@sha256:...``)."""
    digest: str
    """The OCI manifest digest."""
    tags: list[str]
    export_manifest_digest: str = Field(serialization_alias="exportManifestDigest")
    """The ``io.stellaops.export.manifest-digest`` annotation (JCS digest of export.json)."""
    export_id: str = Field(serialization_alias="exportId")
    profile: str
    annotations: dict[str, str]
    layers: list[LayerInfo]
    ignored: list[str] = Field(default_factory=list)
    transfer: TransferStats = Field(default_factory=TransferStats)
    referrers: list[ReferrerInfo] = Field(default_factory=list)
    """The referrer manifests attached with ``--attach-signatures``."""


# ----------------------------------------------------------------------------- air gap (CONTRACT 7)
# The ledger schema's own documents ($defs of stella_oci/data/ledger-airgap-staleness.schema.json):
# field names are the schema's (already camelCase), so the JSON is exactly the schema's shape.
class _SchemaDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, defer_build=True)


class StalenessErrorDoc(_SchemaDoc):
    code: str
    message: str
    domainId: str | None = None
    stalenessSeconds: int | None = None
    thresholdSeconds: int | None = None
    recommendation: str | None = None


class StalenessWarningDoc(_SchemaDoc):
    code: str
    message: str
    percentOfThreshold: float | None = None
    projectedStaleAt: str | None = None


class StalenessResult(_SchemaDoc):
    """``$defs/StalenessValidationResult``."""

    validationType: str
    validatedAt: str
    passed: bool
    context: str | None = None
    domainId: str | None = None
    stalenessSeconds: int | None = None
    thresholdSeconds: int | None = None
    enforcementMode: str | None = None
    error: StalenessErrorDoc | None = None
    warnings: list[StalenessWarningDoc] | None = None


class ClockInfo(ResultModel):
    """Which clock an air-gap check measured against (docs/airgap.md, "Signed time")."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, use_attribute_docstrings=True)

    source: Literal["system-clock", "time-anchor"]
    """``system-clock``: this host's clock (no ``--time-anchor``); ``time-anchor``: the file given."""
    verified: bool
    """True only for a signed anchor verified with ``--time-anchor-trust-root`` (never the file's word)."""
    timestamp: str
    """The "now" used (UTC RFC 3339)."""
    anchor_type: str
    file: str | None = None
    """The ``--time-anchor`` file."""
    key_id: str | None = None
    """The trust-root key that verified a signed anchor (hex SHA-256 of its SubjectPublicKeyInfo)."""
    key_name: str | None = None
    """The trust-root file that key came from."""


class TimeAnchorDoc(_SchemaDoc):
    anchorType: str
    timestamp: str
    source: str | None = None
    uncertainty: int | None = None
    signatureDigest: str | None = None
    verified: bool | None = None


class ExportRecordDoc(_SchemaDoc):
    exportId: str
    key: str
    format: str
    createdAt: str
    artifactDigest: str
    recordCount: int | None = None


class BundleAttestationDoc(_SchemaDoc):
    predicateType: str | None = None
    envelopeDigest: str | None = None
    signedAt: str | None = None
    keyId: str | None = None
    transparencyLog: str | None = None


class ProvenanceRecord(_SchemaDoc):
    """``$defs/BundleProvenance``: the import ledger's record of an import."""

    provenanceType: str
    bundleId: str
    importedAt: str
    sourceTimestamp: str
    domainId: str | None = None
    sourceEnvironment: str | None = None
    bundleDigest: str | None = None
    manifestDigest: str | None = None
    """The OCI manifest digest (the schema's name; the same value as ``digest`` elsewhere)."""
    stalenessSeconds: int | None = None
    timeAnchor: TimeAnchorDoc | None = None
    attestation: BundleAttestationDoc | None = None
    exports: list[ExportRecordDoc] | None = None
    metadata: dict[str, JsonValue] | None = None


class SignatureSourceInfo(ResultModel):
    """Where one signature document was found (a layer, a referrer, or both)."""

    name: str
    kind: str
    digest: str
    found_as: list[str] = Field(default_factory=list)


class SignaturesResult(ResultModel):
    """The signature checks of a pull / verify: the :class:`SignatureReport` of the export and
    where each document was found."""

    export_json_sha256: str
    trust_root: list[str] = Field(default_factory=list)
    """Key ids of the trust root; empty when none was given (envelopes then ``unverified``)."""
    required: bool
    envelopes: list[EnvelopeResult] = Field(default_factory=list)
    provenance: ProvenanceResult | None = None
    digest_header: str | None = None
    """The ``integrity.httpHeaders.Digest`` value that was checked, when present."""
    stella_signature: EnvelopeResult | None = None
    """The envelope of ``integrity.httpHeaders.X-Stella-Signature``, when present."""
    sigstore_bundles: list[SigstoreBundleResult] = Field(default_factory=list)
    """Sigstore bundles (cosign --bundle / --new-bundle-format), layers or referrers."""
    verified_count: int = 0
    """Signatures that verified with a trusted key."""
    additional_provenance: list[ProvenanceResult] = Field(default_factory=list)
    """Provenance documents beyond the first (e.g. more provenance referrers)."""
    sources: list[SignatureSourceInfo] = Field(default_factory=list)
    ignored_referrers: list[str] = Field(default_factory=list)
    """Referrers that looked like signatures but were not used, and why."""

    @classmethod
    def of(cls, report: SignatureReport, **more: Any) -> SignaturesResult:
        fields = {name: getattr(report, name) for name in SignatureReport.model_fields}
        return cls(**{**fields, **more})


class VerifyResult(ResultModel):
    """What ``pull`` or ``verify`` checked (every check that ran) and what it found."""

    reference: str
    digest: str
    """The OCI manifest digest (for a bundle directory: the digest pushing it would give)."""
    export_manifest_digest: str = Field(serialization_alias="exportManifestDigest")
    """The ``io.stellaops.export.manifest-digest`` annotation (JCS digest of export.json)."""
    export_id: str = Field(serialization_alias="exportId")
    profile: str
    tenant: str
    generated_at: str = Field(serialization_alias="generatedAt")
    annotations: dict[str, str]
    layers: list[LayerInfo]
    checks: list[str]
    """The checks that ran, in order (CONTRACT section 5); only those that ran."""
    output: str | None = None
    """Where the bundle was written (pull), or None (verify)."""
    staleness: StalenessResult | None = None
    """With ``--staleness-config``: the StalenessValidationResult."""
    clock: ClockInfo | None = None
    """The "now" staleness and the import record used, whenever one was used."""
    provenance: ProvenanceRecord | None = None
    """An import (pull): the BundleProvenance record written to the ledger."""
    signatures: SignaturesResult | None = None
    """The signature checks (``--trust-root`` / ``--require-signature``), when asked for."""
    transfer: TransferStats = Field(default_factory=TransferStats)
    served_by: str | None = Field(default=None, serialization_alias="servedBy")
    """``host/repository`` of the ``--registry-mirror`` that served the reads; None without a mirror."""


class InspectResult(ResultModel):
    """A manifest (or index) as stored, with its layers and annotations; nothing is verified beyond its digest."""

    reference: str
    digest: str
    media_type: str = Field(serialization_alias="mediaType")
    artifact_type: str | None = Field(default=None, serialization_alias="artifactType")
    size: int
    annotations: dict[str, str]
    layers: list[LayerInfo]
    manifest: dict[str, JsonValue]
    """The manifest (or index) as stored, parsed."""


class CosignTagInfo(ResultModel):
    """One cosign tag-scheme manifest copied along (``sha256-<hex>.sig`` / ``.att`` / ``.sbom``)."""

    tag: str
    digest: str
    media_type: str = Field(serialization_alias="mediaType")


class CopyResult(ResultModel):
    """What ``copy`` moved: the destination, the referrers and cosign tags copied along, the transfer."""

    source: str
    destination: str
    digest: str
    tags: list[str]
    referrers: list[ReferrerInfo] = Field(default_factory=list)
    """The referrer manifests copied along (signatures, provenance, SBOMs)."""
    cosign_tags: list[CosignTagInfo] = Field(default_factory=list, serialization_alias="cosignTags")
    """cosign's tag-scheme signatures, attestations and SBOMs copied along (``--no-signatures``: none)."""
    transfer: TransferStats = Field(default_factory=TransferStats)
    staleness: StalenessResult | None = None
    clock: ClockInfo | None = None
    """The "now" staleness and the import record used, whenever one was used."""
    provenance: ProvenanceRecord | None = None
    served_by: str | None = Field(default=None, serialization_alias="servedBy")
    """``host/repository`` of the ``--registry-mirror`` that served the source; None without a mirror."""


def to_json_dict(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return out
