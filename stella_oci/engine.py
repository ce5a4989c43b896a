"""The copy engine: move a manifest graph from any readable target to any writable one.

Blobs move in parallel through a bounded thread pool; every byte is verified against its
descriptor while it streams (:class:`~stella_oci.targets.verified.BlobReader`); blobs the
destination already has are skipped; manifests go after the blobs they point at, the root
last, so a reader never sees a manifest whose blobs are missing. Manifest bytes are copied
verbatim, never re-serialized. Tags are set after the root manifest is pushed (a destination
that can, a registry, stores the root under its first tag in one request). Referrers
(signatures, provenance) can be carried along.

Each call (:meth:`CopyEngine.copy_graph`, :meth:`CopyEngine.copy_blobs`) has its own
statistics and its own cancellation: the first failure cancels the sibling transfers of
that call (they stop at their next chunk) and is raised. A caller can pass its own
``cancel`` event (a signal handler sets it) to stop a call from outside.

:class:`CopyHooks` lets a verb check what it copies: ``before_blobs`` runs once the root
manifest is read and verified, before any of its blobs move (pull and verify run the
StellaOps checks there); ``after_blobs`` runs once every blob is in the destination, before
the root manifest is pushed.

push, pull, verify and copy are thin verbs over :class:`CopyEngine`.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from stella_oci.cancel import Cancellation
from stella_oci.errors import ManifestBlobsMissing, VerificationError, on_side
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import Descriptor, children, media_type_of
from stella_oci.targets.base import (
    ManifestMemory,
    PushOutcome,
    ReadOnlyTarget,
    TaggedManifestPusher,
    Target,
    UncheckedSource,
)
from stella_oci.targets.verified import BlobReader, CancelledTransfer, read_manifest

#: How deep referrers of referrers are followed.
MAX_REFERRER_DEPTH = 4
MAX_INDEX_DEPTH = 8
MANIFEST_BLOB_RETRIES = 4
"""Manifest PUTs again after ``MANIFEST_BLOB_UNKNOWN`` (re-checked, short jittered waits)."""
"""Image indexes (and manifests) nested deeper than this below the copied root are refused."""
SUBMIT_WINDOW_FACTOR = 2
"""Blob transfers submitted to the pool at once, per worker: enough to keep every worker busy,
few enough that memory does not grow with the number of blobs."""


class Progress(Protocol):
    """What the engine reports while it works (the CLI renders it with rich)."""

    def blob_started(self, desc: Descriptor) -> None: ...

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None: ...

    def blob_done(self, desc: Descriptor, how: PushOutcome) -> None: ...

    def add_total(self, nbytes: int, blobs: int = 0) -> None: ...


class NoProgress:
    def blob_started(self, desc: Descriptor) -> None:
        pass

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        pass

    def blob_done(self, desc: Descriptor, how: PushOutcome) -> None:
        pass

    def add_total(self, nbytes: int, blobs: int = 0) -> None:
        pass


class CopyHooks(Protocol):
    """Checks a verb runs around the copy of the root manifest's blobs."""

    def before_blobs(self, root: Descriptor, data: bytes) -> None:
        """The root manifest was read and verified; no blob moved yet. Raise to stop."""

    def after_blobs(self, root: Descriptor, data: bytes) -> None:
        """Every blob of the root is in the destination; the root manifest is not pushed yet."""


