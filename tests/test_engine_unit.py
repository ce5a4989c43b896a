"""The copy engine and the verifying reader (targets/verified.py) on in-memory targets: what is
copied, in which order, what is refused and which side is blamed. No registry, no threads left
behind; ``scripts/mutation.sh`` uses this file for engine.py and targets/verified.py (the
registry-backed behaviour is covered by tests/test_engine_streaming.py and the e2e tests)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stella_oci.cancel import Cancellation
from stella_oci.engine import MAX_INDEX_DEPTH, MAX_REFERRER_DEPTH, CopyEngine, CopyStats, blob_name
from stella_oci.errors import ManifestBlobsMissing, StellaOciError, VerificationError
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import Descriptor
from stella_oci.targets.base import BlobOpener, ProgressFn, PushOutcome
from stella_oci.targets.verified import (
    BlobReader,
    CancelledTransfer,
    check_manifest_bytes,
    check_size,
    read_blob,
    read_manifest,
    write_blob,
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_desc(data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
    return Descriptor(media_type=media_type, digest=sha(data), size=len(data))


def manifest_bytes(layers: list[Descriptor], subject: Descriptor | None = None) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2},
        "layers": [d.to_dict() for d in layers],
    }
    if subject is not None:
        doc["subject"] = subject.to_dict()
    return json.dumps(doc, sort_keys=True).encode()


def index_bytes(manifests: list[Descriptor]) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [d.to_dict() for d in manifests]}
    return json.dumps(doc, sort_keys=True).encode()


class Source:
    """A readable in-memory target; ``corrupt`` serves other bytes for a digest, ``fail`` raises."""

    name = "mem:src"

    def __init__(self, chunk: int = 3) -> None:
        self.blobs: dict[str, bytes] = {mt.EMPTY_DIGEST: mt.EMPTY_JSON}
        self.manifests: dict[str, bytes] = {}
        self.refs: dict[str, list[Descriptor]] = {}
        self.chunk = chunk
        self.fail: dict[str, StellaOciError] = {}
        self.slow: set[str] = set()
        self.opens: list[tuple[str, int]] = []
        self.served = 0

    def add_blob(self, data: bytes) -> Descriptor:
        d = blob_desc(data)
        self.blobs[d.digest] = data
        return d

    def add_manifest(self, data: bytes, media_type: str = mt.OCI_MANIFEST) -> Descriptor:
        d = Descriptor(media_type=media_type, digest=sha(data), size=len(data))
        self.manifests[d.digest] = data
        return d

    def resolve(self, selector: str) -> Descriptor:
        raise NotImplementedError

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        return self.manifests[desc.digest]

    def referrers(self, subject: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        return list(self.refs.get(subject.digest, []))

    @contextmanager
    def open_blob(self, desc: Descriptor, offset: int = 0, cancel: Cancellation | None = None) -> Iterator[Iterator[bytes]]:
        self.opens.append((desc.digest, offset))
        if desc.digest in self.fail:
            raise self.fail[desc.digest]
        data = self.blobs[desc.digest][offset:]

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(data), self.chunk):
                if desc.digest in self.slow:
                    assert cancel is not None
                    cancel.wait(0.05)
                self.served += len(data[i : i + self.chunk])
                yield data[i : i + self.chunk]

        yield chunks()

    def close(self) -> None:
        pass


class Dest:
    """A writable in-memory target that reads every blob through the opener, like a file store."""

    name = "mem:dst"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {mt.EMPTY_DIGEST: mt.EMPTY_JSON}  # the config is there
        self.manifests: dict[str, bytes] = {}
        self.tags: dict[str, str] = {}
        self.events: list[str] = []
        self.missing_once: set[str] = set()
        self.refuse_manifest: StellaOciError | None = None
        self.lock = threading.Lock()
        self.resume_at: dict[str, int] = {}
        self.lazy = False
        self.threads: set[str] = set()
        self.fail_push: StellaOciError | None = None
        self.fail_has_blob: StellaOciError | None = None

    def has_blob(self, desc: Descriptor) -> bool:
        if self.fail_has_blob is not None:
            raise self.fail_has_blob
        return desc.digest in self.blobs

    def has_manifest(self, desc: Descriptor) -> bool:
        return desc.digest in self.manifests

    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> PushOutcome:
        self.threads.add(threading.current_thread().name)
        if self.fail_push is not None:
            raise self.fail_push
        if self.lazy:
            return PushOutcome.UPLOADED  # claims it stored the blob without reading it
        if desc.digest in self.blobs:
            return PushOutcome.EXISTS
        buf = bytearray()
        start = self.resume_at.get(desc.digest, 0)
        if start:
            # a resumed upload: the first try sent `start` bytes, then the connection was cut
            with opener(0) as chunks:
                for chunk in chunks:
                    buf += chunk
                    if len(buf) >= start:
                        break
            buf = buf[:start]
        with opener(len(buf)) as chunks:
            for chunk in chunks:
                buf += chunk
        with self.lock:
            self.blobs[desc.digest] = bytes(buf)
            self.events.append(f"blob {desc.digest[7:11]}")
        return PushOutcome.UPLOADED

    def push_manifest(self, desc: Descriptor, data: bytes) -> None:
        if self.refuse_manifest is not None:
            raise self.refuse_manifest
        if desc.digest in self.missing_once:
            self.missing_once.discard(desc.digest)
            raise ManifestBlobsMissing("blobs missing")
        for child in json.loads(data).get("layers", []):
            assert child["digest"] in self.blobs or child["digest"] == mt.EMPTY_DIGEST
        self.manifests[desc.digest] = data
        self.events.append(f"manifest {desc.digest[7:11]}")

    def tag(self, desc: Descriptor, tag: str) -> None:
        assert desc.digest in self.manifests
        self.tags[tag] = desc.digest
        self.events.append(f"tag {tag}")

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.advanced = 0
        self.done: list[tuple[str, PushOutcome]] = []
        self.total = 0
        self.blobs = 0

    def blob_started(self, desc: Descriptor) -> None:
        self.started.append(desc.digest)

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        self.advanced += nbytes

    def blob_done(self, desc: Descriptor, how: PushOutcome) -> None:
        self.done.append((desc.digest, how))

    def add_total(self, nbytes: int, blobs: int = 0) -> None:
        self.total += nbytes
        self.blobs += blobs


def artifact(src: Source, *payloads: bytes) -> tuple[Descriptor, list[Descriptor]]:
    layers = [src.add_blob(p) for p in payloads]
    return src.add_manifest(manifest_bytes(layers)), layers


# ----------------------------------------------------------------------------- the engine


@pytest.mark.parametrize("concurrency", [1, 3])
def test_copy_graph_moves_blobs_then_manifest_then_tags(concurrency: int) -> None:
    src, dst, progress = Source(), Dest(), Recorder()
    root, layers = artifact(src, b"alpha-bytes", b"beta", b"gamma-gamma")
    stats = CopyEngine(concurrency=concurrency, progress=progress).copy_graph(src, dst, root, tags=["v1", "latest"])
    assert dst.blobs == {d.digest: src.blobs[d.digest] for d in layers} | {mt.EMPTY_DIGEST: mt.EMPTY_JSON}
    assert dst.manifests == {root.digest: src.manifests[root.digest]}
    assert dst.tags == {"v1": root.digest, "latest": root.digest}
    assert dst.events[-3:] == [f"manifest {root.digest[7:11]}", "tag v1", "tag latest"]
    assert (stats.uploaded, stats.skipped, stats.mounted, stats.manifests, stats.referrers) == (3, 1, 0, 1, 0)
    assert stats.bytes_moved == sum(d.size for d in layers) == progress.advanced == progress.total - 2
    assert sorted(progress.started) == sorted([mt.EMPTY_DIGEST, *(d.digest for d in layers)])
    assert sorted(progress.done) == sorted(
        [(mt.EMPTY_DIGEST, PushOutcome.EXISTS), *((d.digest, PushOutcome.UPLOADED) for d in layers)]
    )


def test_duplicate_layers_move_once_and_present_blobs_are_skipped() -> None:
    src, dst = Source(), Dest()
    a, b = src.add_blob(b"aaaa"), src.add_blob(b"bbbbbb")
    root = src.add_manifest(manifest_bytes([a, b, a]))
    dst.blobs[b.digest] = b"bbbbbb"
    stats = CopyEngine(concurrency=2).copy_graph(src, dst, root)
    assert [op for op in src.opens] == [(a.digest, 0)]
    assert (stats.uploaded, stats.skipped, stats.bytes_moved) == (1, 2, 4)  # b and the config skipped
    assert CopyEngine().copy_blobs(src, dst, []).uploaded == 0


def test_present_root_moves_only_tags() -> None:
    src, dst, progress = Source(), Dest(), Recorder()
    root, layers = artifact(src, b"one", b"two")
    CopyEngine().copy_graph(src, dst, root)
    src.opens.clear()
    stats = CopyEngine(progress=progress).copy_graph(src, dst, root, tags=["again"])
    assert src.opens == [] and dst.tags == {"again": root.digest}
    assert (stats.skipped, stats.uploaded, stats.manifests) == (3, 0, 0)  # config + 2 layers
    assert progress.total == sum(d.size for d in layers) + 2
    assert {how for _, how in progress.done} == {PushOutcome.EXISTS}


def test_root_data_given_is_not_fetched_again() -> None:
    src, dst = Source(), Dest()
    root, _ = artifact(src, b"x")
    data = src.manifests.pop(root.digest)
    CopyEngine().copy_graph(src, dst, root, root_data=data)
    assert dst.manifests[root.digest] == data


def test_a_corrupt_blob_is_refused_and_blamed_on_the_source() -> None:
    src, dst = Source(), Dest()
    root, layers = artifact(src, b"good-bytes", b"these-are-the-bytes")
    src.blobs[layers[1].digest] = b"these-are-other-byte"[: layers[1].size]
    with pytest.raises(VerificationError) as info:
        CopyEngine(concurrency=1).copy_graph(src, dst, root, tags=["v1"])
    assert info.value.side == "source" and "content hashes to" in info.value.message
    assert layers[1].digest not in dst.blobs and dst.manifests == {} and dst.tags == {}


def test_a_short_or_long_blob_is_refused() -> None:
    src = Source()
    d = src.add_blob(b"123456")
    src.blobs[d.digest] = b"12345"
    with pytest.raises(VerificationError, match="got 5 bytes, the descriptor states 6"):
        CopyEngine().copy_blobs(src, Dest(), [d])
    src.blobs[d.digest] = b"1234567"
    with pytest.raises(VerificationError, match="more bytes than the 6"):
        CopyEngine().copy_blobs(src, Dest(), [d])


def test_first_failure_cancels_the_siblings_and_is_the_one_raised() -> None:
    src, dst = Source(chunk=1), Dest()
    slow = src.add_blob(b"s" * 2000)
    src.slow.add(slow.digest)
    bad = src.add_blob(b"bad")
    src.fail[bad.digest] = VerificationError("the real failure")
    with pytest.raises(VerificationError, match="the real failure") as info:
        CopyEngine(concurrency=2).copy_blobs(src, dst, [slow, bad])
    assert info.value.side == "source"  # failed opening the source, inside the destination's upload
    assert slow.digest not in dst.blobs  # stopped, not finished


def test_an_outside_cancel_stops_a_call() -> None:
    src, dst = Source(), Dest()
    root, _ = artifact(src, b"abc")
    cancel = Cancellation()
    cancel.set()
    with pytest.raises(CancelledTransfer):
        CopyEngine().copy_graph(src, dst, root, cancel=cancel)
    assert dst.blobs == {mt.EMPTY_DIGEST: mt.EMPTY_JSON} and dst.manifests == {}


def test_destination_failure_is_blamed_on_the_destination() -> None:
    src, dst = Source(), Dest()
    root, _ = artifact(src, b"abc")
    dst.refuse_manifest = VerificationError("PUT refused")
    with pytest.raises(VerificationError) as info:
        CopyEngine().copy_graph(src, dst, root)
    assert info.value.side == "destination"
    dst.fail_push = VerificationError("blob PUT refused")
    with pytest.raises(VerificationError, match="blob PUT refused") as info:
        CopyEngine().copy_graph(src, dst, root)
    assert info.value.side == "destination"
    dst.fail_push, dst.lazy, dst.fail_has_blob = None, True, VerificationError("HEAD failed")
    with pytest.raises(VerificationError, match="HEAD failed") as info:
        CopyEngine().copy_blobs(src, dst, [src.add_blob(b"lazy")])
    assert info.value.side == "destination"


def test_threads_follow_the_concurrency() -> None:
    """concurrency 1 or a single blob: in the calling thread; else in the engine's pool."""
    here = threading.current_thread().name
    for concurrency, n, expect_pool in [(1, 3, False), (3, 1, False), (3, 2, True), (3, 3, True), (2, 2, True)]:
        src, dst = Source(), Dest()
        descs = [src.add_blob(f"blob {i}".encode()) for i in range(n)]
        CopyEngine(concurrency=concurrency).copy_blobs(src, dst, descs)
        if expect_pool:
            assert dst.threads and all(t.startswith("stella-oci-copy") for t in dst.threads), (concurrency, n)
        else:
            assert dst.threads == {here}, (concurrency, n)
    assert CopyEngine().concurrency == 3  # the default (pull and verify pass their own)


