"""Export bundles on disk: a directory, or a tar / tar.gz / tar.zst archive of one.

:func:`open_bundle` checks everything that can be checked before a byte goes out: the
export.json schema, every listed file's presence, size and digest (hashed in chunks), safe
paths, no symlink leaving the bundle, no unlisted file. Archives are unpacked, member by
member and without trusting them (no links, devices, absolute or ``..`` paths), into a
temporary directory that is removed when the ``with`` block ends.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from stella_oci import interrupts
from stella_oci.errors import InvalidInputError, StellaOciError
from stella_oci.export.annotations import DSSE_MEDIA_TYPE, EXPORT_MANIFEST_MEDIA_TYPE, IN_TOTO_MEDIA_TYPE
from stella_oci.export.models import ContentEntry, ExportManifest
from stella_oci.export.paths import check_path_set, check_relative_path, resolve_inside, resolve_inside_real
from stella_oci.jsonio import parse_json_bytes
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import file_digest

#: ``on_hashed(path, size, done, total)``: a bundle file was checked (progress of a push: hashed,
#: or, for a listed file whose digest a push checks while uploading, its presence and size).
HashedFn = Callable[[str, int, int, int], None]

EXPORT_JSON = "export.json"
PROVENANCE_JSON = "provenance.json"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_EXPORT_JSON_BYTES = 16 * 1024 * 1024
"""The largest export.json, on push and on pull alike (docs/artifact-format.md): a bundle
whose export.json is larger is refused (exit 2), an artifact whose export.json layer announces
more is refused from its descriptor before download (exit 3)."""
BUNDLE_FILE_HINT = "regenerate export.json, or restore the file the export produced"
MANIFEST_OVERHEAD_BYTES = 16 * 1024
"""Config descriptor and io.stellaops.* annotations, generously."""


@dataclass(frozen=True, slots=True)
class BundleFile:
    """One file that becomes one layer. Compact (slots, strings shared with export.json's
    model, no pathlib object and no message kept): a bundle may list ~16,000 files (issue 15)."""

    path: str
    """Bundle-relative POSIX path; the layer's ``org.opencontainers.image.title``."""
    media_type: str
    digest: str
    size: int
    role: str
    """``export-manifest``, ``content``, ``provenance`` or ``signature``."""
    hashed: bool = True
    """False for a listed file whose digest was taken from export.json without hashing the file
    (a push: the upload hashes it while it streams, once, and the copy engine checks a file
    the registry did not read before the manifest is written)."""
    real: str | None = None
    """Where the bytes are on disk; None for ``root/path`` (no link on the way)."""
    root: str = ""
    """The bundle directory, resolved (one string shared by every file)."""
    listed_in: str = ""
    """export.json's path, for messages (one string shared by every file)."""
    index: int = -1
    """The position of the file in export.json contents; -1 for a file it does not list."""

    @property
    def file(self) -> Path:
        """Where the bytes are on disk."""
        return Path(self.location)

    @property
    def location(self) -> str:
        """:attr:`file` as a string (a push reads every file: no pathlib object per file, whose
        parts CPython interns, growing the interned-string table for good)."""
        return self.real if self.real is not None else os.path.join(self.root, self.path)

    @property
    def where(self) -> str:
        """Where export.json lists it (``.../export.json /contents/N``), for messages; empty
        for a file it does not list."""
        return f"{self.listed_in} /contents/{self.index}" if self.index >= 0 else ""


@dataclass
class Bundle:
    root: Path
    manifest: ExportManifest
    """export.json, as a model (the JSON document itself is not kept: :attr:`doc`)."""
    files: list[BundleFile]
    """Layer order: export.json, contents sorted by path, provenance.json, DSSE envelopes."""
    ignored: list[str] = field(default_factory=list)
    """Unlisted files left out because ``allow_unlisted`` was given."""
    confirmed: set[str] = field(default_factory=set)
    """Digests of files not hashed by the scan (``BundleFile.hashed`` False) whose bytes a push
    has verified since (while they streamed, or hashed because the registry had them)."""

    @property
    def doc(self) -> dict[str, Any]:
        """export.json's JSON members (rebuilt from :attr:`manifest`: the parsed document is
        dropped once checked, issue 15)."""
        return self.manifest.to_json_obj()

    @property
    def export_json(self) -> BundleFile:
        return self.files[0]

    @property
    def provenance(self) -> BundleFile | None:
        return next((f for f in self.files if f.role == "provenance"), None)


