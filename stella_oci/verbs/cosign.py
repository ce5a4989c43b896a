"""cosign's tag-scheme signatures, attestations and SBOMs, carried by ``copy``.

cosign (and ghcr.io today) keeps what it attaches to ``REPO@sha256:<hex>`` not as OCI 1.1
referrers but as manifests tagged ``sha256-<hex>.sig`` (signatures), ``.att`` (attestations)
and ``.sbom`` (SBOMs) in the same repository. ``copy`` brings those tags along, as Hauler and
regsync do: for each suffix, when the source has the tag, its manifest graph is copied (every
blob verified while it streams) and tagged the same in the destination. ``--no-signatures``
leaves them.
"""

from __future__ import annotations

from stella_oci.engine import CopyEngine, CopyStats
from stella_oci.errors import NotFoundError, on_side
from stella_oci.oci.manifest import Descriptor
from stella_oci.results import CosignTagInfo
from stella_oci.targets.base import ReadOnlyTarget, Target

#: The tag suffixes cosign writes next to an artifact (``cosign triangulate --type``).
COSIGN_SUFFIXES = ("sig", "att", "sbom")


def cosign_tag(subject: Descriptor, suffix: str) -> str:
    """``sha256-<hex>.<suffix>``: the tag cosign puts its ``suffix`` manifest under."""
    algo, hexd = subject.digest.split(":", 1)
    return f"{algo}-{hexd}.{suffix}"


def copy_cosign_tags(
    engine: CopyEngine, src: ReadOnlyTarget, dst: Target, subject: Descriptor
) -> tuple[list[CosignTagInfo], list[CopyStats]]:
    """Copy the cosign tags of ``subject`` that ``src`` has; returns what was copied (in suffix
    order) and the engine statistics of each copy."""
    copied: list[CosignTagInfo] = []
    stats: list[CopyStats] = []
    for suffix in COSIGN_SUFFIXES:
        tag = cosign_tag(subject, suffix)
        try:
            with on_side("source"):
                desc = src.resolve(tag)
        except NotFoundError:
            continue
        stats.append(engine.copy_graph(src, dst, desc, tags=[tag]))
        copied.append(CosignTagInfo(tag=tag, digest=desc.digest, media_type=desc.media_type))
    return copied, stats


__all__ = ["COSIGN_SUFFIXES", "CosignTagInfo", "copy_cosign_tags", "cosign_tag"]