def test_documented_depth_limits() -> None:
    assert (MAX_INDEX_DEPTH, MAX_REFERRER_DEPTH) == (8, 4)


def test_a_destination_that_stores_without_reading() -> None:
    src, dst = Source(), Dest()
    d = src.add_blob(b"never-read")
    dst.lazy = True
    with pytest.raises(VerificationError, match="stored it before it was verified") as info:
        CopyEngine().copy_blobs(src, dst, [d])
    assert info.value.side == "destination"
    # ... unless it really has the blob (a registry that completed another push's upload)
    dst.blobs[d.digest] = b"never-read"
    dst.lazy = True
    run = CopyEngine()._run(src, dst, None)
    assert run.copy_blob(d) is PushOutcome.EXISTS
    assert (run.stats.skipped, run.stats.uploaded) == (1, 0)


def test_an_empty_blob_is_verified_without_a_read() -> None:
    src, dst = Source(), Dest()
    empty = src.add_blob(b"")
    dst.lazy = True
    stats = CopyEngine().copy_blobs(src, dst, [empty])
    assert stats.uploaded == 1 and stats.bytes_moved == 0


def test_manifest_blobs_missing_recopies_and_retries_once() -> None:
    src, dst = Source(), Dest()
    root, layers = artifact(src, b"first", b"second")
    CopyEngine().copy_blobs(src, dst, layers)
    del dst.blobs[layers[0].digest]  # expired between the blob and the manifest PUT
    dst.missing_once.add(root.digest)
    CopyEngine().copy_graph(src, dst, root)
    assert dst.manifests == {root.digest: src.manifests[root.digest]}
    assert dst.blobs[layers[0].digest] == b"first"