def is_signature_path(path: str) -> bool:
    """A DSSE envelope that travels as a layer: ``*.dsse.json`` at the top or under ``signatures/``."""
    return path.endswith(".dsse.json") and ("/" not in path or path.startswith("signatures/"))


#: Media types of the other files under ``signatures/`` (by name ending; first match wins).
SIGNATURE_FILE_MEDIA_TYPES: tuple[tuple[str, str], ...] = (
    (".dsse.json", DSSE_MEDIA_TYPE),
    (".sigstore.json", "application/vnd.dev.sigstore.bundle.v0.3+json"),
    (".sig", "application/vnd.stellaops.export.signature.v1"),
    (".pem", "application/pem-certificate-chain"),
    (".crt", "application/pem-certificate-chain"),
    (".json", "application/json"),
)


def signature_media_type(path: str) -> str:
    """The layer media type of a signature file (``*.dsse.json`` or anything under ``signatures/``):
    a function of its name, so a pull can check it."""
    for suffix, media in SIGNATURE_FILE_MEDIA_TYPES:
        if path.endswith(suffix):
            return media
    return DEFAULT_CONTENT_TYPE


def is_signature_file(path: str) -> bool:
    """Travels with the export as a signature layer: a DSSE envelope, or any file under ``signatures/``."""
    return is_signature_path(path) or path.startswith("signatures/")


def parse_export_json(data: bytes, source: str = EXPORT_JSON) -> tuple[dict[str, Any], ExportManifest]:
    """Parse and validate export.json bytes: bounded JSON, the v1alpha2 schema, the model, and
    the contents paths (:func:`check_contents_paths`); exit 2 on any problem."""
    doc = parse_json_bytes(data, source, max_bytes=MAX_EXPORT_JSON_BYTES)
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{source}: not a JSON object")
    model = ExportManifest.from_json_obj(doc, source=source)
    check_contents_paths(doc, source)
    return doc, model


def load_export_json(path: Path, source: str = EXPORT_JSON) -> tuple[dict[str, Any], ExportManifest]:
    """Read, parse and schema-validate an export.json; exit 2 on any problem."""
    if not path.is_file():
        raise InvalidInputError(
            f"{source}: not found",
            hint="a bundle is a directory (or tar archive) with export.json at its top",
        )
    size = path.stat().st_size
    if size > MAX_EXPORT_JSON_BYTES:
        raise InvalidInputError(f"{source}: {size} bytes, more than the {MAX_EXPORT_JSON_BYTES} allowed")
    with open(path, "rb") as fh:
        # parsed whole: bounded in size (above, and again while reading) and in nesting depth;
        # read at its size (a read of the limit would allocate 16 MiB for any export.json), and
        # on to the limit should it have grown since
        data = fh.read(size + 1)
        if len(data) > size:
            data += fh.read(MAX_EXPORT_JSON_BYTES + 1 - len(data))
    return parse_export_json(data, source)


def check_contents_paths(doc: dict[str, Any], source: str) -> set[str]:
    """The paths export.json lists, each a safe relative path, none twice, none export.json,
    and all of them (with export.json) files of one tree on any file system
    (:func:`~stella_oci.export.paths.check_path_set`). Returns the set of paths."""
    listed: set[str] = set()
    named: list[tuple[str, str]] = [(EXPORT_JSON, source)]
    for index, entry in enumerate(doc["contents"]):
        path = entry["path"]
        where = f"{source} /contents/{index}/path"
        check_relative_path(path, where=where)
        if path in listed:
            raise InvalidInputError(f"{where}: {path!r} is listed twice in contents")
        if path == EXPORT_JSON:
            raise InvalidInputError(f"{where}: export.json cannot list itself in contents")
        listed.add(path)
        named.append((path, where))
    check_path_set(named)
    return listed


