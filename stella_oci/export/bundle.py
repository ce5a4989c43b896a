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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from stella_oci.errors import InvalidInputError, StellaOciError
from stella_oci.export.annotations import DSSE_MEDIA_TYPE, EXPORT_MANIFEST_MEDIA_TYPE, IN_TOTO_MEDIA_TYPE
from stella_oci.export.models import ExportManifest
from stella_oci.export.paths import check_relative_path, resolve_inside
from stella_oci.export.schema import parse_json_bytes
from stella_oci.oci.digest import file_digest

EXPORT_JSON = "export.json"
PROVENANCE_JSON = "provenance.json"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_EXPORT_JSON_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class BundleFile:
    """One file that becomes one layer."""

    path: str
    """Bundle-relative POSIX path; the layer's ``org.opencontainers.image.title``."""
    file: Path
    """Where the bytes are on disk."""
    media_type: str
    digest: str
    size: int
    role: str
    """``export-manifest``, ``content``, ``provenance`` or ``signature``."""


@dataclass
class Bundle:
    root: Path
    doc: dict[str, Any]
    manifest: ExportManifest
    files: list[BundleFile]
    """Layer order: export.json, contents sorted by path, provenance.json, DSSE envelopes."""
    ignored: list[str] = field(default_factory=list)
    """Unlisted files left out because ``allow_unlisted`` was given."""

    @property
    def export_json(self) -> BundleFile:
        return self.files[0]

    @property
    def provenance(self) -> BundleFile | None:
        return next((f for f in self.files if f.role == "provenance"), None)


def is_signature_path(path: str) -> bool:
    return path.endswith(".dsse.json") and ("/" not in path or path.startswith("signatures/"))


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
        # parsed whole: bounded in size (above, and again while reading) and in nesting depth
        doc = parse_json_bytes(fh.read(MAX_EXPORT_JSON_BYTES + 1), source, max_bytes=MAX_EXPORT_JSON_BYTES)
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{source}: not a JSON object")
    return doc, ExportManifest.from_json_obj(doc, source=source)