def test_index_children_go_first_and_depth_is_bounded() -> None:
    src, dst = Source(), Dest()
    m1, _ = artifact(src, b"amd64-layer")
    m2, _ = artifact(src, b"arm64-layer")
    top = src.add_manifest(index_bytes([m1, m2]), mt.OCI_INDEX)
    stats = CopyEngine().copy_graph(src, dst, top, tags=["multi"])
    assert set(dst.manifests) == {m1.digest, m2.digest, top.digest}
    assert dst.events.index(f"manifest {top.digest[7:11]}") > dst.events.index(f"manifest {m1.digest[7:11]}")
    assert stats.manifests == 3
    # the same index listed twice below another is copied once
    twice = src.add_manifest(index_bytes([top, top]), mt.OCI_INDEX)
    assert CopyEngine().copy_graph(src, Dest(), twice).manifests == 4
    deep = top  # m1 and m2 one level below it
    for _ in range(MAX_INDEX_DEPTH - 1):
        deep = src.add_manifest(index_bytes([deep]), mt.OCI_INDEX)
    assert CopyEngine().copy_graph(src, Dest(), deep).manifests == MAX_INDEX_DEPTH + 2
    deeper = src.add_manifest(index_bytes([deep]), mt.OCI_INDEX)
    with pytest.raises(VerificationError, match=f"nested more than {MAX_INDEX_DEPTH} levels") as info:
        CopyEngine().copy_graph(src, Dest(), deeper)
    assert info.value.side == "source"