def estimate_manifest_bytes(doc: dict[str, Any], extra_layers: int = 0) -> int:
    """An upper estimate of the artifact manifest's size, from export.json alone (no hashing).

    Each contents entry becomes one layer descriptor (title, digest, size, media type);
    export.json, provenance.json and DSSE envelopes add one each; the rest (config,
    io.stellaops.* annotations) is bounded by :data:`MANIFEST_OVERHEAD_BYTES`.
    """
    per_layer = len('{"annotations":{"org.opencontainers.image.title":""},"digest":"","mediaType":"","size":},')
    total = MANIFEST_OVERHEAD_BYTES
    for entry in doc["contents"]:
        media = entry.get("contentType") or DEFAULT_CONTENT_TYPE
        total += per_layer + len(entry["path"]) + 71 + len(media) + len(str(entry["bytes"]))
    total += (1 + extra_layers) * (per_layer + 71 + 100 + 20 + 64)
    return total


def check_manifest_fits(doc: dict[str, Any], source: str, extra_layers: int = 0) -> None:
    """Refuse (exit 2), before anything is hashed or sent, a bundle whose manifest would not fit
    the 4 MiB registries accept."""
    estimate = estimate_manifest_bytes(doc, extra_layers)
    if estimate > mt.MAX_MANIFEST_BYTES:
        n = len(doc["contents"])
        raise InvalidInputError(
            f"{source}: {n} files make a manifest of about {estimate} bytes, more than the "
            f"{mt.MAX_MANIFEST_BYTES} bytes (4 MiB) registries accept for one manifest",
            hint="split the export into several bundles, or pack small files into an archive listed "
            "as one file (about 16,000 files fit in one manifest, fewer with long paths)",
            details={"files": n, "estimatedManifestBytes": estimate, "limit": mt.MAX_MANIFEST_BYTES},
        )


def _walk_files(root: Path) -> Iterator[str]:
    """Every non-directory entry below root, as bundle-relative POSIX paths (links not followed)."""
    top = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        rel_dir = os.path.relpath(dirpath, top).replace(os.sep, "/")
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                filenames.append(d)
                dirnames.remove(d)
        for name in filenames:
            yield name if rel_dir == "." else f"{rel_dir}/{name}"


def _check_listed_file(
    root: Path,
    real_root: str,
    entry: ContentEntry,
    where: str,
    mismatch_error: type[StellaOciError],
    on_hashed: HashedFn | None = None,
    progress: tuple[int, int] = (0, 0),
    *,
    hash_file: bool = True,
) -> str:
    """The file a contents entry lists: present, inside the bundle (``real_root``: the bundle
    directory resolved), with the stated size and digest (the digest only with ``hash_file``:
    else the size from the file system, and the digest is checked while the file uploads);
    returns where it is on disk (:func:`~stella_oci.export.paths.resolve_inside_real`: no
    pathlib object per file)."""
    path = entry.path
    real = resolve_inside_real(real_root, path, where=where + "/path")
    if not os.path.isfile(real):
        # for verify DIR a deleted file is as much a changed bundle as a modified one (exit 3)
        raise mismatch_error(
            f"{where}: listed file {path!r} is missing from the bundle at {root / path}",
            hint="restore the file the export produced (pull it again), or regenerate export.json",
        )
    if not hash_file:
        actual, actual_size = entry.digest, os.stat(real).st_size
    else:
        actual, actual_size = file_digest(real)
    if on_hashed is not None:
        on_hashed(path, actual_size, *progress)
    if actual_size != entry.bytes:
        raise mismatch_error(
            f"{where}/bytes: {path!r} is {actual_size} bytes, export.json states {entry.bytes}",
            hint=BUNDLE_FILE_HINT,
        )
    if actual != entry.digest:
        raise mismatch_error(
            f"{where}/digest: {path!r} hashes to {actual}, export.json states {entry.digest}",
            hint=BUNDLE_FILE_HINT,
        )
    return real


