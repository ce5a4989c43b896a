"""inspect: the manifest, annotations and layers of a reference, without downloading layers."""

from __future__ import annotations

from stella_oci.errors import VerificationError, on_side
from stella_oci.jsonio import load_json
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import Index, Manifest, parse_index, parse_manifest
from stella_oci.oci.reference import Reference
from stella_oci.results import InspectResult
from stella_oci.targets.verified import read_manifest
from stella_oci.verbs.common import RunOptions, as_reference, layer_infos, open_source, selector_of


def inspect(reference: str | Reference, *, run: RunOptions | None = None) -> InspectResult:
    """The manifest (or index) ``reference`` names, as stored, with its layers and annotations
    (no export checks: ``verify`` makes those)."""
    run = run or RunOptions()
    ref = as_reference(reference)
    src = open_source(ref, run)
    try:
        with on_side("source"):
            desc = src.resolve(selector_of(ref, "inspect"))
        data = read_manifest(src, desc)
    finally:
        src.close()
    where = f"{ref.base()}@{desc.digest}"
    doc = load_json(data, f"{where}: manifest", max_bytes=mt.MAX_MANIFEST_BYTES, error=VerificationError)
    parsed: Index | Manifest = (
        parse_index(data, where)
        if desc.media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST)
        else parse_manifest(data, where)
    )
    children = parsed.manifests if isinstance(parsed, Index) else parsed.layers
    return InspectResult(
        reference=where,
        digest=desc.digest,
        media_type=desc.media_type,
        artifact_type=parsed.artifact_type,
        size=desc.size,
        annotations=dict(parsed.annotations or {}),
        layers=layer_infos(children),
        manifest=doc,
    )