def test_referrers_come_along_to_a_bounded_depth() -> None:
    src, dst = Source(), Dest()
    root, _ = artifact(src, b"payload")
    chain = [root]
    for i in range(MAX_REFERRER_DEPTH + 3):
        sig = src.add_blob(f"signature {i}".encode())
        ref = src.add_manifest(manifest_bytes([sig], subject=chain[-1]))
        src.refs[chain[-1].digest] = [ref]
        chain.append(ref)
    stats = CopyEngine().copy_graph(src, dst, root, referrers=True)
    copied = [d for d in chain[1:] if d.digest in dst.manifests]
    assert copied == chain[1 : MAX_REFERRER_DEPTH + 2]
    assert stats.referrers == len(copied) == MAX_REFERRER_DEPTH + 1
    assert stats.copied_referrers == copied and stats.manifests == len(copied) + 1
    assert CopyEngine().copy_graph(src, Dest(), root).referrers == 0


def test_hooks_run_before_blobs_and_before_the_manifest() -> None:
    src, dst = Source(), Dest()
    root, layers = artifact(src, b"h1", b"h2")
    seen: list[str] = []

    class Hooks:
        def before_blobs(self, desc: Descriptor, data: bytes) -> None:
            assert desc == root and data == src.manifests[root.digest]
            seen.append(f"before:{len(dst.blobs)}")

        def after_blobs(self, desc: Descriptor, data: bytes) -> None:
            seen.append(f"after:{len(dst.blobs)}:{len(dst.manifests)}")

    CopyEngine().copy_graph(src, dst, root, hooks=Hooks())
    assert seen == ["before:1", f"after:{len(layers) + 1}:0"]  # the config was there already


