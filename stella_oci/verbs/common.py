"""What the verbs share: opening a target for a reference, and turning layers into results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stella_oci.engine import CopyEngine, Progress
from stella_oci.errors import InvalidInputError, OfflineError
from stella_oci.oci.manifest import Descriptor
from stella_oci.oci.mirrors import apply_mirrors
from stella_oci.oci.reference import Reference, parse_reference
from stella_oci.results import LayerInfo, TransferStats
from stella_oci.targets.base import Target
from stella_oci.transport.options import TransportOptions


@dataclass
class RunOptions:
    """Options every verb understands (the CLI's common options)."""

    transport: TransportOptions = field(default_factory=TransportOptions)
    concurrency: int | None = None
    progress: Progress | None = None
    mirrors: dict[str, str] = field(default_factory=dict)
    """Registry mirrors for reading (``SOURCE`` prefix -> ``MIRROR`` prefix)."""


def as_reference(ref: str | Reference) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref)


def open_target(
    ref: Reference, transport: TransportOptions, *, write: bool, mirrors: Mapping[str, str] | None = None
) -> Target:
    """The target a reference names. Registry targets are opened lazily: no connection yet.

    With ``--offline`` a registry reference is refused here, before any socket exists. Reads
    (``write=False``) go to a mirror when one maps the reference.
    """
    if ref.transport == "registry" and transport.offline:
        raise OfflineError(
            f"{ref}: --offline is set and this would contact the registry {ref.registry}",
            hint="offline, read from an oci:DIR or oci-archive:FILE copy of the artifact",
        )
    if mirrors and not write:
        ref = apply_mirrors(ref, mirrors)
    if ref.transport == "oci":
        from stella_oci.targets.layout import OciLayoutTarget

        return OciLayoutTarget(Path(ref.path), create=write)
    if ref.transport == "oci-archive":
        from stella_oci.targets.archive import OciArchiveTarget

        return OciArchiveTarget(Path(ref.path), create=write)
    from stella_oci.targets.registry import RegistryTarget
    from stella_oci.transport.client import RegistryClient

    return RegistryTarget(RegistryClient(ref.api_host, transport), ref)


def engine_for(run: RunOptions, default_concurrency: int) -> CopyEngine:
    return CopyEngine(concurrency=run.concurrency or default_concurrency, progress=run.progress)


def layer_infos(layers: Sequence[Descriptor]) -> list[LayerInfo]:
    return [LayerInfo(path=d.title, media_type=d.media_type, digest=d.digest, size=d.size) for d in layers]


def transfer_stats(engine: CopyEngine) -> TransferStats:
    s = engine.stats
    return TransferStats(uploaded=s.uploaded, skipped=s.skipped, mounted=s.mounted, bytes=s.bytes_moved)


def selector_of(ref: Reference, what: str) -> str:
    sel = ref.selector
    if sel:
        return sel
    if ref.transport != "registry":
        return ""
    raise InvalidInputError(
        f"{what} {ref}: give a tag or a digest, e.g. {ref}:<tag> or {ref}@sha256:<digest>"
    )