def scan_directory(
    root: Path,
    *,
    allow_unlisted: bool = False,
    mismatch_error: type[StellaOciError] = InvalidInputError,
    on_hashed: HashedFn | None = None,
    hash_contents: bool = True,
) -> Bundle:
    """Check a bundle directory and list its layers (see module docstring).

    A listed file whose size or digest differs from export.json raises ``mismatch_error``:
    invalid input (exit 2) before a push, a verification failure (exit 3) for ``verify DIR``.
    ``on_hashed(path, size, done, total)`` is called after each listed file was hashed (progress).

    ``hash_contents=False`` (a push): listed files are checked for presence and size only and
    keep export.json's digest (``BundleFile.hashed`` False); their bytes are hashed once, while
    they upload, against that digest, and the copy engine hashes those the registry did not
    read (it had them) before the manifest is written (``BundleSource.confirm``). A
    wrong file is then a verification failure (exit 3) with no manifest pushed. export.json,
    provenance.json and signature files are hashed here either way (their digests are not
    written anywhere before).
    """
    if not root.is_dir():
        raise InvalidInputError(f"{root}: not a directory or a .tar/.tar.gz/.tar.zst archive")
    export_path = root / EXPORT_JSON
    if export_path.is_symlink():
        raise InvalidInputError(f"{export_path}: export.json must be a regular file, not a symbolic link")
    source = str(export_path)
    doc, model = load_export_json(export_path, source=source)
    listed = check_contents_paths(doc, source)
    check_manifest_fits(doc, source)
    del doc  # the model has it all: not kept beside it (issue 15)
    digest, size = file_digest(export_path)
    files = [BundleFile(EXPORT_JSON, EXPORT_MANIFEST_MEDIA_TYPE, digest, size, "export-manifest", real=source)]
    contents = model.contents
    to_hash = len(contents) + 1
    if on_hashed is not None:
        on_hashed(EXPORT_JSON, size, 1, to_hash)

    real_root = os.path.realpath(root)
    inside = real_root.rstrip(os.sep) + os.sep
    order = sorted(range(len(contents)), key=lambda i: contents[i].path)
    listed_digests = {digest}
    for index in order:
        entry = contents[index]
        # a digest listed twice is uploaded once: the later files with it are hashed here
        hash_file = hash_contents or entry.digest in listed_digests
        listed_digests.add(entry.digest)
        real = _check_listed_file(
            root,
            real_root,
            entry,
            f"{source} /contents/{index}",
            mismatch_error,
            on_hashed,
            (len(files) + 1, to_hash),
            hash_file=hash_file,
        )
        files.append(
            BundleFile(
                entry.path,
                entry.content_type or DEFAULT_CONTENT_TYPE,
                entry.digest,
                entry.bytes,
                "content",
                hashed=hash_file,
                real=None if real == inside + entry.path else real,
                root=real_root,
                listed_in=source,
                index=index,
            )
        )
    del listed_digests

    extras: list[BundleFile] = []
    ignored: list[str] = []
    unlisted: list[str] = []
    for rel in sorted(_walk_files(root)):
        if rel == EXPORT_JSON or rel in listed:
            continue
        if rel == PROVENANCE_JSON or is_signature_file(rel):
            found = resolve_inside(root, rel, where=str(root / rel))
            if not found.is_file():
                raise InvalidInputError(f"{root / rel}: not a regular file")
            d, s = file_digest(found)
            role, media = (
                ("provenance", IN_TOTO_MEDIA_TYPE)
                if rel == PROVENANCE_JSON
                else ("signature", signature_media_type(rel))
            )
            extras.append(BundleFile(rel, media, d, s, role, real=str(found)))
        else:
            unlisted.append(rel)
    if unlisted and not allow_unlisted:
        shown = ", ".join(repr(u) for u in unlisted[:10]) + (" ..." if len(unlisted) > 10 else "")
        raise InvalidInputError(
            f"{root}: {len(unlisted)} file(s) not listed in export.json contents: {shown}",
            hint="nothing leaves that export.json does not account for: list them, remove them, "
            "or pass --allow-unlisted to leave them behind",
            details={"unlisted": unlisted},
        )
    ignored.extend(unlisted)
    extras.sort(key=lambda f: (f.role != "provenance", f.path))
    files.extend(extras)
    # e.g. a listed PROVENANCE.JSON beside provenance.json; (str(root / f.path), without a
    # pathlib object per file: f.path is a checked relative path)
    prefix = str(root / "x")[:-1]
    check_path_set((f.path, prefix + f.path) for f in files)
    return Bundle(root=root, manifest=model, files=files, ignored=sorted(ignored))


# ---------------------------------------------------------------------------- archives

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


