"""copy: a manifest graph from one target to another (registry, oci:, oci-archive:), verbatim.

Digests are unchanged (manifest bytes are never re-serialized), every blob is verified while it
streams, blobs the destination has are skipped, and referrers (signatures, provenance) come
along. When the artifact is a StellaOps export, the checks of ``verify`` run first (manifest,
annotations, export.json, layers), then the air-gap checks; a copy into a registry or an
``oci:`` directory is an import and is recorded in the ledger.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from stella_oci import interrupts
from stella_oci.errors import on_side
from stella_oci.export.annotations import ARTIFACT_TYPE
from stella_oci.export.trivy import is_trivy_manifest
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import Manifest, parse_manifest
from stella_oci.oci.reference import Reference
from stella_oci.results import CopyResult, ReferrerInfo
from stella_oci.targets.base import ReadOnlyTarget
from stella_oci.targets.verified import read_manifest
from stella_oci.verbs.airgap import AirgapCheck, AirgapOptions
from stella_oci.verbs.common import (
    RunOptions,
    as_reference,
    engine_for,
    open_destination,
    open_source,
    selector_of,
    transfer_stats,
)
from stella_oci.verbs.cosign import copy_cosign_tags
from stella_oci.verbs.failover import served_by
from stella_oci.verbs.pull import ExtraCheck, fetch_export, run_checks

DEFAULT_COPY_CONCURRENCY = 4


def is_export_manifest(manifest: Manifest) -> bool:
    """A StellaOps export: the generic layout, or a Trivy-layout one (checked through its referrer)."""
    return manifest.artifact_type == ARTIFACT_TYPE or is_trivy_manifest(manifest)


def copy(
    source: str | Reference,
    destination: str | Reference,
    *,
    referrers: bool = True,
    signatures: bool = True,
    run: RunOptions | None = None,
    airgap: AirgapOptions | None = None,
    checks: tuple[ExtraCheck, ...] = (),
    source_target: ReadOnlyTarget | None = None,
) -> CopyResult:
    """Copy the artifact ``source`` names to ``destination`` (registry, ``oci:DIR``,
    ``oci-archive:FILE``), digests unchanged, every blob verified while it streams.

    A StellaOps export is checked as by :func:`verify` first; a copy into a registry or ``oci:``
    directory is an import (``airgap``: staleness, ledger). ``referrers``: OCI 1.1 referrers
    come along; ``signatures``: cosign's ``sha256-<hex>.sig/.att/.sbom`` tags too.
    ``source_target``: read from this target (closed at the end) instead of opening ``source``
    (``load`` passes an increment's archive backed by the destination)."""
    run = run or RunOptions()
    src_ref = as_reference(source)
    dst_ref = as_reference(destination)
    is_import = dst_ref.transport in ("registry", "oci")
    dst = open_destination(dst_ref, run)  # first: --offline refuses before reading
    try:
        src = source_target if source_target is not None else open_source(src_ref, run)
    except BaseException:
        dst.abort()
        dst.close()
        raise
    engine = engine_for(run, DEFAULT_COPY_CONCURRENCY)
    workdir = Path(tempfile.mkdtemp(prefix="stella-oci-copy-"))
    workdir_token = interrupts.track(workdir)
    gap: AirgapCheck | None = None
    fetched = None
    extra: dict[str, Any] = {}
    try:
        with on_side("source"):
            desc = src.resolve(selector_of(src_ref, "copy"))
        data = read_manifest(src, desc)
        if desc.media_type == mt.OCI_MANIFEST and is_export_manifest(parse_manifest(data)):
            pinned = src_ref.with_digest(desc.digest)
            fetched, _ = fetch_export(pinned, src, expect_digest=None, workdir=workdir)
            gap = (
                AirgapCheck(airgap or AirgapOptions(), is_import=is_import) if (airgap or is_import) else None
            )
            extra = run_checks([*([gap] if gap else []), *checks], fetched)
        tags = [t for t in [dst_ref.tag or src_ref.tag] if t]
        stats = engine.copy_graph(src, dst, desc, tags=tags, referrers=referrers, root_data=data)
        # cosign's sha256-<hex>.sig/.att/.sbom tags (verbs/cosign.py)
        cosign = copy_cosign_tags(engine, src, dst, desc)[0] if signatures else []
        with on_side("destination"):
            dst.commit()
    except BaseException:
        dst.abort()
        raise
    finally:
        served = served_by(src)
        src.close()
        dst.close()
        shutil.rmtree(workdir, ignore_errors=True)
        interrupts.untrack(workdir_token)
    result = CopyResult(
        source=str(src_ref),
        destination=f"{dst_ref.base()}@{desc.digest}",
        digest=desc.digest,
        tags=tags,
        referrers=[ReferrerInfo.of(d) for d in stats.copied_referrers],
        cosign_tags=cosign,
        transfer=transfer_stats(stats),
        staleness=extra.get("staleness"),
        clock=extra.get("clock"),
        provenance=extra.get("provenance"),
        served_by=served,
    )
    if gap is not None and fetched is not None and is_import:
        gap.record(fetched, extra.get("provenance"), reference=result.destination)
    return result
