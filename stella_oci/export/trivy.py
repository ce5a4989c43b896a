"""The Trivy-native layout for ``trivy:db`` and ``trivy:java-db`` exports (CONTRACT section 2).

Trivy reads its databases from an OCI registry with rules of its own (aquasecurity/trivy
``pkg/oci/artifact.go`` ``Artifact.Download``): the manifest must have exactly one layer, the
layer must carry ``org.opencontainers.image.title`` (the file name the blob is written to, then
unpacked by extension), and its media type must be the one the caller asks for
(``pkg/db/db.go`` ``dbMediaType``, ``pkg/javadb/client.go`` ``mediaType``). The published
ghcr.io/aquasecurity/trivy-db manifest has the config media type
``application/vnd.aquasec.trivy.config.v1+json`` with the empty ``{}`` blob.

So such an export is pushed as two manifests:

* the **Trivy manifest** (what the tag names, what Trivy reads): Trivy's config, one layer -
  the DB archive listed in export.json ``contents`` - with Trivy's media type and the archive's
  file name as title, and the ``io.stellaops.*`` annotations;
* the **export referrer**: the generic StellaOps manifest of the bundle (export.json, every
  contents entry including the DB archive - the same blob, uploaded once -, provenance.json,
  DSSE envelopes, ``signatures/**``) with ``subject`` = the Trivy manifest, artifactType
  ``application/vnd.stellaops.export.v1+json`` and the same annotations. It is found through
  the referrers API or the ``sha256-<hex>`` fallback tag.

A pull or verify resolves the tag to the Trivy manifest, finds the export referrer, makes every
check of CONTRACT section 5 on it, and checks that the Trivy manifest's single layer is the DB
archive export.json lists (digest, size, title) with Trivy's media type.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.annotations import ANN_MANIFEST_DIGEST, ARTIFACT_TYPE
from stella_oci.export.artifact import BuiltArtifact, build_manifest
from stella_oci.export.bundle import Bundle
from stella_oci.export.models import ContentEntry, ExportManifest
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import Descriptor, Manifest, encode

TRIVY_CONFIG_MEDIA_TYPE = "application/vnd.aquasec.trivy.config.v1+json"
TRIVY_DB_LAYER_MEDIA_TYPE = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
TRIVY_JAVA_DB_LAYER_MEDIA_TYPE = "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"

#: The extensions Trivy unpacks the downloaded layer by (go-getter decompressors, by file name).
TRIVY_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


@dataclass(frozen=True)
class TrivyProfile:
    label: str
    """``profile.kind:profile.variant``."""
    layer_media_type: str
    default_tag: str
    """The tag Trivy adds when the repository has none (DB schema version)."""
    archive_name: str
    """The title of the published layer (used to pick the archive when no contentType says it)."""


TRIVY_PROFILES: dict[str, TrivyProfile] = {
    "trivy:db": TrivyProfile("trivy:db", TRIVY_DB_LAYER_MEDIA_TYPE, "2", "db.tar.gz"),
    "trivy:java-db": TrivyProfile("trivy:java-db", TRIVY_JAVA_DB_LAYER_MEDIA_TYPE, "1", "javadb.tar.gz"),
}

TRIVY_CONFIG = Descriptor(media_type=TRIVY_CONFIG_MEDIA_TYPE, digest=mt.EMPTY_DIGEST, size=mt.EMPTY_SIZE)


def trivy_profile(export: ExportManifest) -> TrivyProfile | None:
    """The Trivy profile of an export (``trivy:db``, ``trivy:java-db``), else None."""
    return TRIVY_PROFILES.get(export.profile_label)


def is_trivy_manifest(manifest: Manifest) -> bool:
    """A manifest in Trivy's layout (its config media type says so)."""
    return manifest.config.media_type == TRIVY_CONFIG_MEDIA_TYPE