def _walk_files(root: Path) -> Iterator[str]:
    """Every non-directory entry below root, as bundle-relative POSIX paths (links not followed)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        for d in list(dirnames):
            if (Path(dirpath) / d).is_symlink():
                filenames.append(d)
                dirnames.remove(d)
        for name in filenames:
            yield (rel_dir / name).as_posix() if str(rel_dir) != "." else name


def scan_directory(
    root: Path,
    *,
    allow_unlisted: bool = False,
    mismatch_error: type[StellaOciError] = InvalidInputError,
) -> Bundle:
    """Check a bundle directory and list its layers (see module docstring).

    A listed file whose size or digest differs from export.json raises ``mismatch_error``:
    invalid input (exit 2) before a push, a verification failure (exit 3) for ``verify DIR``.
    """
    if not root.is_dir():
        raise InvalidInputError(f"{root}: not a directory or a .tar/.tar.gz/.tar.zst archive")
    export_path = root / EXPORT_JSON
    if export_path.is_symlink():
        raise InvalidInputError(f"{export_path}: export.json must be a regular file, not a symbolic link")
    doc, model = load_export_json(export_path, source=str(export_path))
    digest, size = file_digest(export_path)
    files = [
        BundleFile(EXPORT_JSON, export_path, EXPORT_MANIFEST_MEDIA_TYPE, digest, size, "export-manifest")
    ]

    listed: set[str] = set()
    order = sorted(range(len(doc["contents"])), key=lambda i: str(doc["contents"][i]["path"]))
    for index, entry in enumerate(doc["contents"]):
        path = entry["path"]
        where = f"{export_path} /contents/{index}/path"
        check_relative_path(path, where=where)
        if path in listed:
            raise InvalidInputError(f"{where}: {path!r} is listed twice in contents")
        if path == EXPORT_JSON:
            raise InvalidInputError(f"{where}: export.json cannot list itself in contents")
        listed.add(path)
    for index in order:
        entry = doc["contents"][index]
        path = entry["path"]
        where = f"{export_path} /contents/{index}"
        real = resolve_inside(root, path, where=where + "/path")
        if not real.is_file():
            raise InvalidInputError(
                f"{where}: listed file {path!r} is missing from the bundle at {root / path}"
            )
        actual, actual_size = file_digest(real)
        if actual_size != entry["bytes"]:
            raise mismatch_error(
                f"{where}/bytes: {path!r} is {actual_size} bytes, export.json states {entry['bytes']}",
                hint="regenerate export.json, or restore the file the export produced",
            )
        if actual != entry["digest"]:
            raise mismatch_error(
                f"{where}/digest: {path!r} hashes to {actual}, export.json states {entry['digest']}",
                hint="regenerate export.json, or restore the file the export produced",
            )
        files.append(
            BundleFile(
                path,
                real,
                entry.get("contentType") or DEFAULT_CONTENT_TYPE,
                entry["digest"],
                entry["bytes"],
                "content",
            )
        )

    extras: list[BundleFile] = []
    ignored: list[str] = []
    unlisted: list[str] = []
    for rel in sorted(_walk_files(root)):
        if rel == EXPORT_JSON or rel in listed:
            continue
        if rel == PROVENANCE_JSON or is_signature_path(rel):
            real = resolve_inside(root, rel, where=str(root / rel))
            if not real.is_file():
                raise InvalidInputError(f"{root / rel}: not a regular file")
            d, s = file_digest(real)
            role, media = (
                ("provenance", IN_TOTO_MEDIA_TYPE)
                if rel == PROVENANCE_JSON
                else ("signature", DSSE_MEDIA_TYPE)
            )
            extras.append(BundleFile(rel, real, media, d, s, role))
        elif rel.startswith("signatures/"):
            ignored.append(rel)
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
    return Bundle(root=root, doc=doc, manifest=model, files=files + extras, ignored=sorted(ignored))


# ---------------------------------------------------------------------------- archives

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


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
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                yield tar
    else:
        mode = "r|gz" if name.endswith((".tar.gz", ".tgz")) else "r|"
        with tarfile.open(path, mode=mode) as tar:  # type: ignore[call-overload]
            yield tar


def extract_archive(archive: Path, dest: Path) -> Path:
    """Unpack a bundle archive into ``dest`` safely; return the bundle root inside it.

    Only directories and regular files are accepted; a member that is a link, a device or a
    FIFO, or whose name is absolute or has a ``..`` segment, stops the extraction (exit 2).
    A single top-level directory holding export.json is taken as the bundle root.
    """
    try:
        with _open_tar_stream(archive) as tar:
            for member in tar:
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                name = name.rstrip("/")
                if name in ("", "."):
                    continue
                where = f"{archive} member {member.name!r}"
                if not (member.isfile() or member.isdir()):
                    kind = "a link" if (member.issym() or member.islnk()) else "a device or special file"
                    raise InvalidInputError(
                        f"{where}: is {kind}; bundle archives may hold only files and directories"
                    )
                check_relative_path(name, where=where)
                target = dest / name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:
                    raise InvalidInputError(f"{where}: cannot be read")
                with src, open(target, "xb") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
                os.chmod(target, stat.S_IMODE(member.mode) & 0o755 | 0o600)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileExistsError):
            raise InvalidInputError(f"{archive}: member {exc.filename} appears twice") from None
        raise InvalidInputError(f"{archive}: not a readable tar archive: {exc}") from None
    if (dest / EXPORT_JSON).is_file():
        return dest
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / EXPORT_JSON).is_file():
        return entries[0]
    raise InvalidInputError(
        f"{archive}: no export.json at the top of the archive (or of its single directory)"
    )


@contextmanager
def open_bundle(path: Path, *, allow_unlisted: bool = False) -> Iterator[Bundle]:
    """Open a bundle directory or archive for pushing; archives are unpacked to a temp dir."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{path}: no such bundle directory or archive")
    if path.is_dir():
        yield scan_directory(path, allow_unlisted=allow_unlisted)
        return
    if not is_archive(path):
        raise InvalidInputError(
            f"{path}: not a bundle: expected a directory or a .tar, .tar.gz or .tar.zst archive"
        )
    tmp = Path(tempfile.mkdtemp(prefix="stella-oci-bundle-"))
    try:
        root = extract_archive(path, tmp)
        yield scan_directory(root, allow_unlisted=allow_unlisted)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