def test_stats_and_blob_name() -> None:
    s = CopyStats()
    s.count(PushOutcome.EXISTS, 5)
    s.count(PushOutcome.MOUNTED, 7)
    s.count(PushOutcome.MOUNTED, 7)
    s.count(PushOutcome.UPLOADED, 11)
    s.count(PushOutcome.UPLOADED, 1)
    s.count(PushOutcome.EXISTS, 5)
    assert (s.skipped, s.mounted, s.uploaded, s.bytes_moved) == (2, 2, 2, 12)
    d = blob_desc(b"x")
    s.count_manifest(d)
    s.count_manifest(d, referrer=True)
    assert (s.manifests, s.referrers, s.copied_referrers) == (2, 1, [d])
    assert blob_name(d) == f"blob {d.short()}"
    assert CopyEngine(concurrency=0).concurrency == 1


# ----------------------------------------------------------------------------- the verifying reader


def test_size_is_checked_from_the_descriptor_before_reading() -> None:
    src = Source()
    d = src.add_blob(b"0123456789")
    with pytest.raises(VerificationError, match="announces 10 bytes, more than the 9 allowed") as info:
        read_blob(src, d, limit=9)
    assert src.opens == [] and info.value.details == {"digest": d.digest, "size": 10, "limit": 9}
    assert read_blob(src, d, limit=10) == b"0123456789"
    check_size(d, None, "x")  # no limit


def test_reader_hands_over_the_last_chunk_only_when_verified() -> None:
    src = Source(chunk=4)
    d = src.add_blob(b"abcdefgh")
    src.blobs[d.digest] = b"abcdefgX"
    got: list[bytes] = []
    reader = BlobReader(src, d)
    with pytest.raises(VerificationError), reader.open(0) as chunks:
        for c in chunks:
            got.append(c)
    assert got == [b"abcd"] and not reader.verified


def test_reader_resumes_by_rehashing_the_prefix() -> None:
    src, dst = Source(chunk=3), Dest()
    d = src.add_blob(b"0123456789abcdef")
    dst.resume_at[d.digest] = 7
    stats = CopyEngine().copy_blobs(src, dst, [d])
    assert dst.blobs[d.digest] == b"0123456789abcdef" and stats.uploaded == 1
    # a fresh reader opened at an offset re-reads the prefix from 0 and hashes it, and no more
    reader = BlobReader(src, d)
    src.opens.clear()
    src.served = 0
    with reader.open(10) as chunks:
        assert b"".join(chunks) == b"abcdef"
    assert src.opens == [(d.digest, 10), (d.digest, 0)] and reader.verified
    assert src.served == 12 + 6  # the prefix in whole chunks (0..11), then 10..15
    # re-read from 0: the state starts again
    with reader.open(0) as chunks:
        assert next(chunks) == b"012" and reader.verified is False and reader.count == 3


