"""Typed view of the StellaOps export manifest (export.json), schema v1alpha2.

Every object of ``stella_oci/data/export-manifest.schema.json`` has a model here. Fields
are snake_case in Python and camelCase (the schema's names) in JSON; models are frozen and
refuse unknown members, like the schema (``additionalProperties: false``).

Build one with :meth:`ExportManifest.from_json_obj`, which validates against the JSON
Schema first (so errors carry JSON pointers and the rule that failed) and then builds the
model. :meth:`ExportManifest.to_json_obj` gives back exactly the members that were set.
Timestamps stay strings: ``generatedAt`` is copied verbatim into the
``org.opencontainers.image.created`` annotation and must not be re-formatted.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_serializer,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass as pydantic_dataclass

from stella_oci.errors import InvalidInputError
from stella_oci.export.canonical import manifest_digest
from stella_oci.oci.digest import is_digest
from stella_oci.schemas import MAX_REPORTED_VIOLATIONS, validate_against

SCHEMA_URI = "https://stellaops.io/export-center/manifest/v1alpha2"

Digest = Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$")]
Identifier = Annotated[str, Field(pattern=r"^[a-z0-9-]{6,64}$")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")]
BundlePath = Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")]

ProfileKind = Literal["json", "trivy", "mirror", "devportal", "attestation"]
ProfileVariant = Literal["raw", "policy", "db", "java-db", "full", "delta", "offline", "bundle"]
Severity = Literal["critical", "high", "medium", "low", "info"]
Ecosystem = Literal["npm", "maven", "pypi", "nuget", "go", "cargo", "rpm", "deb", "apk", "java"]

def validate_export_manifest(obj: Any, source: str = "export.json") -> None:
    """Validate an export manifest (export.json) against the v1alpha2 schema (exit 2)."""
    validate_against(obj, "export-manifest", source=source)


REQUIRED_INTEGRITY_ANNOTATIONS = (
    "io.stellaops.export.profile",
    "io.stellaops.export.run",
    "io.stellaops.export.manifest-digest",
    "io.stellaops.export.provenance-ref",
)


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )

    def to_json_obj(self) -> dict[str, Any]:
        """The JSON members that were set, under their schema names."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return data


class Profile(_Model):
    kind: ProfileKind
    variant: ProfileVariant
    name: Slug
    revision: Annotated[str, Field(pattern=r"^r[0-9]+$")] | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.variant}"


class Selectors(_Model):
    tenants: list[Annotated[str, Field(pattern=r"^[a-z0-9*.-]+$")]] | None = None
    products: list[Annotated[str, Field(pattern=r"^pkg:[A-Za-z0-9.+\-_/:@*]+$")]] | None = None
    time_window: (
        Annotated[str, Field(pattern=r"^([0-9]+d|[0-9]{4}-[0-9]{2}-[0-9]{2}/[0-9]{4}-[0-9]{2}-[0-9]{2})$")]
        | None
    ) = None
    severities: list[Severity] | None = None
    ecosystems: list[Ecosystem] | None = None


@pydantic_dataclass(
    config=ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=False),
    frozen=True,
    slots=True,
)
class ContentEntry:
    """One ``contents`` entry: a pydantic dataclass with slots, not a model (an export lists
    up to ~16,000 of them: ~80 bytes each beside their strings, where a model instance costs
    ~500, issue 15). Validated like the models (aliases, unknown members refused); members the
    schema has no null for are omitted from :meth:`to_json_obj` when None (= not set)."""

    path: BundlePath
    digest: Digest
    bytes: Annotated[int, Field(ge=0)]
    records: Annotated[int | None, Field(ge=0)] = None
    content_type: str | None = None

    @property
    def size(self) -> int:
        return self.bytes

    def to_json_obj(self) -> dict[str, Any]:
        """The JSON members that were set (not None), under their schema names."""
        return _content_json(self)


def _content_json(entry: ContentEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"path": entry.path, "digest": entry.digest, "bytes": entry.bytes}
    if entry.records is not None:
        out["records"] = entry.records
    if entry.content_type is not None:
        out["contentType"] = entry.content_type
    return out


class Delta(_Model):
    base_export_id: Identifier
    base_manifest_digest: Digest
    tombstones: list[BundlePath]
    added: list[BundlePath] | None = None
    removed: list[BundlePath] | None = None


class HttpHeaders(_Model):
    digest: Annotated[str, Field(pattern=r"^sha-256=[A-Za-z0-9+/=]+$", alias="Digest")]
    x_stella_signature: str = Field(alias="X-Stella-Signature")
    x_stella_immutability: str | None = Field(default=None, alias="X-Stella-Immutability")


class OciIntegrity(_Model):
    annotations: dict[str, str]

    @field_validator("annotations")
    @classmethod
    def _required_keys(cls, v: dict[str, str]) -> dict[str, str]:
        missing = [k for k in REQUIRED_INTEGRITY_ANNOTATIONS if k not in v]
        if missing:
            raise ValueError(f"missing required annotation(s): {', '.join(missing)}")
        md = v["io.stellaops.export.manifest-digest"]
        if not is_digest(md):
            raise ValueError(f"io.stellaops.export.manifest-digest {md!r} is not sha256:<64 lowercase hex>")
        return v


class Integrity(_Model):
    http_headers: HttpHeaders
    oci: OciIntegrity


