"""push: validate a bundle, build its artifact, copy it to a registry or an OCI layout.

Everything that can be refused without reading the files is refused before the first byte
leaves: schema, sizes, paths, unlisted files, annotations, the reference and the tags. The
listed files' digests are checked once, while they upload (the copy engine's verifying reader,
against export.json's digest, before the final ``PUT ?digest=`` completes), and a file the
registry did not read (it had the blob) is hashed before the manifest is pushed: a wrong file
is exit 3 and leaves no manifest and no tag (tests/test_push_hash_once.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from stella_oci.errors import InvalidInputError, on_side
from stella_oci.export.annotations import ANN_MANIFEST_DIGEST, parse_user_annotations
from stella_oci.export.bundle import Bundle, open_bundle
from stella_oci.export.trivy import build_layout, trivy_profile
from stella_oci.oci.manifest import Descriptor
from stella_oci.oci.reference import Reference, check_tag, parse_reference
from stella_oci.results import PushResult, ReferrerInfo
from stella_oci.targets.bundle import BundleSource
from stella_oci.verbs.common import RunOptions, engine_for, layer_infos, open_destination, transfer_stats

DEFAULT_PUSH_CONCURRENCY = 5
SMALL_BLOBS_CONCURRENCY = 16
"""Transfers in flight when every blob is small (<= ``SMALL_BLOB``): a small blob costs round
trips, not bandwidth, so more of them overlap (as regclient and crane do); ``--concurrency``
still wins. Measured at 40 ms RTT with 300 x 32 KiB files: benchmarks/latency.py."""
SMALL_BLOB = 4 * 1024 * 1024


def push_concurrency(manifest: bytes | Sequence[Descriptor]) -> int:
    """The default concurrency for a manifest's blobs (its bytes, or its config and layers):
    more in flight when all are small."""
    import json

    if not isinstance(manifest, bytes):  # (parsed already: no second parse of a 2 MB manifest)
        return SMALL_BLOBS_CONCURRENCY if all(d.size <= SMALL_BLOB for d in manifest) else DEFAULT_PUSH_CONCURRENCY
    try:
        doc = json.loads(manifest)
        sizes = [int(d.get("size", 0)) for d in [doc.get("config") or {}, *(doc.get("layers") or [])]]
    except (ValueError, TypeError, AttributeError):
        return DEFAULT_PUSH_CONCURRENCY
    return SMALL_BLOBS_CONCURRENCY if sizes and max(sizes) <= SMALL_BLOB else DEFAULT_PUSH_CONCURRENCY


def push_reference(bundle: Bundle, reference: str | Reference | None) -> Reference:
    """The reference to push to: the one given, else export.json ``distribution.oci.reference``."""
    if reference is not None:
        return reference if isinstance(reference, Reference) else parse_reference(reference)
    dist = bundle.manifest.distribution
    oci = dist.oci if dist else None
    where = f"{bundle.root / 'export.json'} /distribution/oci"
    if oci is not None and oci.enabled is False:
        raise InvalidInputError(
            f"{where}/enabled is false: this export is not meant for OCI distribution",
            hint="give a reference explicitly to push it anyway",
        )
    ref = oci.reference if oci else None
    if not ref:
        raise InvalidInputError(
            "no reference given and export.json has no distribution.oci.reference",
            hint="stella-oci push BUNDLE REGISTRY/REPO[:TAG]",
        )
    try:
        return parse_reference(ref)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}/reference: {exc.message}") from None


def push(
    bundle: str | Path,
    reference: str | Reference | None = None,
    *,
    tags: str | Sequence[str] = (),
    annotations: Mapping[str, str] | Sequence[str] = (),
    provenance_ref: str | None = None,
    allow_unlisted: bool = False,
    attach_signatures: bool = False,
    run: RunOptions | None = None,
) -> PushResult:
    """Push an export bundle (directory or archive) and return where it went.

    ``tags`` (a tag, or several) are added to the reference's own tag; with neither, the tag
    is the exportId (``trivy:db`` / ``trivy:java-db``: ``2`` / ``1``, the tags Trivy asks for).
    ``annotations`` are a mapping ``{K: V}`` or ``K=V`` strings (the ``io.stellaops.`` prefix
    is reserved).
    ``attach_signatures`` also attaches the bundle's DSSE envelopes and provenance.json as
    OCI 1.1 referrers of the pushed manifest (they are layers either way).
    """
    run = run or RunOptions()
    user = parse_user_annotations(annotations)
    tags = [tags] if isinstance(tags, str) else list(tags)  # "v1" is one tag, not "v" and "1"
    for t in tags:
        check_tag(t)
    on_hashed = getattr(run.progress, "file_hashed", None)  # the CLI's progress shows the hashing
    # listed files are hashed once, while they upload (or, when the registry has them, by the
    # engine before the manifest is pushed): scan_directory's hash_contents
    with open_bundle(Path(bundle), allow_unlisted=allow_unlisted, on_hashed=on_hashed, hash_contents=False) as b:
        ref = push_reference(b, reference)
        layout = build_layout(b, user_annotations=user, provenance_ref=provenance_ref)
        artifact = layout.root
        if ref.digest and ref.digest != artifact.descriptor.digest:
            raise InvalidInputError(
                f"{ref}: the bundle's manifest digest is {artifact.descriptor.digest}, not {ref.digest}",
                hint="push to a tag; a digest in a push reference must equal what the bundle produces",
            )
        all_tags = list(dict.fromkeys([*([ref.tag] if ref.tag else []), *tags]))
        if not all_tags:
            trivy = trivy_profile(b.manifest)
            all_tags = [trivy.default_tag if trivy else check_tag(b.manifest.export_id)]
        dst = open_destination(ref, run)
        from stella_oci.targets.registry import (  # (not at import: start-up)
            SMALL_BLOB_NO_PROBE,
            RegistryTarget,
        )

        if isinstance(dst, RegistryTarget):
            # the engine HEADs the manifest first (present: nothing is uploaded); absent, a
            # bundle's small files are new as a rule: POST + PUT each, no HEAD (docs/transport.md)
            dst.probe_below = SMALL_BLOB_NO_PROBE
        engine = engine_for(run, push_concurrency(artifact.children))
        try:
            stats = engine.copy_graph(
                BundleSource(b, artifact),
                dst,
                artifact.descriptor,
                tags=all_tags,
                root_data=artifact.data,
                root_children=artifact.children,
            )
            attached: list[Descriptor] = []
            if layout.referrer is not None:  # Trivy layout: export.json and every file as a referrer
                ref_art = layout.referrer
                engine.copy_graph(
                    BundleSource(b, ref_art),
                    dst,
                    ref_art.descriptor,
                    root_data=ref_art.data,
                    root_children=ref_art.children,
                )
                attached.append(ref_art.descriptor)
            with on_side("destination"):
                if attach_signatures:  # the attach verb's code, imported only when asked (start-up)
                    from stella_oci.verbs.referrers import attach_bundle_signatures

                    attached += attach_bundle_signatures(dst, artifact.descriptor, b)
                dst.commit()
        except BaseException:
            dst.abort()
            raise
        finally:
            dst.close()
        digest = artifact.descriptor.digest
        annotations = artifact.annotations
        layers = artifact.manifest.layers
        export_id, profile, ignored = b.manifest.export_id, b.manifest.profile_label, b.ignored
        # released before the result's layers are built, the peak of a push (issue 15): the
        # bundle's file records, export.json's model, the manifest's bytes (also remembered by
        # the destination) and model
        del b, layout, artifact, dst, engine
    return PushResult(
        reference=f"{ref.base()}@{digest}",
        digest=digest,
        tags=all_tags,
        export_manifest_digest=annotations[ANN_MANIFEST_DIGEST],
        export_id=export_id,
        profile=profile,
        annotations=annotations,
        layers=layer_infos(layers),
        ignored=ignored,
        transfer=transfer_stats(stats),
        referrers=[ReferrerInfo.of(d) for d in attached],
    )
