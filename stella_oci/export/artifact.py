"""The StellaOps export as an OCI artifact: building its manifest and checking one read back.

:func:`build_manifest` turns a checked :class:`~stella_oci.export.bundle.Bundle` into the
manifest of CONTRACT section 2, deterministically. :func:`check_manifest_shape` and
:func:`check_layers_against_export` are the StellaOps checks of CONTRACT section 5 (steps 2,
3, 6, 7) that a pull or verify runs on what it read.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.annotations import (
    ARTIFACT_TYPE,
    EXPORT_MANIFEST_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
    compute_annotations,
)
from stella_oci.export.bundle import (
    DEFAULT_CONTENT_TYPE,
    EXPORT_JSON,
    PROVENANCE_JSON,
    Bundle,
    is_signature_file,
    signature_media_type,
)
from stella_oci.export.bundle import MAX_EXPORT_JSON_BYTES as MAX_EXPORT_JSON_BYTES  # one limit
from stella_oci.export.models import ContentEntry, ExportManifest
from stella_oci.export.paths import check_path_set, check_relative_path
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import sha256_digest
from stella_oci.oci.manifest import Descriptor, Manifest, canonical_json

EMPTY_CONFIG = Descriptor(
    media_type=mt.OCI_EMPTY,
    digest=mt.EMPTY_DIGEST,
    size=mt.EMPTY_SIZE,
    data=base64.b64encode(mt.EMPTY_JSON).decode(),
)


@dataclass(frozen=True)
class BuiltArtifact:
    manifest: Manifest
    data: bytes
    descriptor: Descriptor
    annotations: dict[str, str]

    @property
    def children(self) -> list[Descriptor]:
        """What ``data`` points at (config, then the layers), for the copy engine to reuse
        instead of parsing ``data`` again."""
        return [self.manifest.config, *self.manifest.layers]


def layer_descriptor(path: str, media_type: str, digest: str, size: int) -> Descriptor:
    return Descriptor(
        media_type=media_type, digest=digest, size=size, annotations={mt.ANNOTATION_TITLE: path}
    )


def encode_manifest(manifest: Manifest) -> tuple[bytes, Descriptor]:
    """:func:`~stella_oci.oci.manifest.encode` of a manifest, byte for byte, written a layer at a
    time: never a dict of every layer, its JSON text and its bytes at once (three copies of a
    10,000-layer manifest at the peak of a push, issue 15)."""
    top = manifest.model_dump(by_alias=True, exclude_none=True, exclude={"layers"})
    top["layers"] = []
    head = canonical_json(top)
    # the one '"layers":[]' outside a string: keys are sorted, and the members before it
    # ("annotations", "artifactType", "config") hold strings, where a quote is escaped
    cut = head.index(b'"layers":[]') + len(b'"layers":[')
    out = io.BytesIO()
    out.write(head[:cut])
    for n, layer in enumerate(manifest.layers):
        if n:
            out.write(b",")
        out.write(canonical_json(layer.to_dict()))
    out.write(head[cut:])
    data = out.getvalue()
    media_type = manifest.media_type or mt.OCI_MANIFEST
    return data, Descriptor(media_type=media_type, digest=sha256_digest(data), size=len(data))


def build_manifest(
    bundle: Bundle, *, user_annotations: Mapping[str, str], provenance_ref: str | None
) -> BuiltArtifact:
    prov = bundle.provenance
    annotations = compute_annotations(
        bundle.manifest,
        provenance_digest=prov.digest if prov else None,
        provenance_ref=provenance_ref,
        user=user_annotations,
    )
    layers = [layer_descriptor(f.path, f.media_type, f.digest, f.size) for f in bundle.files]
    manifest = Manifest(
        schema_version=2,
        media_type=mt.OCI_MANIFEST,
        artifact_type=ARTIFACT_TYPE,
        config=EMPTY_CONFIG,
        layers=layers,
        annotations=dict(sorted(annotations.items())),
    )
    data, desc = encode_manifest(manifest)
    if len(data) > mt.MAX_MANIFEST_BYTES:
        raise InvalidInputError(
            f"{bundle.root}: the manifest for {len(layers)} layers is {len(data)} bytes, more than the "
            f"{mt.MAX_MANIFEST_BYTES} bytes (4 MiB) registries accept",
            hint="split the export into several bundles, or use fewer or shorter --annotation values",
        )
    return BuiltArtifact(manifest=manifest, data=data, descriptor=desc, annotations=annotations)


def check_manifest_shape(manifest: Manifest, where: str) -> Descriptor:
    """CONTRACT section 5 step 2 and the first layer; returns the export.json layer."""
    if manifest.schema_version != 2:
        raise VerificationError(f"{where}: schemaVersion is {manifest.schema_version}, expected 2")
    if manifest.media_type != mt.OCI_MANIFEST:
        raise VerificationError(
            f"{where}: mediaType is {manifest.media_type!r}, expected {mt.OCI_MANIFEST!r}"
        )
    if manifest.artifact_type != ARTIFACT_TYPE:
        raise VerificationError(
            f"{where}: artifactType is {manifest.artifact_type!r}, expected {ARTIFACT_TYPE!r}",
            hint="this reference does not hold a StellaOps export",
        )
    cfg = manifest.config
    if (cfg.media_type, cfg.digest, cfg.size) != (mt.OCI_EMPTY, mt.EMPTY_DIGEST, mt.EMPTY_SIZE):
        raise VerificationError(
            f"{where}: config is {cfg.media_type} {cfg.digest} ({cfg.size} bytes), expected the OCI empty "
            f"descriptor {mt.OCI_EMPTY} {mt.EMPTY_DIGEST} (2 bytes)"
        )
    if cfg.data is not None and cfg.data != EMPTY_CONFIG.data:
        raise VerificationError(
            f"{where}: config data is {cfg.data!r}, expected {EMPTY_CONFIG.data!r} ({{}})"
        )
    if not manifest.layers:
        raise VerificationError(f"{where}: no layers; the first layer must be export.json")
    first = manifest.layers[0]
    if first.title != EXPORT_JSON or first.media_type != EXPORT_MANIFEST_MEDIA_TYPE:
        raise VerificationError(
            f"{where}: layer 0 is {first.title!r} ({first.media_type}), expected export.json "
            f"({EXPORT_MANIFEST_MEDIA_TYPE})"
        )
    return first


def check_layers_against_export(manifest: Manifest, export: ExportManifest, where: str) -> list[Descriptor]:
    """CONTRACT section 5 steps 6 and 7: the layers are exactly export.json, its contents sorted by
    path (digest, size, media type and title equal to the contents entry), then provenance.json and
    DSSE envelopes. Returns the layers after export.json."""
    contents = sorted(export.contents, key=lambda e: e.path)
    layers = manifest.layers[1:]
    for i, layer in enumerate(layers):
        if layer.title is None:
            raise VerificationError(f"{where}: layer {i + 1} ({layer.digest}) has no {mt.ANNOTATION_TITLE}")
        check_relative_path(layer.title, where=f"{where}: layer {i + 1} title", error=VerificationError)
    _check_content_layers(layers, contents, where)
    titles = [layer.title or "" for layer in manifest.layers]
    if len(set(titles)) != len(titles):
        dup = sorted({t for t in titles if titles.count(t) > 1})
        raise VerificationError(f"{where}: layer titles appear more than once: {dup}")
    # titles a pull writes as files: no case/normalization twins, no file that is also a directory
    check_path_set(
        ((t, f"{where}: layer {i} title") for i, t in enumerate(titles)), error=VerificationError
    )
    _check_extra_layers(layers[len(contents) :], len(contents), where)
    return layers


def _check_content_layers(layers: list[Descriptor], contents: list[ContentEntry], where: str) -> None:
    """Layer i + 1 is contents entry i (sorted by path): title, digest, size and media type."""
    for i, entry in enumerate(contents):
        if i >= len(layers):
            raise VerificationError(
                f"{where}: export.json lists {entry.path!r}, but the artifact has no layer for it"
            )
        layer = layers[i]
        expected_type = entry.content_type or DEFAULT_CONTENT_TYPE
        found = (layer.title, layer.digest, layer.size, layer.media_type)
        wanted = (entry.path, entry.digest, entry.bytes, expected_type)
        if found != wanted:
            raise VerificationError(
                f"{where}: layer {i + 1} is {layer.title!r} {layer.digest} ({layer.size} bytes, {layer.media_type}); "
                f"export.json contents expects {entry.path!r} {entry.digest} ({entry.bytes} bytes, "
                f"{expected_type})"
            )


def _check_extra_layers(extras: list[Descriptor], listed: int, where: str) -> None:
    """After the contents: provenance.json first (optional), then the signature files (DSSE
    envelopes, ``signatures/**``) in path order, each with the media type its name gives."""
    last_sig = ""
    for j, layer in enumerate(extras):
        n = listed + j + 1
        title = layer.title or ""
        if title == PROVENANCE_JSON and layer.media_type == IN_TOTO_MEDIA_TYPE and j == 0:
            continue
        if is_signature_file(title) and layer.media_type == signature_media_type(title):
            if title <= last_sig:
                raise VerificationError(f"{where}: layer {n} signature file {title!r} is out of order")
            last_sig = title
            continue
        raise VerificationError(
            f"{where}: layer {n} {title!r} ({layer.media_type}) is not listed in export.json and is neither "
            "provenance.json nor a signature file (*.dsse.json, signatures/**) with its media type"
        )


def provenance_layer(manifest: Manifest) -> Descriptor | None:
    return next(
        (d for d in manifest.layers if d.title == PROVENANCE_JSON and d.media_type == IN_TOTO_MEDIA_TYPE),
        None,
    )