@pytest.mark.parametrize(("chunk", "at"), [(3, 6), (1, 1)])
def test_resume_where_the_reader_stands_reads_no_prefix(chunk: int, at: int) -> None:
    src, dst = Source(chunk=chunk), Dest()
    d = src.add_blob(b"0123456789abcdef")
    dst.resume_at[d.digest] = at  # a chunk boundary: the reader has hashed exactly `at` bytes
    CopyEngine().copy_blobs(src, dst, [d])
    assert src.opens == [(d.digest, 0), (d.digest, at)] and dst.blobs[d.digest] == b"0123456789abcdef"


def test_reader_refuses_other_algorithms_and_counts_progress(tmp_path: Path) -> None:
    src = Source()
    d = src.add_blob(b"hello world")
    other = d.model_copy(update={"digest": "sha512:" + "0" * 64})
    with pytest.raises(VerificationError, match="unsupported digest algorithm"):
        BlobReader(src, other)
    seen: list[int] = []
    reader = BlobReader(src, d, on_bytes=seen.append, what="the hello blob")
    assert reader.read() == b"hello world" and sum(seen) == 11 and reader.verified
    assert reader.what == "the hello blob" and BlobReader(src, d).what == f"blob {d.short()} from mem:src"
    out = tmp_path / "sub" / "dir" / "out.bin"
    write_blob(src, d, out, limit=None)
    assert out.read_bytes() == b"hello world"
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    src.blobs[d.digest] = b"hello World"
    with pytest.raises(VerificationError):
        write_blob(src, d, tmp_path / "bad.bin", limit=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # nothing left behind
    src.fail[d.digest] = VerificationError("source gone")
    with pytest.raises(VerificationError, match="source gone"):  # not a FileNotFoundError of the cleanup
        write_blob(src, d, tmp_path / "gone.bin", limit=None)


def test_write_goes_through_a_hidden_partial_file(tmp_path: Path) -> None:
    src = Source(chunk=2)
    d = src.add_blob(b"abcdef")
    seen: list[list[str]] = []
    reader = BlobReader(src, d, on_bytes=lambda n: seen.append(sorted(p.name for p in tmp_path.iterdir())))
    reader.write_to(tmp_path / "out.bin")
    assert all(len(names) == 1 and names[0].startswith(".out.bin.partial-") for names in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_reader_skips_empty_chunks_and_stops_when_cancelled() -> None:
    src = Source()
    d = src.add_blob(b"abc")
    reader = BlobReader(src, d)
    assert list(reader.stream(iter([b"", b"ab", b"", b"c"]))) == [b"ab", b"c"]
    cancel = Cancellation()
    reader = BlobReader(src, d, cancel=cancel)
    cancel.set()
    with pytest.raises(CancelledTransfer):
        list(reader.stream(iter([b"abc"])))
    with pytest.raises(CancelledTransfer), BlobReader(src, d, cancel=cancel).open(0):
        pass


def test_finish_unread_only_for_an_empty_blob() -> None:
    src = Source()
    empty = src.add_blob(b"")
    full = src.add_blob(b"data")
    assert BlobReader(src, empty).finish_unread() is True
    assert BlobReader(src, full).finish_unread() is False
    bogus = Descriptor(media_type="x/y", digest=sha(b"not empty"), size=0)
    with pytest.raises(VerificationError, match="content hashes to"):
        BlobReader(src, bogus).finish_unread()


def test_read_manifest_checks_size_then_bytes() -> None:
    src = Source()
    root, _ = artifact(src, b"m")
    assert read_manifest(src, root) == src.manifests[root.digest]
    with pytest.raises(VerificationError, match="more than the 10 allowed") as info:
        read_manifest(src, root, limit=10)
    assert info.value.side == "source"
    src.manifests[root.digest] = src.manifests[root.digest].replace(b"layers", b"LAYERS")
    with pytest.raises(VerificationError) as bad:
        read_manifest(src, root)
    assert bad.value.message.startswith(f"manifest {root.digest} from mem:src: content hashes to")
    with pytest.raises(VerificationError) as named:
        read_manifest(src, root, what="the root")
    assert named.value.message.startswith("the root: content hashes to")
    with pytest.raises(VerificationError, match=f"manifest {root.digest} from mem:src: 3 bytes, the descriptor states"):
        check_manifest_bytes(b"{ }", root, f"manifest {root.digest} from mem:src")
    big = root.model_copy(update={"size": mt.MAX_MANIFEST_BYTES + 1})
    with pytest.raises(VerificationError, match="refused before download"):
        read_manifest(src, big)
