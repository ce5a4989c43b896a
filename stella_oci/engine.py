"""The copy engine: move a manifest graph from any target to any other.

Blobs move in parallel through a bounded thread pool; every byte is verified against its
descriptor while it streams (:class:`~stella_oci.oci.digest.VerifyingStream`); blobs the
destination already has are skipped; manifests go after the blobs they point at, the root
last, so a reader never sees a manifest whose blobs are missing. Manifest bytes are copied
verbatim, never re-serialized. Referrers (signatures, provenance) can be carried along.

push, pull, verify and copy are thin verbs over :class:`CopyEngine`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from stella_oci.errors import StellaOciError, VerificationError, on_side, sided
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import VerifyingStream
from stella_oci.oci.manifest import Descriptor, check_digest_matches, children, media_type_of
from stella_oci.targets.base import Target

MAX_INDEX_DEPTH = 8
"""Image indexes (and manifests) nested deeper than this below the copied root are refused."""


class Progress(Protocol):
    """What the engine reports while it works (the CLI renders it with rich)."""

    def blob_started(self, desc: Descriptor) -> None: ...

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None: ...

    def blob_done(self, desc: Descriptor, how: str) -> None: ...

    def add_total(self, nbytes: int) -> None: ...


class NoProgress:
    def blob_started(self, desc: Descriptor) -> None:
        pass

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        pass

    def blob_done(self, desc: Descriptor, how: str) -> None:
        pass

    def add_total(self, nbytes: int) -> None:
        pass


@dataclass
class CopyStats:
    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes_moved: int = 0
    manifests: int = 0
    referrers: int = 0
    copied_referrers: list[Descriptor] = field(default_factory=list)
    """The referrer manifests copied (as the source listed them)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, how: str, size: int) -> None:
        with self._lock:
            if how == "exists":
                self.skipped += 1
            elif how == "mounted":
                self.mounted += 1
            else:
                self.uploaded += 1
                self.bytes_moved += size


def blob_name(desc: Descriptor) -> str:
    return f"blob {desc.short()}"


