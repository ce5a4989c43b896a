"""attach and discover: OCI 1.1 referrers (signatures, provenance, SBOMs attached to an export).

A *referrer* is an image manifest whose ``subject`` is another manifest (here: the export's).
``attach`` pushes a file as the single layer of such a manifest (config: the OCI empty
descriptor, ``artifactType``: what the file is). ``discover`` lists the referrers of a
manifest.

Where the referrers are kept depends on the target:

* a registry with the OCI 1.1 referrers API (Harbor >= 2.8, Zot, ACR, ECR, GAR): the registry
  indexes the manifest itself and says so with the ``OCI-Subject`` header on the manifest PUT;
  listing uses ``GET /v2/<name>/referrers/<digest>``;
* a registry without it (registry:2, ghcr.io): the *referrers tag schema* of the distribution
  spec, an OCI index tagged ``sha256-<hex>`` (the subject's digest) listing the referrers.
  :meth:`~stella_oci.targets.registry.RegistryTarget.push_manifest` adds to that index after a
  PUT the registry did not answer with ``OCI-Subject``, keeping every entry another client put
  there (read, add, write back);
* an OCI layout (``oci:DIR``, ``oci-archive:FILE``): the referrer is listed untagged in
  index.json and found by its ``subject``.

Nothing here adds a wall-clock value: attaching the same file with the same annotations to the
same subject gives the same referrer digest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from stella_oci.engine import CopyEngine
from stella_oci.errors import InvalidInputError
from stella_oci.export.annotations import (
    ANN_ID,
    DSSE_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
    parse_user_annotations,
)
from stella_oci.export.artifact import EMPTY_CONFIG
from stella_oci.export.bundle import Bundle, BundleFile
from stella_oci.jsonio import load_json
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import file_digest
from stella_oci.oci.manifest import Descriptor, Manifest, encode, parse_index
from stella_oci.oci.reference import Reference
from stella_oci.results import LayerInfo, ReferrerInfo, ResultModel
from stella_oci.targets.base import ReadOnlyTarget, Resolver, Target
from stella_oci.targets.bundle import LocalSource
from stella_oci.verbs.common import RunOptions, as_reference, open_destination, open_source, selector_of

#: Where a target keeps its referrers (``AttachResult.via``, ``DiscoverResult.source``).
ReferrersSource = Literal["referrers-api", "fallback-tag", "oci-layout"]

#: A media type as RFC 6838 allows it (type/subtype, restricted names, 127 characters each).
_MEDIA_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)

#: Read at most this much of provenance.json to tell a bare Statement from a DSSE envelope.
_PROVENANCE_PEEK_LIMIT = 16 * 1024 * 1024


class AttachResult(ResultModel):
    """What ``attach`` pushed."""

    reference: str
    """``REGISTRY/REPO@sha256:...`` of the referrer manifest."""
    digest: str
    """The referrer manifest's digest."""
    subject: str
    """The digest of the manifest the referrer refers to."""
    subject_reference: str = Field(serialization_alias="subjectReference")
    artifact_type: str = Field(serialization_alias="artifactType")
    annotations: dict[str, str]
    layer: LayerInfo
    via: ReferrersSource
    """Where the target keeps the referrer: its referrers API, the fallback tag, or an OCI layout."""
    fallback_tag: str | None = Field(default=None, serialization_alias="fallbackTag")
    """The ``sha256-<hex>`` tag updated (registries without the referrers API)."""


class DiscoverResult(ResultModel):
    """The referrers of one manifest."""

    reference: str
    """``REGISTRY/REPO@sha256:...`` of the subject."""
    subject: str
    artifact_type: str | None = Field(default=None, serialization_alias="artifactType")
    """The artifactType filter asked for, if any."""
    source: ReferrersSource
    referrers: list[ReferrerInfo]
    """Sorted by digest."""


# ---------------------------------------------------------------------------------------------
# helpers


def check_artifact_type(value: str, what: str = "--artifact-type") -> str:
    if not value or not _MEDIA_TYPE_RE.fullmatch(value):
        raise InvalidInputError(
            f"{what} {value!r} is not a media type",
            hint="give TYPE/SUBTYPE, e.g. application/vnd.dsse.envelope.v1+json",
        )
    return value


