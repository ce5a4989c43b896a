"""resolve and manifest: what a tag points at, and the manifest bytes exactly as stored.

``resolve`` is ORAS ``resolve`` / crane ``digest``: the reference pinned by digest.
``manifest`` is crane ``manifest``: the raw bytes (for ``sha256sum``), verified against the
digest before they are handed out.
"""

from __future__ import annotations

from pydantic import Field, JsonValue

from stella_oci.oci.reference import Reference
from stella_oci.results import ResultModel
from stella_oci.targets.verified import read_manifest
from stella_oci.verbs.common import RunOptions, as_reference, open_source, selector_of


class ResolveResult(ResultModel):
    """The manifest a tag or digest names (``stella-oci resolve --format json``)."""

    reference: str
    """``host/repo@sha256:...`` (or ``oci:PATH@sha256:...``)."""
    digest: str
    """The OCI manifest digest."""
    media_type: str = Field(serialization_alias="mediaType")
    size: int
    """Bytes of the manifest."""


class ManifestResult(ResolveResult):
    """The manifest bytes exactly as stored (``data``), with what ``resolve`` says of them."""

    data: bytes = Field(exclude=True, repr=False)
    """The manifest bytes as stored, verified against ``digest`` (not in the JSON document)."""
    manifest: dict[str, JsonValue] = Field(default_factory=dict)
    """The manifest, parsed (``--format json``)."""


def _resolve(ref: Reference, run: RunOptions, verb: str, *, fetch: bool) -> tuple[ResolveResult, bytes]:
    src = open_source(ref, run)
    try:
        desc = src.resolve(selector_of(ref, verb))
        data = read_manifest(src, desc) if fetch else b""
    finally:
        src.close()
    result = ResolveResult(
        reference=f"{ref.base()}@{desc.digest}",
        digest=desc.digest,
        media_type=desc.media_type,
        size=desc.size,
    )
    return result, data


def resolve(reference: str | Reference, *, run: RunOptions | None = None) -> ResolveResult:
    """The manifest a tag (or digest) names: its digest, media type and size."""
    result, _ = _resolve(as_reference(reference), run or RunOptions(), "resolve", fetch=False)
    return result


def manifest(reference: str | Reference, *, run: RunOptions | None = None) -> ManifestResult:
    """The manifest bytes exactly as stored (``result.data``), checked against their digest
    (and the registry's Docker-Content-Digest) before they are returned."""
    from stella_oci.jsonio import try_load_json

    result, data = _resolve(as_reference(reference), run or RunOptions(), "manifest", fetch=True)
    parsed = try_load_json(data)  # bounded: a hostile manifest nested 5,000 deep is not exit 1
    return ManifestResult(
        **result.model_dump(), data=data, manifest=parsed if isinstance(parsed, dict) else {}
    )