MAX_ARCHIVE_MEMBERS = 100_000
"""Members (files and directories) a bundle archive may hold; a manifest fits ~16,000 files."""
MAX_EXTENDED_HEADER_BYTES = 1024 * 1024
"""PAX and GNU long-name headers are read into memory by tarfile: refuse bigger ones."""
MAX_EXTRA_FILE_BYTES = 64 * 1024 * 1024
"""provenance.json and each DSSE envelope (files export.json does not list)."""
MAX_ARCHIVE_ENV = "STELLA_OCI_MAX_ARCHIVE_BYTES"
DEFAULT_MAX_ARCHIVE_BYTES = 256 * 1024**3
"""Bytes an archive may unpack to (``STELLA_OCI_MAX_ARCHIVE_BYTES``); free space is checked too."""


class BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses oversized PAX / GNU long-name headers before tarfile reads them."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
            if self.size > MAX_EXTENDED_HEADER_BYTES:
                raise tarfile.HeaderError(
                    f"an extended header of {self.size} bytes (more than {MAX_EXTENDED_HEADER_BYTES})"
                )
        return super()._proc_member(tarfile_)  # type: ignore[misc,no-any-return]


@contextmanager
def _open_tar_stream(path: Path) -> Iterator[tarfile.TarFile]:
    name = path.name
    if name.endswith((".tar.zst", ".tar.zstd")):
        try:
            import zstandard
        except ImportError:
            raise InvalidInputError(
                f"{path}: reading .tar.zst needs the 'zstandard' package: pip install 'stella-oci[zstd]'"
            ) from None
        with open(path, "rb") as raw:
            reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw)
            with tarfile.open(fileobj=reader, mode="r|", tarinfo=BoundedTarInfo) as tar:
                yield tar
    else:
        mode = "r|gz" if name.endswith((".tar.gz", ".tgz")) else "r|"
        with tarfile.open(path, mode=mode, tarinfo=BoundedTarInfo) as tar:  # type: ignore[call-overload]
            yield tar


def _member_name(member: tarfile.TarInfo, where: str) -> str | None:
    """The member's normalized name; None for the archive's root directory entry. Links,
    devices, FIFOs, sparse files and unsafe names are refused."""
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if name in ("", ".") and member.isdir():
        return None
    if member.issparse() or not (member.isfile() or member.isdir()):
        kind = (
            "a link" if (member.issym() or member.islnk())
            else "a sparse file" if member.issparse()
            else "a device or special file"
        )
        raise InvalidInputError(f"{where}: is {kind}; bundle archives may hold only files and directories")
    check_relative_path(name, where=where)
    return name


@dataclass
class _ArchivePlan:
    """What the header scan found: the bundle root inside the archive and what to extract."""

    prefix: str
    export_data: bytes
    members: list[tuple[str, int]]
    """(archive name, size) of every regular file, in archive order."""
    extract: dict[str, int]
    """Archive names to write -> the size export.json allows them."""


class _MemberRules:
    """What export.json allows in an archive: each file listed with its size, provenance.json
    and the signature files (DSSE envelopes, everything under signatures/), each bounded."""

    def __init__(self, archive: Path, prefix: str, doc: dict[str, Any], allow_unlisted: bool) -> None:
        self.archive = archive
        self.prefix = prefix
        self.sizes = {str(entry["path"]): int(entry["bytes"]) for entry in doc["contents"]}
        self.allow_unlisted = allow_unlisted
        self.unlisted: list[str] = []

    def check(self, name: str, size: int) -> bool:
        """True to extract ``name``; raise for a member export.json does not allow."""
        where = f"{self.archive} member {name!r}"
        if not name.startswith(self.prefix):
            raise InvalidInputError(
                f"{where}: outside the bundle directory {self.prefix!r} that holds export.json",
                hint="nothing was unpacked; an archive holds one bundle, at its top or in one directory",
            )
        rel = name[len(self.prefix) :]
        if rel in self.sizes:
            if size != self.sizes[rel]:
                raise InvalidInputError(
                    f"{where}: {size} bytes, but export.json lists {rel!r} with {self.sizes[rel]} bytes",
                    hint="nothing was unpacked; rebuild the archive from the bundle export.json describes",
                )
            return True
        if rel == PROVENANCE_JSON or is_signature_file(rel):
            if size > MAX_EXTRA_FILE_BYTES:
                raise InvalidInputError(
                    f"{where}: {size} bytes, more than the {MAX_EXTRA_FILE_BYTES} allowed for {rel}",
                    hint="nothing was unpacked",
                )
            return True
        if not self.allow_unlisted:
            raise InvalidInputError(
                f"{where}: {rel!r} ({size} bytes) is not listed in export.json contents",
                hint="nothing was unpacked; nothing leaves that export.json does not account for: list it, "
                "remove it, or pass --allow-unlisted to leave it behind",
                details={"unlisted": [rel]},
            )
        self.unlisted.append(rel)
        return False