def build_referrer_manifest(
    subject: Descriptor,
    artifact_type: str,
    layers: Sequence[Descriptor],
    annotations: dict[str, str] | None = None,
) -> tuple[bytes, Descriptor]:
    """An OCI 1.1 artifact manifest (image manifest, empty config) pointing at ``subject``;
    returns its deterministic bytes and descriptor."""
    manifest = Manifest(
        schema_version=2,
        media_type=mt.OCI_MANIFEST,
        artifact_type=artifact_type,
        config=EMPTY_CONFIG,
        layers=list(layers),
        subject=Descriptor(media_type=subject.media_type, digest=subject.digest, size=subject.size),
        annotations=dict(sorted(annotations.items())) if annotations else None,
    )
    return encode(manifest)


def _push_referrer(
    dst: Target, subject: Descriptor, artifact_type: str, layer: Descriptor, file: Path, ann: dict[str, str]
) -> tuple[bytes, Descriptor]:
    """Copy the layer blob, the empty config and the referrer manifest (by digest) through the
    engine, so the file is verified while it is sent like every other blob."""
    data, desc = build_referrer_manifest(subject, artifact_type, [layer], ann)
    src = LocalSource(str(file), desc, data, {layer.digest: file})
    CopyEngine(concurrency=1).copy_graph(src, dst, desc, root_data=data)
    return data, desc


def _registry_source(target: object, subject: Descriptor) -> ReferrersSource:
    from stella_oci.targets.registry import RegistryTarget

    if not isinstance(target, RegistryTarget):
        return "oci-layout"
    data = target.client.get_referrers(target.repo, subject.digest)
    return "fallback-tag" if data is None else "referrers-api"


def _resolve_subject(target: Resolver, ref: Reference, verb: str) -> Descriptor:
    subject = target.resolve(selector_of(ref, verb))
    if subject.media_type not in mt.MANIFEST_MEDIA_TYPES:
        raise InvalidInputError(f"{ref}: {subject.media_type!r} is not a manifest media type")
    return subject


# ---------------------------------------------------------------------------------------------
# attach


def attach(
    reference: str | Reference,
    file: str | Path,
    *,
    artifact_type: str,
    annotations: Mapping[str, str] | Sequence[str] = (),
    media_type: str | None = None,
    run: RunOptions | None = None,
) -> AttachResult:
    """Push ``file`` as an OCI 1.1 referrer of the manifest ``reference`` names.

    ``annotations`` are a mapping or ``K=V`` strings (``io.stellaops.`` is reserved) put on the referrer
    manifest; the file's name goes into the layer's ``org.opencontainers.image.title``. The
    layer's media type is ``media_type``, else ``artifact_type``.
    """
    run = run or RunOptions()
    check_artifact_type(artifact_type)
    if media_type is not None:
        check_artifact_type(media_type, "--media-type")
    ann = parse_user_annotations(annotations)
    path = Path(file)
    if not path.is_file():
        raise InvalidInputError(
            f"{path}: not found or not a regular file", hint="attach takes the path of one file to push"
        )
    ref = as_reference(reference)
    digest, size = file_digest(path)
    layer = Descriptor(
        media_type=media_type or artifact_type,
        digest=digest,
        size=size,
        annotations={mt.ANNOTATION_TITLE: path.name},
    )
    dst = open_destination(ref, run)
    try:
        subject = _resolve_subject(dst, ref, "attach to")
        _, desc = _push_referrer(dst, subject, artifact_type, layer, path, ann)
        dst.commit()
        via = _registry_source(dst, subject)
    except BaseException:
        dst.abort()
        raise
    finally:
        dst.close()
    from stella_oci.targets.registry import RegistryTarget

    return AttachResult(
        reference=f"{ref.base()}@{desc.digest}",
        digest=desc.digest,
        subject=subject.digest,
        subject_reference=f"{ref.base()}@{subject.digest}",
        artifact_type=artifact_type,
        annotations=ann,
        layer=LayerInfo(path=path.name, media_type=layer.media_type, digest=digest, size=size),
        via=via,
        fallback_tag=RegistryTarget.fallback_tag(subject) if via == "fallback-tag" else None,
    )