def db_archive(export: ExportManifest, profile: TrivyProfile, where: str) -> ContentEntry:
    """The one contents entry that is the DB archive: the entry whose ``contentType`` is Trivy's
    layer media type, else the one named like Trivy's published layer. Exactly one, else exit 2."""
    typed = [e for e in export.contents if e.content_type == profile.layer_media_type]
    named = [e for e in export.contents if posixpath.basename(e.path) == profile.archive_name]
    found = typed or named
    if len(found) != 1:
        listed = [e.path for e in found] or "none"
        raise InvalidInputError(
            f"{where}: a {profile.label} export becomes a Trivy artifact of exactly one layer, the DB "
            f"archive; export.json contents must list exactly one entry with contentType "
            f"{profile.layer_media_type!r} (or named {profile.archive_name!r}), found {listed}",
            hint=f"set contentType {profile.layer_media_type!r} on the one DB archive in contents",
            details={"profile": profile.label, "candidates": [e.path for e in found]},
        )
    entry = found[0]
    if not entry.path.endswith(TRIVY_ARCHIVE_SUFFIXES):
        raise InvalidInputError(
            f"{where}: the DB archive {entry.path!r} must be a .tar.gz: Trivy writes the layer under its "
            "title and unpacks it by that file name's extension",
            hint=f"name it like the published layer, {profile.archive_name!r}",
        )
    return entry


@dataclass(frozen=True)
class ExportLayout:
    """What a push writes: ``root`` (tagged) and, for Trivy profiles, the export referrer."""

    root: BuiltArtifact
    referrer: BuiltArtifact | None = None

    @property
    def export(self) -> BuiltArtifact:
        """The manifest that holds export.json and every bundle file."""
        return self.referrer or self.root


def build_layout(
    bundle: Bundle, *, user_annotations: Mapping[str, str], provenance_ref: str | None
) -> ExportLayout:
    """The generic artifact (CONTRACT section 2), or for ``trivy:*`` the Trivy manifest and its
    export referrer. Deterministic: same bundle, same digests."""
    generic = build_manifest(bundle, user_annotations=user_annotations, provenance_ref=provenance_ref)
    profile = trivy_profile(bundle.manifest)
    if profile is None:
        return ExportLayout(generic)
    entry = db_archive(bundle.manifest, profile, f"{bundle.root / 'export.json'}")
    layer = Descriptor(
        media_type=profile.layer_media_type,
        digest=entry.digest,
        size=entry.bytes,
        annotations={mt.ANNOTATION_TITLE: posixpath.basename(entry.path)},
    )
    root_manifest = Manifest(
        schema_version=2,
        media_type=mt.OCI_MANIFEST,
        config=TRIVY_CONFIG,
        layers=[layer],
        annotations=dict(generic.annotations),
    )
    root_data, root_desc = encode(root_manifest)
    root = BuiltArtifact(root_manifest, root_data, root_desc, generic.annotations)
    ref_manifest = generic.manifest.model_copy(
        update={"subject": Descriptor(media_type=root_desc.media_type, digest=root_desc.digest, size=root_desc.size)}
    )
    ref_data, ref_desc = encode(ref_manifest)
    ref_desc = ref_desc.model_copy(update={"artifact_type": ARTIFACT_TYPE, "annotations": dict(generic.annotations)})
    return ExportLayout(root, BuiltArtifact(ref_manifest, ref_data, ref_desc, generic.annotations))