def _read_export_member(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> bytes:
    """export.json's bytes from the archive, refused from its header when over the limit."""
    if member.size > MAX_EXPORT_JSON_BYTES:
        raise InvalidInputError(
            f"{where}: {member.size} bytes, more than the {MAX_EXPORT_JSON_BYTES} allowed for export.json"
        )
    src = tar.extractfile(member)
    if src is None:
        raise InvalidInputError(f"{where}: cannot be read")
    return src.read(MAX_EXPORT_JSON_BYTES + 1)


def _scan_archive(archive: Path, *, allow_unlisted: bool) -> _ArchivePlan:
    """Read the headers (no byte is written): export.json (bounded) and every member's name,
    type and size, each checked against export.json as soon as export.json has been read
    (an export.json at the front, as stella-oci and ``tar -C bundle export.json .`` put it,
    stops a bomb at its header, before its bytes are even decompressed)."""
    members: list[tuple[str, int]] = []
    names: set[str] = set()
    rules: _MemberRules | None = None
    export_data = b""
    extract: dict[str, int] = {}
    with _open_tar_stream(archive) as tar:
        for member in tar:
            where = f"{archive} member {member.name!r}"
            name = _member_name(member, where)
            _forget_headers(tar)
            if name is None:
                continue
            if len(names) >= MAX_ARCHIVE_MEMBERS:
                raise InvalidInputError(f"{archive}: more than {MAX_ARCHIVE_MEMBERS} members")
            if name in names:
                raise InvalidInputError(f"{archive}: member {name!r} appears twice")
            names.add(name)
            if member.isdir():
                continue
            members.append((name, member.size))
            parts = name.split("/")
            if rules is None and parts[-1] == EXPORT_JSON and len(parts) <= 2:
                export_data = _read_export_member(tar, member, where)
                prefix = name[: -len(EXPORT_JSON)]
                source = f"{archive}: {name}"
                doc, _ = parse_export_json(export_data, source)
                check_manifest_fits(doc, source)
                rules = _MemberRules(archive, prefix, doc, allow_unlisted)
                extract[name] = len(export_data)
                for earlier, size in members[:-1]:
                    if rules.check(earlier, size):
                        extract[earlier] = size
                continue
            if rules is not None and rules.check(name, member.size):
                extract[name] = member.size
    if rules is None:
        raise InvalidInputError(
            f"{archive}: no export.json at the top of the archive (or of its single directory)"
        )
    return _ArchivePlan(rules.prefix, export_data, members, extract)


def _check_space(archive: Path, dest: Path, total: int) -> None:
    limit_text = os.environ.get(MAX_ARCHIVE_ENV, "").strip()
    try:
        limit = int(limit_text) if limit_text else DEFAULT_MAX_ARCHIVE_BYTES
    except ValueError:
        raise InvalidInputError(f"{MAX_ARCHIVE_ENV}={limit_text!r}: not a number of bytes") from None
    if total > limit:
        raise InvalidInputError(
            f"{archive}: would unpack to {total} bytes, more than the {limit} allowed",
            hint=f"set {MAX_ARCHIVE_ENV} to a larger number of bytes, or push the bundle as a directory",
            details={"bytes": total, "limit": limit},
        )
    free = shutil.disk_usage(dest).free
    if total > free:
        raise InvalidInputError(
            f"{archive}: would unpack to {total} bytes, but {dest.parent} has {free} bytes free",
            hint="set TMPDIR to a file system with more room, or push the bundle as a directory",
        )


def extract_archive(
    archive: Path, dest: Path, *, allow_unlisted: bool = False, left_behind: list[str] | None = None
) -> Path:
    """Unpack a bundle archive into ``dest`` safely; return the bundle root inside it.

    Two passes. The first reads only headers and export.json (at most 64 MiB): every member
    must be a regular file or directory with a safe name (no link, device, FIFO, sparse file,
    absolute or ``..`` name, no name twice, at most 100,000 members, extended headers at most
    1 MiB), every file must be listed in export.json with exactly the listed size (or be
    provenance.json or a signature file - a DSSE envelope or anything under ``signatures/`` -, at
    most 64 MiB), and the total must fit the cap
    (``STELLA_OCI_MAX_ARCHIVE_BYTES``, default 256 GiB) and the free space. Only then does the
    second pass write, each file at most its listed size; anything refused in the first pass
    has written nothing (exit 2). A single top-level directory holding export.json is taken
    as the bundle root. The bundle paths of files not unpacked (unlisted, with
    ``allow_unlisted``) are appended to ``left_behind``.
    """
    unreadable: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, OSError, *_decompression_errors())
    try:
        plan = _scan_archive(archive, allow_unlisted=allow_unlisted)
        _check_space(archive, dest, sum(plan.extract.values()))
        if left_behind is not None:
            left_behind.extend(
                name[len(plan.prefix) :] for name, _ in plan.members if name not in plan.extract
            )
        root = dest / plan.prefix.rstrip("/") if plan.prefix else dest
        seen = 0
        with _open_tar_stream(archive) as tar:
            for member in tar:
                _forget_headers(tar)
                where = f"{archive} member {member.name!r}"
                name = _member_name(member, where)
                if name is None or member.isdir():
                    continue
                if seen >= len(plan.members) or plan.members[seen] != (name, member.size):
                    raise InvalidInputError(f"{archive}: changed while it was being read")
                seen += 1
                allowed = plan.extract.get(name)
                if allowed is None:
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:
                    raise InvalidInputError(f"{where}: cannot be read")
                with src, open(target, "xb") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
                    if out.tell() != allowed:
                        raise InvalidInputError(f"{where}: {out.tell()} bytes, expected {allowed}")
                os.chmod(target, stat.S_IMODE(member.mode) & 0o755 | 0o600)
    except unreadable as exc:
        if isinstance(exc, FileExistsError):
            raise InvalidInputError(f"{archive}: member {exc.filename} appears twice") from None
        raise InvalidInputError(f"{archive}: not a readable tar archive: {exc}") from None
    if not (root / EXPORT_JSON).is_file():
        raise InvalidInputError(f"{archive}: export.json vanished while unpacking")
    return root


