"""OCI image layouts as tar files: ``oci-archive:FILE[:TAG]``.

The archive holds exactly an OCI image layout (see :mod:`stella_oci.targets.layout`) as an
*uncompressed* tar, the form ``skopeo copy ... oci-archive:`` writes and reads.

Reading (``create=False``) never extracts: the member headers are scanned once (links,
devices, FIFOs, sparse files, absolute names and ``..`` components are refused with
InvalidInputError), and each blob is streamed from its offset inside the tar through a file
handle of its own, so concurrent reads do not disturb each other and nothing is held whole
in memory.

Writing (``create=True``) builds the layout in a temporary directory beside the destination
(an existing archive is first read into it, each blob verified as it is copied, so tags
accumulate); :meth:`OciArchiveTarget.commit` then writes a deterministic tar to a temporary
file and renames it over the destination: members in the order ``oci-layout``,
``index.json``, ``blobs/``, ``blobs/sha256/``, then the blobs sorted by name; mtime 0,
uid/gid 0, empty user and group names, mode 0644 for files and 0755 for directories, PAX
format (which only adds extended headers a plain ustar header cannot hold, e.g. for blobs
over 8 GiB). The same content therefore always gives the same archive, byte for byte.
:meth:`OciArchiveTarget.abort` removes the temporary directory and leaves the destination
untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from stella_oci import interrupts
from stella_oci.cancel import Cancellation
from stella_oci.errors import InvalidInputError, NotFoundError
from stella_oci.export.bundle import MAX_ARCHIVE_MEMBERS, BoundedTarInfo
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import CHUNK, is_digest, write_verified
from stella_oci.oci.manifest import Descriptor
from stella_oci.targets.base import BlobOpener, ProgressFn, PushOutcome
from stella_oci.targets.layout import (
    BLOBS_DIR,
    INDEX_FILE,
    MAX_INDEX_BYTES,
    MAX_LAYOUT_FILE_BYTES,
    LayoutReader,
    OciLayoutTarget,
    blob_relpath,
    check_layout_file,
)

_BLOB_NAME_RE = re.compile(r"blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*/[a-zA-Z0-9=_-]+")  # fullmatch
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_COMPRESSIONS = ((_GZIP_MAGIC, "gzip"), (_ZSTD_MAGIC, "zstd"), (_BZIP2_MAGIC, "bzip2"), (_XZ_MAGIC, "xz"))


def safe_member_name(info: tarfile.TarInfo, archive: str) -> str | None:
    """The normalized name of an acceptable member, None for the root directory entry.

    Raises InvalidInputError for anything a layout cannot legitimately contain: links,
    devices, FIFOs, sparse files, absolute names, ``..`` or empty path components.
    """
    raw = info.name
    kind = (
        "symbolic link" if info.issym()
        else "hard link" if info.islnk()
        else "device" if (info.ischr() or info.isblk())
        else "FIFO" if info.isfifo()
        else "sparse file" if info.issparse()
        else None
    )
    if kind is None and not (info.isreg() or info.isdir()):
        kind = f"member of type {info.type!r}"
    if kind is not None:
        raise InvalidInputError(
            f"{archive}: member {raw!r} is a {kind}; an OCI layout archive holds only regular files "
            "and directories",
            hint="the archive was not written by an OCI tool or was tampered with; do not use it",
        )
    if raw.startswith("/") or "\\" in raw or "\x00" in raw:
        raise InvalidInputError(f"{archive}: member {raw!r} has an absolute or unsafe name")
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/") if info.isdir() else name
    if name in ("", "."):
        if info.isdir():
            return None
        raise InvalidInputError(f"{archive}: member {raw!r} has an empty name")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInputError(
            f"{archive}: member {raw!r} has an empty, '.' or '..' path component",
            hint="refusing a path that could escape the layout",
        )
    return str(PurePosixPath(name))


def _check_not_compressed(path: Path, name: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, what in _COMPRESSIONS:
        if head.startswith(magic):
            raise InvalidInputError(
                f"{name}: {path} is {what}-compressed; an oci-archive is an uncompressed tar",
                hint=f"decompress it first (the blobs inside are compressed already), e.g. with {what} -d",
            )


class _TarLayout(LayoutReader):
    """Read-only view of an OCI layout inside an uncompressed tar."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__()
        self.path = path
        self.name = name
        self.members: dict[str, tarfile.TarInfo] = {}
        self._scan()

    def _scan(self) -> None:
        _check_not_compressed(self.path, self.name)
        try:
            with tarfile.open(self.path, mode="r:", tarinfo=BoundedTarInfo) as tf:
                for info in tf:
                    name = safe_member_name(info, self.name)
                    if len(self.members) >= MAX_ARCHIVE_MEMBERS:
                        raise InvalidInputError(
                            f"{self.name}: more than {MAX_ARCHIVE_MEMBERS} members",
                            hint="an OCI layout archive of this size is not supported; use an oci: directory",
                        )
                    if name is None or info.isdir():
                        continue
                    if name in self.members:
                        raise InvalidInputError(
                            f"{self.name}: member {name!r} appears more than once",
                            hint="an archive with duplicate members is ambiguous; rebuild it",
                        )
                    self.members[name] = info
        except tarfile.TarError as exc:
            raise InvalidInputError(
                f"{self.name}: {self.path} is not a readable tar archive ({exc})",
                hint="an oci-archive is an uncompressed tar of an OCI image layout",
            ) from None
        layout = self._read_member(mt.OCI_LAYOUT_FILE, MAX_LAYOUT_FILE_BYTES)
        if layout is None:
            raise InvalidInputError(
                f"{self.name}: no {mt.OCI_LAYOUT_FILE} member; this tar is not an OCI image layout",
                hint="oci-archive: expects the tar skopeo or stella-oci writes; "
                "a `docker save` tar is not one",
            )
        check_layout_file(layout, f"{self.name}: {mt.OCI_LAYOUT_FILE}")

    def _read_member(self, relpath: str, limit: int) -> bytes | None:
        info = self.members.get(relpath)
        if info is None:
            return None
        if info.size > limit:
            raise InvalidInputError(f"{self.name}: member {relpath} is larger than {limit} bytes")
        with open(self.path, "rb") as fh:
            fh.seek(info.offset_data)
            data = fh.read(info.size)
        if len(data) != info.size:
            raise InvalidInputError(f"{self.name}: member {relpath} is truncated")
        return data

    def _blob_size(self, digest: str) -> int | None:
        info = self.members.get(blob_relpath(digest, self.name))
        return None if info is None else info.size

    @contextlib.contextmanager
    def _stream_blob(self, digest: str, offset: int) -> Iterator[Iterator[bytes]]:
        rel = blob_relpath(digest, self.name)
        info = self.members.get(rel)
        if info is None:
            raise NotFoundError(f"{self.name}: blob {digest} is not in the archive (no member {rel})")
        with open(self.path, "rb") as fh:
            start = min(offset, info.size)
            fh.seek(info.offset_data + start)
            remaining = info.size - start

            def chunks() -> Iterator[bytes]:
                nonlocal remaining
                while remaining > 0:
                    chunk = fh.read(min(CHUNK, remaining))
                    if not chunk:
                        return  # truncated archive: the verifying consumer reports the short count
                    remaining -= len(chunk)
                    yield chunk

            yield chunks()

    def iter_files(self) -> Iterator[tuple[str, tarfile.TarInfo]]:
        """Members in name order."""
        for name in sorted(self.members):
            yield name, self.members[name]


