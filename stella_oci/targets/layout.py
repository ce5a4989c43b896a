"""OCI image layout directories: ``oci:DIR[:TAG]``.

The layout is the one of the OCI image-spec ("image-layout"), the same that skopeo, oras and
crane write::

    DIR/oci-layout           {"imageLayoutVersion":"1.0.0"}
    DIR/index.json           an OCI image index; tags are org.opencontainers.image.ref.name
                             annotations on its entries
    DIR/blobs/sha256/<hex>   every blob and manifest, named by its digest

Reading: a tag resolves to the index entry carrying that ``ref.name``; a digest resolves to
the blob (its media type read from the document itself); a layout holding a single manifest
resolves with an empty selector. Writing: blobs go through
:func:`stella_oci.oci.digest.write_verified` (temporary file, hashed while written, renamed
only when digest and size match); manifests are stored as the exact bytes given and entered
in index.json, once per tag (an entry with the same ``ref.name`` is replaced) or, without a
tag, once per digest, the way oras-go's layout store keeps untagged manifests (referrers)
findable. index.json is rewritten atomically (temporary file + rename) with sorted keys and
entries in a fixed order, so the same operations always give the same bytes.

:class:`LayoutReader` holds everything that only reads (index, tags, referrers); the tar
form (:mod:`stella_oci.targets.archive`) reuses it over tar members.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from stella_oci import interrupts
from stella_oci.cancel import Cancellation
from stella_oci.errors import InvalidInputError, NotFoundError, VerificationError
from stella_oci.jsonio import load_json
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import CHUNK, is_digest, sha256_digest, write_verified
from stella_oci.oci.digest import check_digest as _check_digest
from stella_oci.oci.manifest import Descriptor, canonical_json, media_type_of
from stella_oci.oci.reference import check_tag
from stella_oci.targets.base import BlobOpener, ProgressFn, PushOutcome

INDEX_FILE = "index.json"
BLOBS_DIR = "blobs"
#: index.json lists manifests only; refuse to read one larger than this.
MAX_INDEX_BYTES = 64 * 1024 * 1024
MAX_LAYOUT_FILE_BYTES = 64 * 1024
SUPPORTED_LAYOUT_VERSIONS = ("1.0.0",)
MANIFEST_TYPES = (mt.OCI_MANIFEST, mt.OCI_INDEX)

_EMPTY_INDEX: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}


def check_digest(digest: str, where: str) -> str:
    """Validate a digest before it becomes a file name (no path tricks, sha256 only)."""
    return _check_digest(
        digest, where, hint="only sha256 digests are supported; the digest names a file under blobs/sha256/"
    )


def blob_relpath(digest: str, where: str) -> str:
    """``blobs/sha256/<hex>`` for a validated digest."""
    algo, hexpart = check_digest(digest, where).split(":", 1)
    return f"{BLOBS_DIR}/{algo}/{hexpart}"


def layout_file_bytes() -> bytes:
    return canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION})


def check_layout_file(data: bytes, where: str) -> None:
    """Refuse an ``oci-layout`` file that is not JSON or names a version we do not know."""
    obj = load_json(data, where, max_bytes=MAX_LAYOUT_FILE_BYTES)
    version = obj.get("imageLayoutVersion") if isinstance(obj, dict) else None
    if version not in SUPPORTED_LAYOUT_VERSIONS:
        raise InvalidInputError(
            f"{where}: imageLayoutVersion is {version!r}; supported: {', '.join(SUPPORTED_LAYOUT_VERSIONS)}"
        )


def parse_index_json(data: bytes, where: str) -> dict[str, Any]:
    """index.json as a raw dict (unknown members are kept so that a rewrite preserves them)."""
    obj = load_json(data, where, max_bytes=MAX_INDEX_BYTES)
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{where}: not a JSON object", hint="the layout is damaged")
    manifests = obj.get("manifests", [])
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        raise InvalidInputError(f"{where}: field 'manifests' is not a list of descriptors")
    for i, entry in enumerate(manifests):
        if not isinstance(entry.get("digest"), str):
            raise InvalidInputError(f"{where}: manifests[{i}] has no string 'digest'")
        ann = entry.get("annotations")
        if ann is not None and not isinstance(ann, dict):
            raise InvalidInputError(f"{where}: manifests[{i}].annotations is not an object")
    obj["manifests"] = manifests
    return obj


def ref_name(entry: dict[str, Any]) -> str | None:
    ann = entry.get("annotations") or {}
    name = ann.get(mt.ANNOTATION_REF_NAME)
    return name if isinstance(name, str) else None


def untagged(entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of an index entry without its ``ref.name`` annotation."""
    out = {k: v for k, v in entry.items() if k != "annotations"}
    ann = {k: v for k, v in (entry.get("annotations") or {}).items() if k != mt.ANNOTATION_REF_NAME}
    if ann:
        out["annotations"] = ann
    return out