def _provenance_artifact_type(f: BundleFile) -> str:
    """DSSE when provenance.json is an envelope around the Statement, else in-toto."""
    if f.size > _PROVENANCE_PEEK_LIMIT:
        return IN_TOTO_MEDIA_TYPE
    try:
        doc = load_json(f.file.read_bytes(), f.path, max_bytes=_PROVENANCE_PEEK_LIMIT)
    except (OSError, InvalidInputError):
        return IN_TOTO_MEDIA_TYPE
    from stella_oci.signing.dsse import looks_like_envelope

    return DSSE_MEDIA_TYPE if looks_like_envelope(doc) else IN_TOTO_MEDIA_TYPE


def attach_bundle_signatures(dst: Target, subject: Descriptor, bundle: Bundle) -> list[Descriptor]:
    """Attach the bundle's DSSE envelopes (``*.dsse.json``) and provenance.json as referrers
    of ``subject`` (the export manifest just pushed to ``dst``).

    Each becomes one referrer manifest: artifactType ``application/vnd.dsse.envelope.v1+json``
    for envelopes (and for a provenance.json that is an envelope), ``application/vnd.in-toto+json``
    for a bare provenance Statement; its single layer is the file (the same blob as the export's
    layer, so nothing is uploaded twice); annotations: the file's path as
    ``org.opencontainers.image.title`` and ``io.stellaops.export.id``. Call it after the export
    manifest is pushed and before ``dst.commit()``. Returns the referrer descriptors (as a
    referrers index lists them), in bundle layer order.
    """
    out: list[Descriptor] = []
    for f in bundle.files:
        if f.role == "signature":
            artifact_type = f.media_type  # DSSE envelopes; signatures/** files by their own type
        elif f.role == "provenance":
            artifact_type = _provenance_artifact_type(f)
        else:
            continue
        layer = Descriptor(
            media_type=f.media_type, digest=f.digest, size=f.size, annotations={mt.ANNOTATION_TITLE: f.path}
        )
        ann = {mt.ANNOTATION_TITLE: f.path, ANN_ID: bundle.manifest.export_id}
        _, desc = _push_referrer(dst, subject, artifact_type, layer, f.file, ann)
        out.append(
            Descriptor(
                media_type=desc.media_type,
                digest=desc.digest,
                size=desc.size,
                artifact_type=artifact_type,
                annotations=dict(sorted(ann.items())),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# discover


def list_referrers(
    target: ReadOnlyTarget, subject: Descriptor, artifact_type: str | None = None
) -> tuple[ReferrersSource, list[Descriptor]]:
    """The referrers of ``subject`` in ``target`` and where they were found."""
    from stella_oci.targets.registry import RegistryTarget

    if isinstance(target, RegistryTarget):
        data = target.client.get_referrers(target.repo, subject.digest, artifact_type)
        source: ReferrersSource
        if data is None:
            source = "fallback-tag"
            index = target.fallback_index(subject)
            found = list(index.manifests) if index else []
        else:
            source = "referrers-api"
            found = list(parse_index(data, f"{target.name} referrers of {subject.digest}").manifests)
    else:
        source = "oci-layout"
        found = target.referrers(subject)
    if artifact_type:  # a registry may ignore the filter (no OCI-Filters-Applied): filter here too
        found = [d for d in found if d.artifact_type == artifact_type]
    unique = {d.digest: d for d in found}
    return source, [unique[k] for k in sorted(unique)]


def discover(
    reference: str | Reference, *, artifact_type: str | None = None, run: RunOptions | None = None
) -> DiscoverResult:
    """List the referrers of the manifest ``reference`` names (referrers API, fallback tag,
    or OCI layout), optionally only those of ``artifact_type``."""
    run = run or RunOptions()
    if artifact_type is not None:
        check_artifact_type(artifact_type)
    ref = as_reference(reference)
    src = open_source(ref, run)
    try:
        subject = _resolve_subject(src, ref, "discover")
        source, found = list_referrers(src, subject, artifact_type)
    finally:
        src.close()
    return DiscoverResult(
        reference=f"{ref.base()}@{subject.digest}",
        subject=subject.digest,
        artifact_type=artifact_type,
        source=source,
        referrers=[ReferrerInfo.of(d) for d in found],
    )


__all__ = [
    "AttachResult",
    "DiscoverResult",
    "ReferrerInfo",
    "attach",
    "attach_bundle_signatures",
    "build_referrer_manifest",
    "discover",
    "list_referrers",
]