class OciArchiveTarget:
    """An OCI image layout in an uncompressed tar file.

    ``create=False``: the file must exist; it is read in place. ``create=True``: writes are
    staged in a temporary directory beside ``path`` and land in ``path`` on :meth:`commit`;
    an existing archive at ``path`` is read in first, so its tags and blobs are kept.
    """

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = Path(path)
        self.name = f"oci-archive:{path}"
        self.create = create
        self._lock = threading.RLock()
        self._reader: _TarLayout | None = None
        self._stage_dir: Path | None = None
        self._stage_token: int | None = None
        self._staging: OciLayoutTarget | None = None
        self._committed: _TarLayout | None = None  # read view of the destination, when not staging
        if self.path.is_dir():
            raise InvalidInputError(
                f"{self.name}: {self.path} is a directory",
                hint="use oci:DIR for a layout directory; oci-archive: names a tar file",
            )
        if not create:
            if not self.path.exists():
                raise NotFoundError(f"{self.name}: archive {self.path} does not exist")
            self._reader = _TarLayout(self.path, self.name)
        elif self.path.exists():
            # validate now (a bad destination fails before any transfer)
            self._committed = _TarLayout(self.path, self.name)

    # --- staging ------------------------------------------------------------------
    def _store(self) -> LayoutReader:
        """Where reads go: the staged layout while writing, else the archive itself."""
        with self._lock:
            if self._reader is not None:
                return self._reader
            if self._staging is not None:
                return self._staging
            if self.path.exists():
                if self._committed is None:
                    self._committed = _TarLayout(self.path, self.name)
                return self._committed
            return self._stage()

    def _stage(self) -> OciLayoutTarget:
        with self._lock:
            if self._staging is not None:
                return self._staging
            if self._reader is not None:
                raise InvalidInputError(f"{self.name}: opened for reading only")
            parent = self.path.parent
            parent.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.staging-", dir=parent))
            self._stage_token = interrupts.track(stage)
            try:
                if self.path.exists():
                    self._import(stage)
                staging = OciLayoutTarget(stage, create=True)
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                interrupts.untrack(self._stage_token)
                raise
            staging.name = self.name
            self._stage_dir, self._staging = stage, staging
            return staging

    def _import(self, stage: Path) -> None:
        """Copy the existing archive's layout into ``stage``, verifying each sha256 blob."""
        old = _TarLayout(self.path, self.name)
        for name, info in old.iter_files():
            if name in (mt.OCI_LAYOUT_FILE, INDEX_FILE):
                limit = MAX_INDEX_BYTES if name == INDEX_FILE else MAX_LAYOUT_FILE_BYTES
                data = old._read_member(name, limit) or b""
                (stage / name).write_bytes(data)
                continue
            if not _BLOB_NAME_RE.fullmatch(name):
                continue  # not part of an OCI layout: not carried over
            dest = stage / name
            _, algo, encoded = name.split("/")
            digest = f"{algo}:{encoded}"
            if is_digest(digest):
                with old._stream_blob(digest, 0) as chunks:
                    write_verified(chunks, dest, digest, info.size, f"{self.name}: existing blob {digest}")
            else:  # another algorithm: copied as is
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(old.path, "rb") as src, open(dest, "wb") as out:
                    src.seek(info.offset_data)
                    remaining = info.size
                    while remaining > 0 and (chunk := src.read(min(CHUNK, remaining))):
                        out.write(chunk)
                        remaining -= len(chunk)

    # --- Target: reading ----------------------------------------------------------
    def resolve(self, selector: str) -> Descriptor:
        return self._store().resolve(selector)

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        return self._store().fetch_manifest(desc)

    def open_blob(
        self, desc: Descriptor, offset: int = 0, cancel: Cancellation | None = None
    ) -> AbstractContextManager[Iterator[bytes]]:
        """Local reads never block: ``cancel`` is checked by the reader between chunks."""
        return self._store().open_blob(desc, offset, cancel)

    def has_blob(self, desc: Descriptor) -> bool:
        return self._store().has_blob(desc)

    def has_manifest(self, desc: Descriptor) -> bool:
        return self._store().has_manifest(desc)

    def referrers(self, subject: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        return self._store().referrers(subject, artifact_type)

    def tags(self) -> list[str]:
        return self._store().tags()

    # --- Target: writing ----------------------------------------------------------
    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> PushOutcome:
        return self._stage().push_blob(desc, opener, progress)

    def push_manifest(self, desc: Descriptor, data: bytes) -> None:
        self._stage().push_manifest(desc, data)

    def tag(self, desc: Descriptor, tag: str) -> None:
        self._stage().tag(desc, tag)

    def commit(self) -> None:
        """Write the staged layout as a deterministic tar and rename it over the destination."""
        with self._lock:
            if self._reader is not None:
                return
            if self._staging is None and self.path.exists():
                return  # nothing was written
            staging = self._stage()
            staging._ensure_layout()
            assert self._stage_dir is not None
            tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}-{threading.get_ident()}")
            tmp_token = interrupts.track(tmp)
            try:
                with open(tmp, "wb") as fh:
                    write_layout_tar(self._stage_dir, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            finally:
                interrupts.untrack(tmp_token)
            _fsync_dir(self.path.parent)
            self._discard()

    def abort(self) -> None:
        """Drop everything staged; the destination file is left as it was."""
        with self._lock:
            self._discard()

    def close(self) -> None:
        """Release the staging directory if neither commit nor abort ran."""
        with self._lock:
            self._discard()

    def _discard(self) -> None:
        if self._stage_dir is not None:
            shutil.rmtree(self._stage_dir, ignore_errors=True)
            interrupts.untrack(self._stage_token)
        self._stage_dir, self._staging, self._committed = None, None, None


def _tarinfo(name: str, *, size: int = 0, is_dir: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size = 0 if is_dir else size
    info.mode = 0o755 if is_dir else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def layout_members(root: Path) -> list[tuple[str, Path]]:
    """The (archive name, file) pairs of a layout directory, in archive order.

    ``oci-layout``, ``index.json``, then ``blobs/``, each algorithm directory and its blobs,
    all sorted by name. Temporary files (names starting with ``.``) and anything else are
    left out; a symlink or special file under blobs/ is refused.
    """
    out: list[tuple[str, Path]] = [
        (mt.OCI_LAYOUT_FILE, root / mt.OCI_LAYOUT_FILE),
        (INDEX_FILE, root / INDEX_FILE),
    ]
    blobs = root / BLOBS_DIR
    if not blobs.is_dir():
        return out
    out.append((BLOBS_DIR, blobs))
    for algo_dir in sorted(blobs.iterdir(), key=lambda p: p.name):
        if algo_dir.name.startswith(".") or not algo_dir.is_dir() or algo_dir.is_symlink():
            continue
        out.append((f"{BLOBS_DIR}/{algo_dir.name}", algo_dir))
        for blob in sorted(algo_dir.iterdir(), key=lambda p: p.name):
            if blob.name.startswith("."):
                continue
            st = os.lstat(blob)
            if not stat.S_ISREG(st.st_mode):
                raise InvalidInputError(f"{blob}: not a regular file; refusing to archive it")
            out.append((f"{BLOBS_DIR}/{algo_dir.name}/{blob.name}", blob))
    return out


def write_layout_tar(root: Path, fileobj: BinaryIO) -> None:
    """Write the layout directory ``root`` to ``fileobj`` as a deterministic tar, streaming."""
    with tarfile.TarFile(
        fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8", copybufsize=CHUNK
    ) as tf:
        for name, path in layout_members(root):
            if path.is_dir():
                tf.addfile(_tarinfo(name, is_dir=True))
                continue
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                tf.addfile(_tarinfo(name, size=size), fh)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["OciArchiveTarget", "layout_members", "safe_member_name", "write_layout_tar"]