class TransparencyLog(_Model):
    kind: Literal["hashedrekord", "rekor"]
    log_id: str
    log_index: int = Field(ge=0)
    entry_digest: Digest
    timestamp: str


class Attestations(_Model):
    provenance_ref: str
    dsse_envelope: str
    slsa_level: str
    log: TransparencyLog


class HttpDistribution(_Model):
    enabled: bool | None = None
    retention_days: int | None = Field(default=None, ge=1, le=3650)
    etag: str | None = None
    range_requests: bool | None = None


class OciDistribution(_Model):
    enabled: bool | None = None
    reference: str | None = None


class ObjectDistribution(_Model):
    enabled: bool | None = None
    bucket: str | None = None
    prefix: str | None = None


class Distribution(_Model):
    http: HttpDistribution | None = None
    oci: OciDistribution | None = None
    object_: ObjectDistribution | None = Field(default=None, alias="object")


class Recipient(_Model):
    key_id: str
    fingerprint: str
    wrapped_key: str | None = None


class Encryption(_Model):
    mode: Literal["age", "aes-gcm"] | None = None
    recipients: list[Recipient] | None = None
    strict: bool | None = None


class Approval(_Model):
    required: bool | None = None
    reason: str | None = None
    approved_by: str | None = None
    ticket: str | None = None


class Quotas(_Model):
    max_active_runs: int | None = Field(default=None, ge=1, le=32)
    max_queued_runs: int | None = Field(default=None, ge=1, le=512)
    backpressure_mode: Literal["reject", "defer", "throttle"] | None = None
    cpu_throttle_percent: int | None = Field(default=None, ge=1, le=100)


class ExportManifest(_Model):
    """export.json."""

    schema_: Literal["https://stellaops.io/export-center/manifest/v1alpha2"] = Field(alias="schema")
    version: Annotated[str, Field(pattern=r"^1\.1\.[0-9]+$")]
    export_id: Identifier
    run_id: Identifier | None = None
    profile: Profile
    tenant: Slug
    selectors: Selectors
    generated_at: str
    rerun_hash: Digest | None = None
    contents: list[ContentEntry]
    delta: Delta | None = None
    integrity: Integrity | None = None
    attestations: Attestations | None = None
    distribution: Distribution | None = None
    encryption: Encryption | None = None
    approval: Approval | None = None
    quotas: Quotas | None = None

    _source_obj: dict[str, Any] | None = PrivateAttr(default=None)

    @field_serializer("contents")
    def _dump_contents(self, contents: list[ContentEntry]) -> list[dict[str, Any]]:
        return [_content_json(entry) for entry in contents]

    _manifest_digest: str | None = PrivateAttr(default=None)

    @classmethod
    def from_json_obj(cls, obj: Any, source: str = "export.json") -> ExportManifest:
        """Validate ``obj`` against the JSON Schema, then build the model (exit 2 on either).

        :attr:`manifest_digest` is computed here, over the document as it was given, member for
        member, never over a re-serialization (kept as the digest, not as a deep copy of a
        10,000-entry document; a document it cannot be computed for keeps its copy, and the
        property raises as it always did)."""
        validate_export_manifest(obj, source=source)
        try:
            model = cls.model_validate(obj)
        except ValidationError as exc:
            errors = exc.errors()
            lines = [
                f"{source}: /{'/'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in errors[:MAX_REPORTED_VIOLATIONS]
            ]
            if len(errors) > MAX_REPORTED_VIOLATIONS:
                lines.append(f"... and {len(errors) - MAX_REPORTED_VIOLATIONS} more not listed")
            raise InvalidInputError(
                f"{source} is not a valid export manifest ({len(errors)} problem(s)):\n"
                + "\n".join("  " + ln for ln in lines),
                hint="a value may end in a line break or other character the schema's pattern does not allow",
            ) from None
        try:
            model._manifest_digest = manifest_digest(obj)
        except InvalidInputError:
            model._source_obj = copy.deepcopy(obj)
        return model

    @property
    def manifest_digest(self) -> str:
        """``io.stellaops.export.manifest-digest``: ``sha256:`` + SHA-256 of the RFC 8785 form of
        export.json without ``integrity`` (:func:`stella_oci.export.canonical.manifest_digest`)."""
        if self._manifest_digest is not None:
            return self._manifest_digest
        source = self._source_obj if self._source_obj is not None else self.to_json_obj()
        return manifest_digest(source)

    @property
    def integrity_annotations(self) -> dict[str, str]:
        """``integrity.oci.annotations`` (empty without an integrity block)."""
        return dict(self.integrity.oci.annotations) if self.integrity else {}

    @property
    def provenance_ref(self) -> str | None:
        """``attestations.provenanceRef`` (None without attestations, or when empty)."""
        return (self.attestations.provenance_ref or None) if self.attestations else None

    @property
    def profile_label(self) -> str:
        """``<kind>:<variant>``, e.g. ``mirror:full``."""
        return self.profile.label

    @property
    def run_label(self) -> str:
        """``runId``, or ``exportId`` when there is none."""
        return self.run_id or self.export_id

    @property
    def generated_at_datetime(self) -> datetime:
        """``generatedAt`` parsed (RFC 3339; ``Z`` accepted)."""
        return datetime.fromisoformat(self.generated_at.replace("Z", "+00:00").replace("z", "+00:00"))

    def content(self, path: str) -> ContentEntry | None:
        """The contents entry for ``path``, if listed."""
        return next((c for c in self.contents if c.path == path), None)
