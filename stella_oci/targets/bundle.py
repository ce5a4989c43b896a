"""A StellaOps bundle directory as a target.

- :class:`BundleSource` (a :class:`~stella_oci.targets.base.ReadOnlyTarget`) serves a checked
  bundle (and the manifest built from it) for a push: blobs are read from the bundle's files,
  in chunks.
- :class:`BundleSink` (a :class:`~stella_oci.targets.base.Target`) receives a pull: every blob
  is written under its layer title (the names the layers carried at push time) into a
  temporary directory beside the output, verified while written; layers that share a digest
  are restored from the first copy. :meth:`BundleSink.commit` renames the directory into
  place, :meth:`BundleSink.abort` removes it, so a failed pull leaves nothing.
- :class:`DiscardSink` (a :class:`~stella_oci.targets.base.Target`) receives a verify: blobs
  are streamed, hashed and dropped.

None of them has a method that exists only to refuse: a source cannot be written to and a
sink cannot be read from, and the type checker says so.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

from stella_oci import interrupts
from stella_oci.cancel import Cancellation
from stella_oci.errors import LOCAL_ERRNOS, InvalidInputError, NotFoundError, VerificationError
from stella_oci.export.artifact import BuiltArtifact
from stella_oci.export.bundle import BUNDLE_FILE_HINT, Bundle, BundleFile
from stella_oci.export.paths import check_relative_path
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import FILE_CHUNK, file_digest, is_digest, iter_file
from stella_oci.oci.manifest import Descriptor
from stella_oci.targets.base import BlobOpener, ProgressFn, PushOutcome

log = logging.getLogger("stella_oci")


class LocalSource:
    """Read-only: one manifest built in memory and the local files its blobs are (plus the OCI
    empty config). Used for a push of a bundle and for an ``attach`` of a file."""

    def __init__(self, name: str, root: Descriptor, data: bytes, files: Mapping[str, Path]) -> None:
        self.name = name
        self.root = root
        self.data = data
        self._files = dict(files)

    def resolve(self, selector: str) -> Descriptor:
        return self.root

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        if desc.digest != self.root.digest:
            raise NotFoundError(f"{self.name}: no manifest {desc.digest}")
        return self.data

    @contextmanager
    def _open(self, desc: Descriptor, offset: int) -> Iterator[Iterator[bytes]]:
        if desc.digest == mt.EMPTY_DIGEST:
            yield iter((mt.EMPTY_JSON[offset:],))
            return
        path = self._path_of(desc.digest)
        if path is None:
            raise NotFoundError(f"{self.name}: no file with digest {desc.digest}")
        # a read of 4 MiB allocates 4 MiB, also for a file of 30 bytes: read small files at
        # their size (one byte more to see a file grown since; the reader refuses it)
        yield iter_file(path, offset, chunk_size=min(FILE_CHUNK, max(desc.size - offset, 0) + 1))

    def _path_of(self, digest: str) -> str | os.PathLike[str] | None:
        """The file whose bytes are the blob ``digest``."""
        return self._files.get(digest)

    def open_blob(
        self, desc: Descriptor, offset: int = 0, cancel: Cancellation | None = None
    ) -> AbstractContextManager[Iterator[bytes]]:
        """Local reads never block: ``cancel`` is checked by the reader between chunks."""
        return self._open(desc, offset)

    def referrers(self, subject: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Local files have no referrers (a bundle's signatures are layers)."""
        return []

    def close(self) -> None:
        """Files are opened per read."""