@dataclass
class CopyStats:
    """What one call moved."""

    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes_moved: int = 0
    manifests: int = 0
    referrers: int = 0
    copied_referrers: list[Descriptor] = field(default_factory=list)
    """The referrer manifests copied (as the source listed them)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, how: PushOutcome, size: int) -> None:
        with self._lock:
            if how is PushOutcome.EXISTS:
                self.skipped += 1
            elif how is PushOutcome.MOUNTED:
                self.mounted += 1
            else:
                self.uploaded += 1
                self.bytes_moved += size

    def count_manifest(self, desc: Descriptor, *, referrer: bool = False) -> None:
        with self._lock:
            self.manifests += 1
            if referrer:
                self.referrers += 1
                self.copied_referrers.append(desc)


def blob_name(desc: Descriptor) -> str:
    return f"blob {desc.short()}"


class CopyEngine:
    """Settings shared by the calls (concurrency, progress); the state is per call."""

    def __init__(self, *, concurrency: int = 3, progress: Progress | None = None) -> None:
        self.concurrency = max(1, concurrency)
        self.progress: Progress = progress or NoProgress()

    def _run(self, src: ReadOnlyTarget, dst: Target, cancel: Cancellation | None) -> _CopyRun:
        return _CopyRun(self, src, dst, cancel or Cancellation())

    def copy_blobs(
        self,
        src: ReadOnlyTarget,
        dst: Target,
        descs: Sequence[Descriptor],
        *,
        cancel: Cancellation | None = None,
    ) -> CopyStats:
        """Copy blobs in parallel (duplicates once); the first failure cancels the rest and is raised."""
        run = self._run(src, dst, cancel)
        run.copy_blobs(descs)
        return run.stats

    def copy_graph(
        self,
        src: ReadOnlyTarget,
        dst: Target,
        root: Descriptor,
        *,
        tags: Sequence[str] = (),
        referrers: bool = False,
        root_data: bytes | None = None,
        root_children: Sequence[Descriptor] | None = None,
        hooks: CopyHooks | None = None,
        cancel: Cancellation | None = None,
    ) -> CopyStats:
        """Copy the manifest (or index) ``root`` and everything below it, then tag the root.

        ``root_children``: the descriptors ``root_data`` points at (config and layers, in order),
        when the caller has parsed it already; else the engine parses it. A hook may set
        ``root_children`` in ``before_blobs`` (it parsed the same bytes). One parsed copy of a
        10,000-layer manifest instead of two."""
        run = self._run(src, dst, cancel)
        run.copy_graph(
            root, tags=tags, referrers=referrers, root_data=root_data, root_children=root_children, hooks=hooks
        )
        return run.stats


class _CopyRun:
    """One call of the engine: its source, destination, statistics and cancellation."""

    def __init__(self, engine: CopyEngine, src: ReadOnlyTarget, dst: Target, cancel: Cancellation) -> None:
        self.src = src
        self.dst = dst
        self.concurrency = engine.concurrency
        self.progress = engine.progress
        self.cancel = cancel
        self.stats = CopyStats()
        # (once: an isinstance against a runtime-checkable Protocol costs ~0.1 ms, per blob too much)
        self.unchecked: UncheckedSource | None = src if isinstance(src, UncheckedSource) else None

    # ------------------------------------------------------------------ blobs
    def copy_blob(self, desc: Descriptor) -> PushOutcome:
        """Copy one blob, verified while it streams."""
        self.cancel.check(blob_name(desc))
        unchecked = self.unchecked
        what, hint = (unchecked.blob_what(desc) if unchecked is not None else None) or (None, None)
        reader = BlobReader(
            self.src,
            desc,
            what=what,
            hint=hint,
            cancel=self.cancel,
            on_bytes=lambda n: self.progress.blob_advanced(desc, n),
        )
        self.progress.blob_started(desc)
        with on_side("destination"):
            how = PushOutcome(self.dst.push_blob(desc, reader.open))
        if how is PushOutcome.UPLOADED and not reader.finish_unread():
            # The destination holds the blob but did not read it all from us: only a store that
            # checks digests itself (a registry, which had it already or completed an upload
            # another push started) does that. Otherwise it was stored unverified.
            with on_side("destination"):
                present = self.dst.has_blob(desc)
            if not present:
                raise VerificationError(
                    f"{blob_name(desc)}: the destination stored it before it was verified", side="destination"
                )
            how = PushOutcome.EXISTS
        if unchecked is not None:  # not verified: the destination had it, our bytes were never read
            unchecked.confirm(desc, streamed=reader.verified)
        self.stats.count(how, desc.size)
        self.progress.blob_done(desc, how)
        return how

    def copy_blobs(self, descs: Sequence[Descriptor]) -> None:
        unique: dict[str, Descriptor] = {}
        for d in descs:
            unique.setdefault(d.digest, d)
        if not unique:
            return
        self.progress.add_total(sum(d.size for d in unique.values()), len(unique))
        if self.concurrency == 1 or len(unique) == 1:
            for d in unique.values():
                self.copy_blob(d)
            return
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="stella-oci-copy") as pool:
            failed, in_flight = self._submit_windowed(pool, iter(unique.values()))
            if failed:
                self.cancel.set()  # running transfers stop now (blocked reads are interrupted)
                for f in in_flight:
                    f.cancel()
                wait(in_flight)
                # the first real failure, not a sibling's CancelledTransfer
                real = [f for f in failed if not isinstance(f.exception(), CancelledTransfer)]
                (real or failed)[0].result()

    def _submit_windowed(
        self, pool: ThreadPoolExecutor, queue: Iterator[Descriptor]
    ) -> tuple[list[Future[PushOutcome]], set[Future[PushOutcome]]]:
        """Copy the blobs of ``queue`` in ``pool``, a bounded window of them submitted at a time
        (a future, with its condition and waiter, per blob of a 10,000-file manifest is megabytes
        held for nothing: issue 15). Stops at the first failure; returns the failed transfers
        (in submission order) and those still in flight."""
        window = self.concurrency * SUBMIT_WINDOW_FACTOR
        order: dict[Future[PushOutcome], int] = {}
        in_flight: set[Future[PushOutcome]] = set()
        try:
            while True:
                while len(in_flight) < window and (d := next(queue, None)) is not None:
                    f = pool.submit(self.copy_blob, d)  # (cancelled: it raises CancelledTransfer at once)
                    order[f] = len(order)
                    in_flight.add(f)
                if not in_flight:
                    return [], in_flight
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                failed = sorted((f for f in done if f.exception() is not None), key=order.__getitem__)
                if failed:
                    return failed, in_flight
                for f in done:
                    del order[f]  # (only the window's futures are kept)
        except BaseException:  # e.g. KeyboardInterrupt in wait(): stop the siblings too
            self.cancel.set()
            for f in in_flight:
                f.cancel()
            raise

    # ------------------------------------------------------------------ graphs
    def copy_graph(
        self,
        root: Descriptor,
        *,
        tags: Sequence[str],
        referrers: bool,
        root_data: bytes | None,
        hooks: CopyHooks | None,
        root_children: Sequence[Descriptor] | None = None,
    ) -> None:
        data = read_manifest(self.src, root) if root_data is None else root_data
        if hooks is not None:
            hooks.before_blobs(root, data)
            if root_children is None:
                root_children = getattr(hooks, "root_children", None)
        kids = list(root_children) if root_children is not None else None
        with on_side("destination"):
            present = self.dst.has_manifest(root)
        if present:
            # The whole graph is already there (a re-push, a repeated copy): only the tags move.
            blobs = kids if kids is not None else children(data, media_type_of(data, root.media_type))
            self.progress.add_total(sum(child.size for child in blobs), len(blobs))
            if isinstance(self.dst, ManifestMemory):
                self.dst.remember_manifest(root, data)  # (the tags need no GET of it)
            if isinstance(self.src, UncheckedSource):  # nothing is sent, but the tags must not
                for child in blobs:  # move to a manifest the local files contradict
                    self.src.confirm(child, streamed=False)
            for child in blobs:
                self.stats.count(PushOutcome.EXISTS, child.size)
                self.progress.blob_done(child, PushOutcome.EXISTS)
        else:
            # the root manifest goes straight under the first tag where the destination can
            # (a registry: PUT /manifests/<tag>, one round trip instead of digest + tag)
            first = tags[0] if tags and isinstance(self.dst, TaggedManifestPusher) else None
            self.copy_node(root, data, seen=set(), hooks=hooks, tag=first, kids=kids)
            tags = tags[1:] if first is not None else tags
        if tags and kids is None:
            kids = children(data, media_type_of(data, root.media_type))
        for tag in tags:  # (the registry checks the blobs again for each tag)
            self._while_blobs_missing(functools.partial(self.dst.tag, root, tag), kids or [])
        if referrers:
            self.copy_referrers(root)

    def copy_node(
        self,
        desc: Descriptor,
        data: bytes,
        seen: set[str],
        hooks: CopyHooks | None = None,
        depth: int = 0,
        referrer: bool = False,
        tag: str | None = None,
        kids: list[Descriptor] | None = None,
    ) -> None:
        """Copy the manifest ``desc`` (its ``data``) after everything below it; with ``tag``,
        the destination (a :class:`TaggedManifestPusher`) stores it under that tag directly."""
        if desc.digest in seen:
            return
        if depth > MAX_INDEX_DEPTH:
            raise VerificationError(
                f"manifest {desc.digest} from {self.src.name}: image indexes nested more than "
                f"{MAX_INDEX_DEPTH} levels deep",
                hint="real images nest one or two levels; this graph is damaged or hostile",
                details={"max_depth": MAX_INDEX_DEPTH},
                side="source",
            )
        seen.add(desc.digest)
        if kids is None:
            kids = children(data, media_type_of(data, desc.media_type))
        blobs = [k for k in kids if k.media_type not in mt.MANIFEST_MEDIA_TYPES]
        for child in kids:
            if child.media_type in mt.MANIFEST_MEDIA_TYPES:
                self.copy_node(child, read_manifest(self.src, child), seen, depth=depth + 1)
        self.copy_blobs(blobs)
        if hooks is not None:
            hooks.after_blobs(desc, data)
        self.push_manifest(desc, data, kids, tag=tag)
        self.stats.count_manifest(desc, referrer=referrer)

    def push_manifest(
        self, desc: Descriptor, data: bytes, kids: Sequence[Descriptor], *, tag: str | None = None
    ) -> None:
        """PUT the manifest; when the registry says blobs it names are missing, re-check them,
        copy what is missing and try again, at most :data:`MANIFEST_BLOB_RETRIES` more times
        after a short jittered wait.

        Why more than once: a push uploads small blobs without probing them first, and
        registry 2.8 rewrites a blob's repository link (truncate, then write) on every upload
        that completes, also of a blob it had. A concurrent push of a manifest sharing that
        blob can meet the empty link and hear ``MANIFEST_BLOB_UNKNOWN`` although nothing is
        missing; the window is short, so a wait and the same PUT again succeed
        (docs/transport.md, "Round trips"; tests/test_concurrent_push.py).

        With ``tag``, the manifest is stored under that tag in one step
        (:class:`TaggedManifestPusher`), else by digest."""
        dst = self.dst
        if tag is not None and isinstance(dst, TaggedManifestPusher):
            self._while_blobs_missing(lambda: dst.push_manifest_tagged(desc, data, tag), kids)
        else:
            self._while_blobs_missing(lambda: dst.push_manifest(desc, data), kids)

    def _while_blobs_missing(self, put: Callable[[], None], kids: Sequence[Descriptor]) -> None:
        """Run a manifest PUT (by digest, or under a tag: the registry checks the blobs each
        time); on ``ManifestBlobsMissing`` wait, copy again what is missing, and retry."""
        for attempt in range(MANIFEST_BLOB_RETRIES + 1):
            try:
                with on_side("destination"):
                    put()
                return
            except ManifestBlobsMissing:
                if attempt == MANIFEST_BLOB_RETRIES:
                    raise
            time.sleep(random.uniform(0.01, 0.05 * 2**attempt))
            self._recopy_missing(kids)

    def _recopy_missing(self, kids: Sequence[Descriptor]) -> None:
        """Copy again the children of a manifest the destination does not have (any more)."""
        for child in kids:
            if child.media_type in mt.MANIFEST_MEDIA_TYPES:
                with on_side("destination"):
                    present = self.dst.has_manifest(child)
                if not present:
                    self.copy_node(child, read_manifest(self.src, child), seen=set())
            else:
                with on_side("destination"):
                    present = self.dst.has_blob(child)
                if not present:
                    self.copy_blob(child)

    def copy_referrers(self, subject: Descriptor, depth: int = 0) -> None:
        """Copy every manifest that refers to ``subject`` (and, recursively, their referrers)."""
        if depth > MAX_REFERRER_DEPTH:
            return
        with on_side("source"):
            found = list(self.src.referrers(subject))
        for ref in found:
            data = read_manifest(self.src, ref)
            self.copy_node(ref, data, seen=set(), referrer=True)
            self.copy_referrers(ref, depth + 1)


__all__ = ["CancelledTransfer", "CopyEngine", "CopyHooks", "CopyStats", "NoProgress", "Progress"]
