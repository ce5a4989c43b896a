"""OCI descriptors, image manifests and indexes: parsing and deterministic serialization.

Manifests we *write* are serialized with sorted keys and no insignificant whitespace, so
the same content always gives the same bytes and digest. Manifests we *read* are kept as
the bytes the registry sent: a digest is always computed over those bytes, never over a
re-serialization.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stella_oci.errors import VerificationError
from stella_oci.jsonio import load_json
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import check_digest, is_digest, sha256_digest


class Descriptor(BaseModel):
    """An OCI content descriptor."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True)

    media_type: str = Field(alias="mediaType")
    digest: str
    size: int = Field(ge=0)
    annotations: dict[str, str] | None = None
    artifact_type: str | None = Field(default=None, alias="artifactType")
    data: str | None = None
    urls: list[str] | None = None
    platform: dict[str, Any] | None = None

    @field_validator("digest")
    @classmethod
    def _digest_form(cls, v: str) -> str:
        if not is_digest(v):
            raise ValueError(f"digest {v!r} is not of the form sha256:<64 lowercase hex>")
        return v

    @property
    def title(self) -> str | None:
        return (self.annotations or {}).get(mt.ANNOTATION_TITLE)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)

    def short(self) -> str:
        name = self.title
        return f"{self.digest} ({name})" if name else self.digest


class Manifest(BaseModel):
    """An OCI image manifest (also used for artifacts)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    config: Descriptor
    layers: list[Descriptor] = Field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Index(BaseModel):
    """An OCI image index (used for the referrers API and the referrers tag schema)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    manifests: list[Descriptor] = Field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def canonical_json(obj: Any) -> bytes:
    """The bytes stella-oci writes for any JSON document: sorted keys, compact, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(doc: Manifest | Index) -> tuple[bytes, Descriptor]:
    """Serialize a manifest or index deterministically; return its bytes and descriptor."""
    data = canonical_json(doc.to_dict())
    media_type = doc.media_type or (mt.OCI_INDEX if isinstance(doc, Index) else mt.OCI_MANIFEST)
    desc = Descriptor(media_type=media_type, digest=sha256_digest(data), size=len(data))
    return data, desc


def _load_json(data: bytes, where: str) -> dict[str, Any]:
    if len(data) > mt.MAX_MANIFEST_BYTES:
        raise VerificationError(f"{where}: manifest is {len(data)} bytes, more than the 4 MiB limit")
    obj = load_json(data, f"{where}: manifest", max_bytes=mt.MAX_MANIFEST_BYTES, error=VerificationError)
    if not isinstance(obj, dict):
        raise VerificationError(f"{where}: manifest is not a JSON object")
    return obj


def parse_manifest(data: bytes, where: str = "manifest") -> Manifest:
    obj = _load_json(data, where)
    try:
        return Manifest.model_validate(obj)
    except ValidationError as exc:
        raise VerificationError(f"{where}: not an OCI image manifest: {_first_error(exc)}") from None


def parse_index(data: bytes, where: str = "index") -> Index:
    obj = _load_json(data, where)
    try:
        return Index.model_validate(obj)
    except ValidationError as exc:
        raise VerificationError(f"{where}: not an OCI image index: {_first_error(exc)}") from None


def media_type_of(data: bytes, declared: str | None = None) -> str:
    """The media type of a manifest document: its own mediaType member, else what was declared."""
    obj = _load_json(data, "manifest")
    mt_field = obj.get("mediaType")
    if isinstance(mt_field, str):
        return mt_field
    if declared:
        return declared
    return mt.OCI_INDEX if "manifests" in obj else mt.OCI_MANIFEST


def children(data: bytes, media_type: str) -> list[Descriptor]:
    """Descriptors a manifest or index points at (config and layers, or manifests)."""
    if media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST):
        return list(parse_index(data).manifests)
    m = parse_manifest(data)
    return [m.config, *m.layers]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = "/".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}"


def check_digest_matches(data: bytes, expected: str, what: str) -> None:
    actual = sha256_digest(data)
    if actual != expected:
        raise VerificationError(f"{what}: content hashes to {actual}, expected {expected}")


def require_sha256(digest: str, what: str = "digest") -> str:
    """Kept for callers: :func:`stella_oci.oci.digest.check_digest` with exit 2."""
    return check_digest(digest, what)


__all__ = [
    "Descriptor",
    "Index",
    "Manifest",
    "canonical_json",
    "check_digest_matches",
    "children",
    "encode",
    "media_type_of",
    "parse_index",
    "parse_manifest",
    "require_sha256",
]