class CopyEngine:
    def __init__(self, *, concurrency: int = 3, progress: Progress | None = None) -> None:
        self.concurrency = max(1, concurrency)
        self.progress: Progress = progress or NoProgress()
        self.stats = CopyStats()
        self._cancel = threading.Event()

    # ------------------------------------------------------------------ blobs
    def copy_blob(self, src: Target, dst: Target, desc: Descriptor) -> str:
        """Copy one blob, verified while it streams; returns "exists", "mounted" or "uploaded"."""
        state = VerifyingStreamState(desc, self._cancel)

        @contextmanager
        def opener(offset: int) -> Iterator[Iterator[bytes]]:
            with sided("source", src.open_blob(desc, offset)) as chunks:
                yield state.stream(chunks, offset, src, self.progress)

        self.progress.blob_started(desc)
        with on_side("destination"):
            how = dst.push_blob(desc, opener)
        if how == "uploaded" and not state.finished:
            # The destination stopped reading at the stated size without exhausting the stream:
            # every byte it took was hashed, so finish the check now.
            if state.stream_obj is None or state.stream_obj.count != desc.size:
                raise VerificationError(
                    f"{blob_name(desc)}: the destination stored it before it was verified", side="destination"
                )
            with on_side("source"):
                state.stream_obj.finish()
        self.stats.count(how, desc.size)
        self.progress.blob_done(desc, how)
        return how

    def copy_blobs(self, src: Target, dst: Target, descs: Sequence[Descriptor]) -> None:
        """Copy blobs in parallel (duplicates once); the first failure cancels the rest and is raised."""
        unique: dict[str, Descriptor] = {}
        for d in descs:
            unique.setdefault(d.digest, d)
        if not unique:
            return
        self.progress.add_total(sum(d.size for d in unique.values()))
        if self.concurrency == 1 or len(unique) == 1:
            for d in unique.values():
                self.copy_blob(src, dst, d)
            return
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="stella-oci-copy") as pool:
            futures: list[Future[str]] = [pool.submit(self.copy_blob, src, dst, d) for d in unique.values()]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                self._cancel.set()  # running transfers stop at their next chunk
                for f in pending:
                    f.cancel()
                wait(pending)
                self._cancel.clear()
                failed[0].result()  # raises the first failure

    # ------------------------------------------------------------------ graphs
    def fetch_verified_manifest(self, src: Target, desc: Descriptor) -> bytes:
        with on_side("source"):
            data = src.fetch_manifest(desc)
            if len(data) != desc.size:
                raise VerificationError(
                    f"manifest {desc.digest} from {src.name}: {len(data)} bytes, the descriptor states {desc.size}"
                )
            check_digest_matches(data, desc.digest, f"manifest {desc.digest} from {src.name}")
        return data

    def copy_graph(
        self,
        src: Target,
        dst: Target,
        root: Descriptor,
        *,
        tags: Sequence[str] = (),
        referrers: bool = False,
        root_data: bytes | None = None,
    ) -> Descriptor:
        """Copy the manifest (or index) ``root`` and everything below it; tag the root."""
        data = root_data if root_data is not None else self.fetch_verified_manifest(src, root)
        with on_side("destination"):
            present = dst.has_manifest(root)
        if present:
            # The whole graph is already there (a re-push, a repeated copy): only the tags move.
            blobs = children(data, media_type_of(data, root.media_type))
            self.progress.add_total(sum(child.size for child in blobs))
            for child in blobs:
                self.stats.count("exists", child.size)
                self.progress.blob_done(child, "exists")
            with on_side("destination"):
                dst.push_manifest(root, data, tags)
        else:
            self._copy_node(src, dst, root, data, tags, seen=set())
        if referrers:
            self.copy_referrers(src, dst, root)
        return root

    def _copy_node(
        self,
        src: Target,
        dst: Target,
        desc: Descriptor,
        data: bytes,
        tags: Sequence[str],
        seen: set[str],
        depth: int = 0,
    ) -> None:
        if desc.digest in seen:
            return
        if depth > MAX_INDEX_DEPTH:
            raise VerificationError(
                f"manifest {desc.digest} from {src.name}: image indexes nested more than "
                f"{MAX_INDEX_DEPTH} levels deep",
                hint="real images nest one or two levels; this graph is damaged or hostile",
                details={"max_depth": MAX_INDEX_DEPTH},
            )
        seen.add(desc.digest)
        media_type = media_type_of(data, desc.media_type)
        kids = children(data, media_type)
        blobs = [k for k in kids if k.media_type not in mt.MANIFEST_MEDIA_TYPES]
        manifests = [k for k in kids if k.media_type in mt.MANIFEST_MEDIA_TYPES]
        for child in manifests:
            self._copy_node(src, dst, child, self.fetch_verified_manifest(src, child), (), seen, depth + 1)
        self.copy_blobs(src, dst, blobs)
        with on_side("destination"):
            dst.push_manifest(desc, data, tags)
        with self.stats._lock:
            self.stats.manifests += 1

    def copy_referrers(self, src: Target, dst: Target, subject: Descriptor, depth: int = 0) -> None:
        """Copy every manifest that refers to ``subject`` (and, recursively, their referrers)."""
        if depth > 4:
            return
        with on_side("source"):
            found = list(src.referrers(subject))
        for ref in found:
            data = self.fetch_verified_manifest(src, ref)
            self._copy_node(src, dst, ref, data, (), seen=set())
            with self.stats._lock:
                self.stats.referrers += 1
                self.stats.copied_referrers.append(ref)
            self.copy_referrers(src, dst, ref, depth + 1)


class VerifyingStreamState:
    """Verification state of one blob across re-opens (resumed transfers).

    The hash covers bytes from offset 0. When the destination resumes at an offset the state has
    not hashed up to, the missing prefix is re-read from the source and hashed (not sent).
    """

    def __init__(self, desc: Descriptor, cancel: threading.Event) -> None:
        self.desc = desc
        self.cancel = cancel
        self.stream_obj: VerifyingStream | None = None
        self.finished = False

    def stream(
        self, chunks: Iterator[bytes], offset: int, src: Target, progress: Progress
    ) -> Iterator[bytes]:
        with on_side("source"):
            yield from self._stream(chunks, offset, src, progress)

    def _stream(
        self, chunks: Iterator[bytes], offset: int, src: Target, progress: Progress
    ) -> Iterator[bytes]:
        desc = self.desc
        what = f"{blob_name(desc)} from {src.name}"
        if offset == 0 or self.stream_obj is None or self.stream_obj.count != offset:
            verifier = VerifyingStream(iter(()), desc.digest, desc.size, what)
            if offset:  # resumed where we have not hashed: hash the prefix again, without sending it
                with src.open_blob(desc, 0) as prefix:
                    for chunk in prefix:
                        verifier.feed(chunk[: offset - verifier.count])
                        if verifier.count >= offset:
                            break
            self.stream_obj = verifier
        verifier = self.stream_obj
        for chunk in chunks:
            if self.cancel.is_set():
                raise CancelledTransfer(f"{what}: cancelled because another transfer failed")
            if chunk:
                verifier.feed(chunk)
                progress.blob_advanced(desc, len(chunk))
                yield chunk
        verifier.finish()
        self.finished = True


class CancelledTransfer(StellaOciError):
    """A transfer stopped because a sibling failed (never the error reported to the user)."""