class BundleSource(LocalSource):
    """Read-only: the artifact of a bundle being pushed (an
    :class:`~stella_oci.targets.base.UncheckedSource`: listed files were not hashed before the
    copy, see :func:`~stella_oci.export.bundle.scan_directory`)."""

    def __init__(self, bundle: Bundle, artifact: BuiltArtifact) -> None:
        # per digest, the file not hashed yet (at most one: scan_directory hashes the others
        # listed with its digest), so that the bytes verified on the way out are that file's
        served: dict[str, BundleFile] = {}
        for f in bundle.files:
            if f.digest not in served or (served[f.digest].hashed and not f.hashed):
                served[f.digest] = f
        # (the files' paths are made per read: no pathlib object per file held, issue 15)
        super().__init__(str(bundle.root), artifact.descriptor, artifact.data, {})
        self._served = served
        self.bundle = bundle
        self.artifact = artifact

    def _path_of(self, digest: str) -> str | os.PathLike[str] | None:
        f = self._served.get(digest)
        return None if f is None else f.location

    def blob_what(self, desc: Descriptor) -> tuple[str, str] | None:
        f = self._served.get(desc.digest)
        if f is None or f.hashed:
            return None
        return f"{f.where}/digest: bundle file {f.path!r}", BUNDLE_FILE_HINT

    def confirm(self, desc: Descriptor, *, streamed: bool) -> None:
        """A listed file the destination did not read (it had the blob) is hashed here: its
        bytes must be the ones export.json states even when nothing of them is sent. Known-good
        files (hashed before, or streamed by an earlier copy of the same bundle) are not."""
        f = self._served.get(desc.digest)
        if f is None or f.hashed or desc.digest in self.bundle.confirmed:
            return
        if not streamed:
            actual, size = file_digest(f.location)
            if (actual, size) != (f.digest, f.size):
                raise VerificationError(
                    f"{f.where}/digest: {f.path!r} hashes to {actual} ({size} bytes), export.json states "
                    f"{f.digest} ({f.size} bytes)",
                    hint=BUNDLE_FILE_HINT,
                    side="source",
                )
        self.bundle.confirmed.add(desc.digest)