def pick_export_referrer(found: list[Descriptor], root: Manifest, where: str) -> Descriptor:
    """The export referrer among a Trivy manifest's referrers: artifactType StellaOps export.
    Exactly one distinct candidate (a referrer whose descriptor annotations name another
    manifest-digest than the Trivy manifest's is not a candidate)."""
    want = (root.annotations or {}).get(ANN_MANIFEST_DIGEST)
    candidates = [
        d
        for d in found
        if d.artifact_type == ARTIFACT_TYPE
        and (d.annotations is None or ANN_MANIFEST_DIGEST not in d.annotations or d.annotations[ANN_MANIFEST_DIGEST] == want)
    ]
    unique = sorted({d.digest: d for d in candidates}.values(), key=lambda d: d.digest)
    if not unique:
        raise VerificationError(
            f"{where}: a Trivy-layout artifact without its StellaOps export referrer (artifactType "
            f"{ARTIFACT_TYPE}); export.json cannot be checked",
            hint="copy it with its referrers (stella-oci copy carries them; do not pass --no-referrers)",
        )
    if len(unique) > 1:
        raise VerificationError(
            f"{where}: {len(unique)} different StellaOps export referrers claim this Trivy artifact: "
            f"{[d.digest for d in unique]}",
            hint="delete the referrer that was not pushed by stella-oci push",
        )
    return unique[0]


def check_trivy_root(root: Manifest, export_manifest: Manifest, export: ExportManifest, subject: Descriptor, where: str) -> None:
    """The Trivy manifest against export.json and its export referrer (exit 3 on any difference):
    Trivy's config, exactly one layer - the DB archive of contents (digest, size, title) with the
    profile's layer media type -, the export referrer's subject is this manifest, and the
    annotations of both manifests are the same."""
    profile = trivy_profile(export)
    if profile is None:
        raise VerificationError(
            f"{where}: a Trivy-layout artifact whose export.json profile is {export.profile_label!r}, "
            f"not one of {sorted(TRIVY_PROFILES)}"
        )
    cfg = root.config
    if (cfg.media_type, cfg.digest, cfg.size) != (TRIVY_CONFIG_MEDIA_TYPE, mt.EMPTY_DIGEST, mt.EMPTY_SIZE):
        raise VerificationError(
            f"{where}: config is {cfg.media_type} {cfg.digest} ({cfg.size} bytes), expected "
            f"{TRIVY_CONFIG_MEDIA_TYPE} {mt.EMPTY_DIGEST} (2 bytes)"
        )
    if root.media_type != mt.OCI_MANIFEST or root.schema_version != 2:
        raise VerificationError(f"{where}: mediaType {root.media_type!r}, expected {mt.OCI_MANIFEST!r}")
    if len(root.layers) != 1:
        raise VerificationError(f"{where}: {len(root.layers)} layers; Trivy reads exactly one (the DB archive)")
    try:
        entry = db_archive(export, profile, f"{where} export.json")
    except InvalidInputError as exc:
        raise VerificationError(exc.message, hint=exc.hint) from None
    layer = root.layers[0]
    found = (layer.title, layer.digest, layer.size, layer.media_type)
    wanted = (posixpath.basename(entry.path), entry.digest, entry.bytes, profile.layer_media_type)
    if found != wanted:
        raise VerificationError(
            f"{where}: the Trivy layer is {layer.title!r} {layer.digest} ({layer.size} bytes, {layer.media_type}); "
            f"export.json contents expects {wanted[0]!r} {entry.digest} ({entry.bytes} bytes, {wanted[3]})"
        )
    sub = export_manifest.subject
    if sub is None or sub.digest != subject.digest:
        raise VerificationError(
            f"{where}: the export referrer's subject is {sub.digest if sub else None}, not this manifest"
        )
    if (export_manifest.annotations or {}) != (root.annotations or {}):
        raise VerificationError(
            f"{where}: the annotations of the Trivy manifest and of its export referrer differ",
            details={"trivy": root.annotations, "referrer": export_manifest.annotations},
        )


__all__ = [
    "TRIVY_CONFIG_MEDIA_TYPE",
    "TRIVY_DB_LAYER_MEDIA_TYPE",
    "TRIVY_JAVA_DB_LAYER_MEDIA_TYPE",
    "TRIVY_PROFILES",
    "ExportLayout",
    "TrivyProfile",
    "build_layout",
    "check_trivy_root",
    "db_archive",
    "is_trivy_manifest",
    "pick_export_referrer",
    "trivy_profile",
]
