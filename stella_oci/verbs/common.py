"""What the verbs share: opening sources and destinations (offline mode and mirrors applied in
one place), and turning layers and statistics into results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stella_oci.engine import CopyEngine, CopyStats, Progress
from stella_oci.errors import InvalidInputError, OfflineError
from stella_oci.oci.manifest import Descriptor
from stella_oci.oci.mirrors import apply_mirrors, mirror_candidates
from stella_oci.oci.reference import Reference, parse_reference
from stella_oci.results import LayerInfo, TransferStats
from stella_oci.targets.base import ReadOnlyTarget, Storage
from stella_oci.transport.options import TransportOptions


@dataclass
class RunOptions:
    """Options every verb understands (the CLI's common options)."""

    transport: TransportOptions = field(default_factory=TransportOptions)
    concurrency: int | None = None
    progress: Progress | None = None
    mirrors: dict[str, list[str]] = field(default_factory=dict)
    """Registry mirrors for reading (``SOURCE`` prefix -> ``MIRROR`` prefixes, tried in order)."""


def check_output_parent(output: Path, option: str) -> None:
    """The directory a file output goes into must exist (and be a directory): a typo in it
    is exit 2 naming that directory, before anything is read or written, never a directory
    tree made up on the fly nor an internal error at the end. ``option`` names the option
    (``--output``)."""
    parent = output.parent
    if parent.is_dir():
        return
    if parent.exists():
        raise InvalidInputError(
            f"{option} {output}: {parent} is not a directory", hint=f"give {option} a path in a directory"
        )
    raise InvalidInputError(
        f"{option} {output}: the directory {parent} does not exist",
        hint=f"create it first (mkdir -p {parent}), or give {option} a path in an existing directory",
    )


def as_reference(ref: str | Reference) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref)


def _refuse_offline(ref: Reference, transport: TransportOptions) -> None:
    if ref.transport == "registry" and transport.offline:
        raise OfflineError(
            f"{ref}: --offline is set and this would contact the registry {ref.registry}",
            hint="offline, read from an oci:DIR or oci-archive:FILE copy of the artifact",
        )


#: File names that promise a compressed archive, which an oci-archive is not.
_COMPRESSED_SUFFIXES = (".gz", ".tgz", ".zst", ".tzst", ".xz", ".txz", ".bz2", ".tbz2", ".zip")


def _refuse_compressed_name(path: Path) -> None:
    """``oci-archive:X.tar.gz`` as a destination: refused rather than writing a plain tar under a
    name that says gzip (every reader would then fail or, worse, mis-detect it)."""
    if path.name.lower().endswith(_COMPRESSED_SUFFIXES):
        plain = path.name
        for suffix in _COMPRESSED_SUFFIXES:
            if plain.lower().endswith(suffix):
                plain = plain[: -len(suffix)]
                break
        plain = plain if plain.lower().endswith(".tar") else plain + ".tar"
        raise InvalidInputError(
            f"oci-archive:{path}: an oci-archive is written as an uncompressed tar (its blobs are "
            "compressed already), but this name says it is compressed",
            hint=f"write oci-archive:{path.with_name(plain)} (compress it afterwards if you must, and "
            "decompress before reading it back)",
        )


def _open(ref: Reference, transport: TransportOptions, *, write: bool) -> Storage:
    if ref.transport == "oci":
        from stella_oci.targets.layout import OciLayoutTarget

        return OciLayoutTarget(Path(ref.path), create=write)
    if ref.transport == "oci-archive":
        from stella_oci.targets.archive import OciArchiveTarget

        if write:
            _refuse_compressed_name(Path(ref.path))

        return OciArchiveTarget(Path(ref.path), create=write)
    from stella_oci.targets.registry import RegistryTarget
    from stella_oci.transport.client import RegistryClient

    return RegistryTarget(RegistryClient(ref.api_host, transport), ref)


def source_reference(ref: Reference, run: RunOptions) -> Reference:
    """Where a read of ``ref`` really goes: the mirror that maps it, if any."""
    return apply_mirrors(ref, run.mirrors) if run.mirrors else ref


def open_source(ref: Reference, run: RunOptions) -> ReadOnlyTarget:
    """The target to read ``ref`` from: the one place that applies ``--offline`` (refused here,
    before any socket exists) and ``--registry-mirror`` (reads go to the mirror that maps the
    reference; with several mirrors, the first that answers). Every verb that reads opens its source here. Registry targets connect lazily."""
    _refuse_offline(ref, run.transport)
    candidates = mirror_candidates(ref, run.mirrors)
    if not candidates:
        return _open(ref, run.transport, write=False)
    for mirrored in candidates:
        _refuse_offline(mirrored, run.transport)
    from stella_oci.verbs.failover import mark_served_by, open_first_serving

    if len(candidates) == 1 or not ref.selector:
        return mark_served_by(_open(candidates[0], run.transport, write=False), candidates[0])
    # several mirrors: the first that resolves the reference serves (verbs/failover.py)
    return open_first_serving(candidates, ref.selector, lambda r: _open(r, run.transport, write=False))


def open_destination(ref: Reference, run: RunOptions) -> Storage:
    """The target to write ``ref`` to (never a mirror: mirrors are for reading). ``--offline``
    refuses a registry here. Call it before :func:`open_source` so that an offline copy to a
    registry fails before the source is read."""
    _refuse_offline(ref, run.transport)
    return _open(ref, run.transport, write=True)


def engine_for(run: RunOptions, default_concurrency: int) -> CopyEngine:
    return CopyEngine(concurrency=run.concurrency or default_concurrency, progress=run.progress)


_LAYER_INFO_FIELDS = {"path", "media_type", "digest", "size"}
"""The fields every :class:`LayerInfo` of :func:`layer_infos` is given: one set shared by all of
them (pydantic gives each instance its own, ~220 bytes; a frozen model never changes it, and a
copy gets its own)."""


def layer_infos(layers: Sequence[Descriptor]) -> list[LayerInfo]:
    """The result's ``layers``: built without validation (the values are a parsed, checked
    descriptor's), ~270 bytes each instead of ~490 (a 10,000-file result, issue 15)."""
    construct = LayerInfo.model_construct
    fields = _LAYER_INFO_FIELDS
    return [construct(fields, path=d.title, media_type=d.media_type, digest=d.digest, size=d.size) for d in layers]


def transfer_stats(s: CopyStats) -> TransferStats:
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