def _forget_headers(tar: tarfile.TarFile) -> None:
    """Stream mode: tarfile keeps every header it read in ``members``; keep none."""
    members: list[tarfile.TarInfo] = getattr(tar, "members", [])
    members.clear()


def _decompression_errors() -> tuple[type[Exception], ...]:
    import zlib

    try:
        import zstandard
    except ImportError:
        return (zlib.error,)
    return (zlib.error, zstandard.ZstdError)


@contextmanager
def open_bundle(
    path: Path, *, allow_unlisted: bool = False, on_hashed: HashedFn | None = None, hash_contents: bool = True
) -> Iterator[Bundle]:
    """Open a bundle directory or archive for pushing; archives are unpacked to a temp dir.
    ``hash_contents``: see :func:`scan_directory` (push passes False: one hash pass per byte)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{path}: no such bundle directory or archive")
    if path.is_dir():
        yield scan_directory(path, allow_unlisted=allow_unlisted, on_hashed=on_hashed, hash_contents=hash_contents)
        return
    if not is_archive(path):
        raise InvalidInputError(
            f"{path}: not a bundle: expected a directory or a .tar, .tar.gz or .tar.zst archive"
        )
    with interrupts.temp_dir("stella-oci-bundle-") as tmp:
        left: list[str] = []
        root = extract_archive(path, tmp, allow_unlisted=allow_unlisted, left_behind=left)
        bundle = scan_directory(root, allow_unlisted=allow_unlisted, on_hashed=on_hashed, hash_contents=hash_contents)
        bundle.ignored = sorted({*bundle.ignored, *left})
        yield bundle