def _artifact_type_member(data: bytes) -> str | None:
    try:
        obj = load_json(data, "manifest", max_bytes=mt.MAX_MANIFEST_BYTES)
    except InvalidInputError:
        return None
    art = obj.get("artifactType") if isinstance(obj, dict) else None
    return art if isinstance(art, str) else None


def entry_sort_key(entry: dict[str, Any]) -> tuple[int, str, str]:
    """Tagged entries first (by tag), then untagged ones (by digest)."""
    name = ref_name(entry)
    return (0 if name is not None else 1, name or "", str(entry.get("digest", "")))


def serialize_index(index: dict[str, Any]) -> bytes:
    out = dict(index)
    out["manifests"] = sorted(index.get("manifests", []), key=entry_sort_key)
    out.setdefault("schemaVersion", 2)
    return canonical_json(out)


class LayoutReader:
    """Read side shared by the directory and tar forms of an OCI layout (a
    :class:`~stella_oci.targets.base.ReadOnlyTarget`)."""

    name: str = "oci-layout"

    def __init__(self) -> None:
        #: digest -> (subject digest, artifactType, annotations, mediaType) of a manifest
        self._summary_cache: dict[str, tuple[str | None, str | None, dict[str, str] | None, str]] = {}

    # --- storage primitives ---------------------------------------------------------
    @abstractmethod
    def _read_member(self, relpath: str, limit: int) -> bytes | None:
        """A small file of the layout (oci-layout, index.json, a manifest); None if absent."""

    @abstractmethod
    def _blob_size(self, digest: str) -> int | None:
        """Size of a stored blob, None if absent."""

    @abstractmethod
    def _stream_blob(self, digest: str, offset: int) -> AbstractContextManager[Iterator[bytes]]:
        """Chunks of a stored blob from ``offset`` (NotFoundError if absent)."""

    # --- index ----------------------------------------------------------------------
    def _load_index(self) -> dict[str, Any]:
        data = self._read_member(INDEX_FILE, MAX_INDEX_BYTES)
        if data is None:
            return json.loads(json.dumps(_EMPTY_INDEX))  # type: ignore[no-any-return]
        return parse_index_json(data, f"{self.name}: {INDEX_FILE}")

    def tags(self) -> list[str]:
        """Every tag (``ref.name``) in index.json, sorted."""
        return sorted({n for e in self._load_index()["manifests"] if (n := ref_name(e)) is not None})

    def _entry_descriptor(self, entry: dict[str, Any]) -> Descriptor:
        where = f"{self.name}: {INDEX_FILE} entry {entry.get('digest')!r}"
        check_digest(entry["digest"], where)
        fields = untagged(entry)
        if not isinstance(fields.get("mediaType"), str):
            fields["mediaType"] = self._document_media_type(entry["digest"])
        try:
            return Descriptor.model_validate(fields)
        except ValueError as exc:
            raise InvalidInputError(f"{where}: not a valid descriptor: {exc}") from None

    def _document_media_type(self, digest: str) -> str:
        data = self._read_blob_small(digest)
        return media_type_of(data)

    def _read_blob_small(self, digest: str) -> bytes:
        rel = blob_relpath(digest, self.name)
        data = self._read_member(rel, mt.MAX_MANIFEST_BYTES + 1)
        if data is None:
            raise NotFoundError(f"{self.name}: manifest {digest} is not in the layout (no {rel})")
        if len(data) > mt.MAX_MANIFEST_BYTES:
            raise VerificationError(f"{self.name}: {rel} is larger than the 4 MiB manifest limit")
        return data

    # --- Target: reading --------------------------------------------------------------
    def resolve(self, selector: str) -> Descriptor:
        entries = self._load_index()["manifests"]
        if selector and is_digest(selector):
            for entry in entries:
                if entry.get("digest") == selector:
                    return self._entry_descriptor(entry)
            size = self._blob_size(selector)
            if size is None:
                raise NotFoundError(f"{self.name}: no manifest {selector} in the layout")
            data = self._read_blob_small(selector)
            return Descriptor(media_type=media_type_of(data), digest=selector, size=len(data))
        if selector.startswith("sha256:") or "@" in selector:
            raise InvalidInputError(
                f"{self.name}: {selector!r} is not a digest of the form sha256:<64 lowercase hex>"
            )
        if not selector:
            digests = sorted({str(e.get("digest")) for e in entries})
            if len(digests) == 1:
                return self._entry_descriptor(next(e for e in entries if e.get("digest") == digests[0]))
            if not digests:
                raise NotFoundError(f"{self.name}: the layout holds no manifest")
            raise InvalidInputError(
                f"{self.name}: the layout holds {len(digests)} manifests; name one",
                hint="add :TAG or @sha256:DIGEST to the reference; "
                f"tags here: {', '.join(self.tags()) or 'none'}",
            )
        matches = [e for e in entries if ref_name(e) == selector]
        if not matches:
            known = ", ".join(self.tags()) or "none"
            raise NotFoundError(f"{self.name}: no tag {selector!r} in {INDEX_FILE} (tags: {known})")
        if len({str(e.get("digest")) for e in matches}) > 1:
            raise InvalidInputError(
                f"{self.name}: tag {selector!r} names {len(matches)} different manifests in {INDEX_FILE}",
                hint="use @sha256:DIGEST, or repair index.json so that each ref.name appears once",
            )
        return self._entry_descriptor(matches[0])

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        return self._read_blob_small(desc.digest)

    def open_blob(
        self, desc: Descriptor, offset: int = 0, cancel: Cancellation | None = None
    ) -> AbstractContextManager[Iterator[bytes]]:
        """Local reads never block: ``cancel`` is checked by the reader between chunks."""
        check_digest(desc.digest, self.name)
        if offset < 0:
            raise InvalidInputError(f"{self.name}: negative offset {offset} for blob {desc.digest}")
        return self._stream_blob(desc.digest, offset)

    def has_blob(self, desc: Descriptor) -> bool:
        check_digest(desc.digest, self.name)
        size = self._blob_size(desc.digest)
        return size is not None and size == desc.size

    def has_manifest(self, desc: Descriptor) -> bool:
        """Manifests are stored as blobs, after everything they point at."""
        return self.has_blob(desc)

    def close(self) -> None:
        """Nothing is held open between reads."""

    def _summary(self, digest: str) -> tuple[str | None, str | None, dict[str, str] | None, str]:
        cached = self._summary_cache.get(digest)
        if cached is not None:
            return cached
        data = self._read_blob_small(digest)
        try:
            doc = load_json(data, f"{self.name}: manifest {digest}", max_bytes=mt.MAX_MANIFEST_BYTES)
        except InvalidInputError:
            doc = None
        if not isinstance(doc, dict):
            summary: tuple[str | None, str | None, dict[str, str] | None, str] = (None, None, None, "")
        else:
            subject = doc.get("subject")
            subj = subject.get("digest") if isinstance(subject, dict) else None
            media_type = media_type_of(data)
            art = doc.get("artifactType")
            if not isinstance(art, str):
                # OCI 1.1: an image manifest without artifactType reports its config mediaType
                config = doc.get("config")
                art = config.get("mediaType") if isinstance(config, dict) else None
            ann = doc.get("annotations")
            annotations = (
                {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) and ann else None
            )
            summary = (
                subj if isinstance(subj, str) else None,
                art if isinstance(art, str) else None,
                annotations,
                media_type,
            )
        self._summary_cache[digest] = summary
        return summary

    def referrers(self, subject: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests listed in index.json whose ``subject.digest`` is ``subject.digest``.

        Returned as OCI 1.1 referrer descriptors (artifactType and the manifest's own
        annotations), sorted by digest, filtered by ``artifact_type`` when given.
        """
        out: dict[str, Descriptor] = {}
        for entry in self._load_index()["manifests"]:
            digest = entry.get("digest")
            if not isinstance(digest, str) or not is_digest(digest) or digest in out:
                continue
            if entry.get("mediaType") not in (None, *MANIFEST_TYPES):
                continue
            size = self._blob_size(digest)
            if size is None or size > mt.MAX_MANIFEST_BYTES:
                continue
            subj, art, annotations, media_type = self._summary(digest)
            if subj != subject.digest:
                continue
            if artifact_type is not None and art != artifact_type:
                continue
            out[digest] = Descriptor(
                media_type=media_type, digest=digest, size=size, artifact_type=art, annotations=annotations
            )
        return [out[d] for d in sorted(out)]


class OciLayoutTarget(LayoutReader):
    """An OCI image layout directory.

    ``create=False``: the directory must already be a layout (NotFoundError otherwise).
    ``create=True``: the directory may be absent or empty (it is made a layout on the first
    write) or already a layout (new content is added, tags accumulate); a non-empty
    directory that is not a layout is refused rather than written into.
    """

    def __init__(self, path: Path, *, create: bool) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = f"oci:{path}"
        self.create = create
        self._lock = threading.RLock()
        self._blob_locks: dict[str, threading.Lock] = {}
        self._created_dir = False
        self._index_before: bytes | None = None
        self._index_touched = False
        self._uploaded: set[str] = set()
        self._check_path()

    # --- setup ------------------------------------------------------------------------
    def _check_path(self) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise InvalidInputError(
                f"{self.name}: {p} exists and is not a directory",
                hint="an oci: reference names a layout directory; use oci-archive: for a tar file",
            )
        layout_file = p / mt.OCI_LAYOUT_FILE
        if layout_file.is_file():
            data = self._read_member(mt.OCI_LAYOUT_FILE, MAX_LAYOUT_FILE_BYTES)
            check_layout_file(data or b"", f"{self.name}: {mt.OCI_LAYOUT_FILE}")
            return
        if not self.create:
            if not p.exists():
                raise NotFoundError(f"{self.name}: directory {p} does not exist")
            raise NotFoundError(
                f"{self.name}: {p} is not an OCI image layout (no {mt.OCI_LAYOUT_FILE} file)",
                hint="point at a directory written by stella-oci, skopeo, oras or crane",
            )
        if p.exists() and any(p.iterdir()):
            raise InvalidInputError(
                f"{self.name}: {p} is a non-empty directory without an {mt.OCI_LAYOUT_FILE} file",
                hint="choose a new or empty directory, or an existing OCI layout",
            )

    def _ensure_layout(self) -> None:
        if not self.create:
            raise InvalidInputError(f"{self.name}: opened for reading only; cannot write to it")
        if (self.path / mt.OCI_LAYOUT_FILE).is_file():
            return
        with interrupts.creating():  # a stopped run's staging directory is never re-created
            if not self.path.exists():
                self.path.mkdir(parents=True)
                self._created_dir = True
            (self.path / BLOBS_DIR / "sha256").mkdir(parents=True, exist_ok=True)
        if not (self.path / INDEX_FILE).exists():
            self._write_atomic(INDEX_FILE, serialize_index(_EMPTY_INDEX))
        self._write_atomic(mt.OCI_LAYOUT_FILE, layout_file_bytes())

    def _write_atomic(self, relpath: str, data: bytes) -> None:
        dest = self.path / relpath
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # --- storage primitives -------------------------------------------------------------
    def _open_nofollow(self, relpath: str) -> BinaryIO | None:
        try:
            fd = os.open(self.path / relpath, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidInputError(
                f"{self.name}: cannot open {relpath} ({exc.strerror})",
                hint="layout files must be regular files, not symlinks",
            ) from None
        fh = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            fh.close()
            raise InvalidInputError(f"{self.name}: {relpath} is not a regular file")
        return fh

    def _read_member(self, relpath: str, limit: int) -> bytes | None:
        fh = self._open_nofollow(relpath)
        if fh is None:
            return None
        with fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise InvalidInputError(f"{self.name}: {relpath} is larger than {limit} bytes")
        return data

    def _blob_size(self, digest: str) -> int | None:
        try:
            st = os.lstat(self.path / blob_relpath(digest, self.name))
        except FileNotFoundError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    @contextlib.contextmanager
    def _stream_blob(self, digest: str, offset: int) -> Iterator[Iterator[bytes]]:
        rel = blob_relpath(digest, self.name)
        fh = self._open_nofollow(rel)
        if fh is None:
            raise NotFoundError(f"{self.name}: blob {digest} is not in the layout (no {rel})")
        with fh:
            if offset:
                fh.seek(offset)

            def chunks() -> Iterator[bytes]:
                while chunk := fh.read(CHUNK):
                    yield chunk

            yield chunks()

    # --- Target: writing ------------------------------------------------------------------
    def _blob_lock(self, digest: str) -> threading.Lock:
        with self._lock:
            return self._blob_locks.setdefault(digest, threading.Lock())

    def push_blob(self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None) -> PushOutcome:
        rel = blob_relpath(desc.digest, self.name)
        with self._lock:
            self._ensure_layout()
        with self._blob_lock(desc.digest):
            if self._blob_size(desc.digest) == desc.size:
                return PushOutcome.EXISTS
            with opener(0) as chunks:

                def counted() -> Iterator[bytes]:
                    for chunk in chunks:
                        if progress is not None and chunk:
                            progress(len(chunk))
                        yield chunk

                what = f"{self.name}: blob {desc.short()}"
                write_verified(counted(), self.path / rel, desc.digest, desc.size, what)
            with self._lock:
                self._uploaded.add(desc.digest)
        return PushOutcome.UPLOADED

    @contextlib.contextmanager
    def _index_locked(self) -> Iterator[None]:
        """Serialize index.json updates between threads and between processes (flock on the dir)."""
        with self._lock:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def push_manifest(self, desc: Descriptor, data: bytes) -> None:
        """Store the manifest blob and list it in index.json (untagged until :meth:`tag`)."""
        self._store_manifest(desc, data, ())

    def tag(self, desc: Descriptor, tag: str) -> None:
        """Point ``tag`` at a stored manifest (its index.json entry carries the ``ref.name``)."""
        self._store_manifest(desc, self._read_blob_small(desc.digest), (tag,))

    def _store_manifest(self, desc: Descriptor, data: bytes, tags: Sequence[str]) -> None:
        where = f"{self.name}: manifest {desc.digest}"
        check_digest(desc.digest, where)
        for tag in tags:
            check_tag(tag)
        actual = sha256_digest(data)
        if actual != desc.digest or len(data) != desc.size:
            raise VerificationError(
                f"{where}: the {len(data)} bytes given hash to {actual}, the descriptor states "
                f"{desc.digest} with {desc.size} bytes"
            )
        media_type = media_type_of(data, desc.media_type)
        with self._lock:
            self._ensure_layout()
            if self._blob_size(desc.digest) != desc.size:
                dest = self.path / blob_relpath(desc.digest, where)
                write_verified([data], dest, desc.digest, desc.size, where)
                self._uploaded.add(desc.digest)
            doc_art = _artifact_type_member(data)
            entry: dict[str, Any] = {"mediaType": media_type, "digest": desc.digest, "size": desc.size}
            if isinstance(doc_art, str):
                entry["artifactType"] = doc_art
            with self._index_locked():
                raw = self._read_member(INDEX_FILE, MAX_INDEX_BYTES)
                if not self._index_touched:
                    self._index_before, self._index_touched = raw, True
                index = self._load_index()
                manifests: list[dict[str, Any]] = index["manifests"]
                for tag in tags:
                    displaced = [e for e in manifests if ref_name(e) == tag]
                    manifests[:] = [e for e in manifests if ref_name(e) != tag]
                    # a manifest a tag moved away from stays listed (untagged), as in oras-go
                    for old in displaced:
                        if not any(e.get("digest") == old.get("digest") for e in manifests):
                            manifests.append(untagged(old))
                    manifests.append({**entry, "annotations": {mt.ANNOTATION_REF_NAME: tag}})
                if tags:
                    # an untagged entry is redundant once the digest carries a tag
                    manifests[:] = [
                        e for e in manifests if not (e.get("digest") == desc.digest and ref_name(e) is None)
                    ]
                elif not any(e.get("digest") == desc.digest for e in manifests):
                    manifests.append(entry)
                new = serialize_index(index)
                if new != raw:
                    self._write_atomic(INDEX_FILE, new)

    def untag(self, tag: str) -> None:
        """Remove a tag from index.json (the manifest stays listed untagged if nothing else lists it)."""
        with self._lock:
            self._ensure_layout()
            with self._index_locked():
                index = self._load_index()
                manifests: list[dict[str, Any]] = index["manifests"]
                gone = [e for e in manifests if ref_name(e) == tag]
                if not gone:
                    raise NotFoundError(f"{self.name}: no tag {tag!r} in {INDEX_FILE}")
                manifests[:] = [e for e in manifests if ref_name(e) != tag]
                for old in gone:
                    if not any(e.get("digest") == old.get("digest") for e in manifests):
                        manifests.append(untagged(old))
                self._write_atomic(INDEX_FILE, serialize_index(index))

    def abort(self) -> None:
        """Undo this session's writes: a directory we created goes; otherwise index.json is
        restored and the blobs this session added are removed."""
        with self._lock:
            if self._created_dir:
                shutil.rmtree(self.path, ignore_errors=True)
                self._created_dir = False
            else:
                if self._index_touched:
                    if self._index_before is None:
                        (self.path / INDEX_FILE).unlink(missing_ok=True)
                    else:
                        self._write_atomic(INDEX_FILE, self._index_before)
                for digest in self._uploaded:
                    (self.path / blob_relpath(digest, self.name)).unlink(missing_ok=True)
            self._uploaded.clear()
            self._index_touched = False
            self._index_before = None

    def commit(self) -> None:
        """Everything is already on disk; forget the undo state."""
        with self._lock:
            self._created_dir = False
            self._uploaded.clear()
            self._index_touched = False
            self._index_before = None


__all__ = [
    "BLOBS_DIR",
    "INDEX_FILE",
    "LayoutReader",
    "OciLayoutTarget",
    "blob_relpath",
    "check_digest",
    "check_layout_file",
    "layout_file_bytes",
    "parse_index_json",
    "serialize_index",
]