class BundleSink:
    """Write-only: a pulled bundle, assembled in a temporary directory beside ``output``.

    The directory is ``.<name>.partial-<pid>-<host>-<random>`` in the output's parent (a
    rename never crosses file systems). It is tracked by :mod:`stella_oci.interrupts` until
    :meth:`keep`, so a stopped run removes it; partials that a killed run left behind (same
    host, owner process gone) are removed when the next pull to the same output starts.
    """

    def __init__(self, output: Path) -> None:
        self.output = Path(output)
        self.name = str(self.output)
        check_output(self.output)
        parent = self.output.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            parent = parent.resolve()
            self.stale_removed = remove_stale_partials(parent, self.output.name)
            self.tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(self.output.name), dir=parent))
        except OSError as exc:
            raise output_error(self.output, exc, f"cannot create a directory in {parent}") from None
        self._token: int | None = interrupts.track(self.tmp)
        self._root = str(self.tmp)
        # Per layer digest, compact (a 10,000-file pull holds 10,000; issue 15): the first title
        # it is written under, None once written; the other titles of a digest that several
        # layers share, apart.
        self._expected: dict[str, str | None] = {}
        self._more_titles: dict[str, list[str]] = {}
        self.manifest_digest: str | None = None
        self.committed = False

    def expect(self, layers: Sequence[Descriptor]) -> None:
        """Tell the sink which titles each digest is to be written under (layers may share a digest)."""
        expected = self._expected
        for layer in layers:
            title = layer.title
            if title is None:
                raise VerificationError(f"layer {layer.digest} has no {mt.ANNOTATION_TITLE}")
            check_relative_path(title, where=f"layer {layer.digest} title", error=VerificationError)
            if layer.digest in expected:
                self._more_titles.setdefault(layer.digest, []).append(title)
            else:
                expected[layer.digest] = title

    def _titles(self, digest: str) -> list[str]:
        """The titles ``digest`` is still to be written under (none once written)."""
        first = self._expected.get(digest)
        return [first, *self._more_titles.get(digest, ())] if first is not None else []

    def _mark_written(self, digest: str) -> None:
        self._expected[digest] = None
        self._more_titles.pop(digest, None)

    def adopt(self, desc: Descriptor) -> None:
        """The blob ``desc`` is already at its first title (export.json, written and verified
        by the pull's checks): count it as written and restore the other titles it carries."""
        titles = self._titles(desc.digest)
        if not titles or not os.path.isfile(self.path_of(titles[0])):
            raise VerificationError(f"blob {desc.digest} was not written by the checks")
        self._copy_to(self.path_of(titles[0]), titles[1:])
        self._mark_written(desc.digest)

    def path_of(self, title: str) -> str:
        """Where ``title`` is written (a string: pathlib interns every name it parses, and the
        interpreter's table of interned strings only grows: ~2 MB for 10,000 files)."""
        return os.path.join(self._root, title)

    def _copy_to(self, first: str, titles: Sequence[str]) -> None:
        """Restore the copies of a blob that other layers share (written at ``first``)."""
        for title in titles:
            dest = self.path_of(title)
            with self._writing(title):
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(first, dest)

    def release(self) -> None:
        """The copy is complete: forget the layers (a pull holds the result next, not both)."""
        self._expected = {}
        self._more_titles = {}

    # --- Target ---------------------------------------------------------------
    def has_blob(self, desc: Descriptor) -> bool:
        """True once the blob is written (e.g. export.json, written by the pull's checks)."""
        return desc.digest in self._expected and self._expected[desc.digest] is None

    def has_manifest(self, desc: Descriptor) -> bool:
        """A bundle keeps no OCI manifest: never."""
        return False

    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> PushOutcome:
        if not is_digest(desc.digest):
            raise VerificationError(f"invalid digest {desc.digest!r}")
        if self.has_blob(desc):
            return PushOutcome.EXISTS
        titles = self._titles(desc.digest)
        if not titles:
            if desc.digest == mt.EMPTY_DIGEST:
                return PushOutcome.EXISTS  # the config: checked from the manifest, not part of the bundle
            raise VerificationError(f"blob {desc.digest} is not a layer of this export")
        first = self.path_of(titles[0])
        folder, name = os.path.split(first)
        partial = os.path.join(folder, f".{name}.partial")
        try:
            with self._writing(titles[0]):
                os.makedirs(folder, exist_ok=True)
                fh = open(partial, "wb", buffering=0)  # unbuffered: no late error at close
            # The transport resumes a cut download itself; the engine verifies while we write.
            with fh, opener(0) as chunks:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        try:
                            written = fh.write(view)
                        except OSError as exc:
                            raise output_error(self.output, exc, f"cannot write {titles[0]!r}") from None
                        if not written:
                            raise output_error(
                                self.output, OSError(errno.EIO, "short write"), f"cannot write {titles[0]!r}"
                            )
                        view = view[written:]
            with self._writing(titles[0]):
                os.replace(partial, first)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(partial)
            raise
        self._copy_to(first, titles[1:])
        self._mark_written(desc.digest)
        return PushOutcome.UPLOADED

    @contextmanager
    def _writing(self, title: str) -> Iterator[None]:
        """Create entries in the partial directory: refused once the run is stopped; a local
        file-system failure (disk full, read-only) becomes exit 2 naming the file."""
        try:
            with interrupts.creating():
                yield
        except OSError as exc:
            raise output_error(self.output, exc, f"cannot write {title!r}") from None

    def push_manifest(self, desc: Descriptor, data: bytes) -> None:
        """The bundle keeps no OCI manifest: the pull result reports its digest instead."""
        self.manifest_digest = desc.digest

    def tag(self, desc: Descriptor, tag: str) -> None:
        """A bundle directory has no tags: its name is the --output path."""

    def close(self) -> None:
        """Commit or abort releases everything."""

    def commit(self) -> None:
        """Rename the complete bundle into place (an empty directory there is replaced).

        Another pull that finished into the same ``output`` first makes this one fail (exit 2,
        "already exists"): a rename never merges into, or replaces, a non-empty directory.
        The result stays tracked as a leftover until :meth:`keep`.
        """
        try:
            os.replace(self.tmp, self.output)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise InvalidInputError(
                    f"{self.output}: already exists and is not an empty directory "
                    "(another pull finished into it first?)",
                    hint="choose a new --output directory; stella-oci never overwrites or merges into a bundle",
                ) from None
            raise output_error(self.output, exc, "cannot rename the pulled bundle into place") from None
        self.committed = True
        if self._token is not None:
            interrupts.retrack(self._token, self.output)

    def keep(self) -> None:
        """The pull succeeded: ``output`` is the result, no longer a leftover."""
        interrupts.untrack(self._token)
        self._token = None

    def abort(self) -> None:
        """Remove what this pull wrote: the partial directory, or the renamed bundle itself."""
        if self._token is None:
            return  # kept: the result is not ours to remove
        shutil.rmtree(self.output if self.committed else self.tmp, ignore_errors=True)
        interrupts.untrack(self._token)
        self._token = None


