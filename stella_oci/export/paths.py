"""Paths named by a bundle or an artifact are never trusted.

The schema allows ``..`` segments (``^[A-Za-z0-9._/-]+$``); stella-oci does not. A path is
accepted only when it is relative, uses ``/`` separators, has no empty, ``.`` or ``..``
segment, is at most :data:`MAX_PATH_CHARS` characters in at most :data:`MAX_PATH_SEGMENTS`
segments, and — once joined to a root directory — does not leave that root through a
symbolic link.

A *set* of paths (a bundle's files, an artifact's layer titles) must also be writable to any
file system: :func:`check_path_set` refuses the same path twice, two paths that differ only in
case or Unicode normalization (they would be one file on macOS and Windows), and a path that
is a file in one place and a directory in another (``data/a`` and ``data/a/b``).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from stella_oci.errors import InvalidInputError, StellaOciError

MAX_PATH_CHARS = 1024
MAX_PATH_SEGMENTS = 64
MAX_SEGMENT_CHARS = 255
_PATH_CHARS = re.compile(r"[A-Za-z0-9._/-]+")  # fullmatch: "$" would accept a trailing newline


def check_relative_path(path: str, *, where: str, error: type[StellaOciError] = InvalidInputError) -> str:
    """Return ``path`` if it is a safe bundle-relative path, else raise ``error``.

    ``where`` names the origin for the message, e.g. ``export.json /contents/3/path``.
    """
    problem = None
    if not path:
        problem = "it is empty"
    elif not _PATH_CHARS.fullmatch(path):
        problem = "it has characters outside [A-Za-z0-9._/-]"
    elif path.startswith("/"):
        problem = "it is absolute"
    elif len(path) > MAX_PATH_CHARS:
        problem = f"it is {len(path)} characters long, more than {MAX_PATH_CHARS}"
    elif path.count("/") >= MAX_PATH_SEGMENTS:
        problem = f"it has more than {MAX_PATH_SEGMENTS} segments"
    else:
        segments = path.split("/")
        if any(s == ".." for s in segments):
            problem = "it has a '..' segment"
        elif any(s == "" for s in segments):
            problem = "it has an empty segment ('//' or a trailing '/')"
        elif any(s == "." for s in segments):
            problem = "it has a '.' segment"
        elif any(len(s) > MAX_SEGMENT_CHARS for s in segments):
            problem = f"a segment is longer than {MAX_SEGMENT_CHARS} characters"
    if problem:
        raise error(
            f"{where}: unsafe path {path!r}: {problem}",
            hint="bundle paths must be relative paths inside the bundle, like 'data/advisories.json'",
        )
    return path


def resolve_inside(
    root: Path, path: str, *, where: str, error: type[StellaOciError] = InvalidInputError
) -> Path:
    """Join a checked relative path to ``root`` and refuse it if symlinks lead outside ``root``."""
    return Path(resolve_inside_real(os.path.realpath(root), path, where=where, error=error))


def resolve_inside_real(
    real_root: str, path: str, *, where: str, error: type[StellaOciError] = InvalidInputError
) -> str:
    """:func:`resolve_inside` on strings, ``real_root`` already resolved (``os.path.realpath``):
    for a bundle's many files, no pathlib object per file."""
    check_relative_path(path, where=where, error=error)
    target = os.path.realpath(os.path.join(real_root, path))
    if target != real_root and not target.startswith(real_root.rstrip(os.sep) + os.sep):
        raise error(
            f"{where}: path {path!r} resolves through a symbolic link to {target}, outside the bundle",
            hint="replace the link by the file itself, or remove the entry",
        )
    return target


def fold_path(path: str) -> str:
    """The form under which two paths are the same file on a case-insensitive file system."""
    return unicodedata.normalize("NFC", path).casefold()


def check_path_set(
    paths: Iterable[tuple[str, str]], *, error: type[StellaOciError] = InvalidInputError
) -> None:
    """Refuse a set of (already checked) relative paths that cannot all be files of one tree.

    ``paths`` are ``(path, where)`` pairs; ``where`` names the origin of each for the message.
    Refused: a path given twice; two paths equal once case-folded and NFC-normalized
    (``data/Readme.bin`` and ``data/readme.bin``); a path that is also a directory of another
    (``data/a`` and ``data/a/b``, compared case-folded as well).
    """
    seen: dict[str, tuple[str, str]] = {}
    for path, where in paths:
        folded = fold_path(path)
        if folded in seen:
            other, other_where = seen[folded]
            if other == path:
                raise error(f"{where}: {path!r} appears twice (also at {other_where})")
            raise error(
                f"{where}: {path!r} and {other!r} ({other_where}) differ only in letter case or Unicode "
                "normalization; they would be one file on macOS and Windows file systems",
                hint="rename one of them so that the names differ in more than case",
            )
        seen[folded] = (path, where)
    for folded, (path, where) in seen.items():
        cut = folded.find("/")
        while cut != -1:
            parent = seen.get(folded[:cut])
            if parent is not None:
                raise error(
                    f"{where}: {path!r} needs {folded[:cut]!r} to be a directory, but {parent[1]} names "
                    f"the file {parent[0]!r}: conflicting paths",
                    hint="a path cannot be both a file and a directory; rename one of them",
                )
            cut = folded.find("/", cut + 1)
