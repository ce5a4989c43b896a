"""copy: a manifest graph from one target to another (registry, oci:, oci-archive:), verbatim.

Digests are unchanged (manifest bytes are never re-serialized), every blob is verified while it
streams, blobs the destination has are skipped, and referrers (signatures, provenance) come along.
"""

from __future__ import annotations

from stella_oci.oci.reference import Reference
from stella_oci.results import CopyResult
from stella_oci.verbs.common import (
    RunOptions,
    as_reference,
    engine_for,
    open_target,
    selector_of,
    transfer_stats,
)

DEFAULT_COPY_CONCURRENCY = 4


def copy(
    source: str | Reference,
    destination: str | Reference,
    *,
    referrers: bool = True,
    run: RunOptions | None = None,
) -> CopyResult:
    run = run or RunOptions()
    src_ref = as_reference(source)
    dst_ref = as_reference(destination)
    src = open_target(src_ref, run.transport, write=False)
    dst = open_target(dst_ref, run.transport, write=True)
    engine = engine_for(run, DEFAULT_COPY_CONCURRENCY)
    try:
        desc = src.resolve(selector_of(src_ref, "copy"))
        if src_ref.digest is None and src_ref.tag is None and dst_ref.tag is None:
            tags: list[str] = []
        else:
            tags = [t for t in [dst_ref.tag or src_ref.tag] if t]
        engine.copy_graph(src, dst, desc, tags=tags, referrers=referrers)
        dst.commit()
    except BaseException:
        dst.abort()
        raise
    finally:
        src.close()
        dst.close()
    return CopyResult(
        source=str(src_ref),
        destination=f"{dst_ref.base()}@{desc.digest}",
        digest=desc.digest,
        tags=tags,
        referrers=engine.stats.referrers,
        transfer=transfer_stats(engine),
    )