# --------------------------------------------------------------------------- --output


def output_error(output: Path, exc: OSError, doing: str) -> InvalidInputError:
    """An ``--output`` problem (exit 2) naming the path, the cause and the fix."""
    cause = LOCAL_ERRNOS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free space on that file system, or choose an --output on another one"
    else:
        hint = "choose an --output in a directory you can write"
    return InvalidInputError(f"{output}: {doing}{where}: {cause}", hint=hint, details={"errno": exc.errno})


def check_output(output: Path) -> None:
    """``output`` must be a new path or an empty directory, and not a symbolic link."""
    if output.is_symlink():
        target = os.readlink(output)
        state = "an empty directory" if output.is_dir() else "nothing" if not output.exists() else "a file"
        raise InvalidInputError(
            f"{output}: is a symbolic link (to {target!r}, which is {state}); "
            "a pull never writes through a symbolic link",
            hint=f"give the real directory (--output {output.resolve()}) or a new path",
        )
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInputError(
            f"{output}: already exists and is not an empty directory",
            hint="choose a new --output directory; stella-oci never overwrites or merges into a bundle",
        )


_HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def partial_prefix(name: str) -> str:
    """``.<name>.partial-<pid>-<host>-``: the owner of a partial pull, readable from its name."""
    return f".{name}.partial-{os.getpid()}-{_HOST_TAG}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def remove_stale_partials(parent: Path, name: str) -> list[Path]:
    """Remove ``.<name>.partial-*`` directories in ``parent`` left by a pull that was killed.

    Only those provably abandoned are touched: written by this host (the name carries a
    hash of the host name) by a process that no longer exists. Each removal is reported on
    stderr (a warning). Partials of a pull still running, or from another host sharing the
    directory, are left alone.
    """
    pattern = re.compile(rf"\.{re.escape(name)}\.partial-(\d+)-([0-9a-f]{{8}})-[^/]+\Z")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or m.group(2) != _HOST_TAG or not entry.is_dir(follow_symlinks=False):
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        path = Path(entry.path)
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            removed.append(path)
            log.warning("removed %s: a partial pull left by process %d, which no longer runs", path, pid)
    return removed


class DiscardSink:
    """A verify: blobs stream through the engine's verification and are dropped.

    It remembers only the blobs the checks read before the copy (``skip``, :meth:`adopt`), not
    every blob read through: the engine reads each digest of a copy once, and a verify of
    10,000 files would hold 10,000 digests for nothing (issue 15)."""

    name = "(verify)"

    def __init__(self, skip: Sequence[str] = ()) -> None:
        self._seen: set[str] = set(skip)

    def has_blob(self, desc: Descriptor) -> bool:
        """True for blobs checked before the copy (``skip``, :meth:`adopt`)."""
        return desc.digest in self._seen

    def has_manifest(self, desc: Descriptor) -> bool:
        return False

    def expect(self, layers: Sequence[Descriptor]) -> None:
        """Nothing is written, so no title matters."""

    def adopt(self, desc: Descriptor) -> None:
        """The checks read this blob already (verified): it is not read again."""
        self._seen.add(desc.digest)

    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> PushOutcome:
        if desc.digest in self._seen:
            return PushOutcome.EXISTS
        with opener(0) as chunks:
            for _ in chunks:
                pass
        return PushOutcome.UPLOADED

    def push_manifest(self, desc: Descriptor, data: bytes) -> None:
        """Nothing is kept."""

    def tag(self, desc: Descriptor, tag: str) -> None:
        """Nothing is kept."""

    def commit(self) -> None:
        """Nothing is kept."""

    def abort(self) -> None:
        """Nothing is kept."""

    def close(self) -> None:
        """Nothing is held."""
