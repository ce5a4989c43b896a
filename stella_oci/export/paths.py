"""Paths named by a bundle or an artifact are never trusted.

The schema allows ``..`` segments (``^[A-Za-z0-9._/-]+$``); stella-oci does not. A path is
accepted only when it is relative, uses ``/`` separators, has no empty, ``.`` or ``..``
segment, and — once joined to a root directory — does not leave that root through a
symbolic link.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from stella_oci.errors import InvalidInputError, StellaOciError

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
    else:
        segments = path.split("/")
        if any(s == ".." for s in segments):
            problem = "it has a '..' segment"
        elif any(s == "" for s in segments):
            problem = "it has an empty segment ('//' or a trailing '/')"
        elif any(s == "." for s in segments):
            problem = "it has a '.' segment"
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
    check_relative_path(path, where=where, error=error)
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(real_root / path))
    if target != real_root and real_root not in target.parents:
        raise error(
            f"{where}: path {path!r} resolves through a symbolic link to {target}, outside the bundle",
            hint="replace the link by the file itself, or remove the entry",
        )
    return target
