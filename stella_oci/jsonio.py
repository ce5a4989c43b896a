"""The one JSON reader for data stella-oci did not write itself, and RFC 8785 canonical JSON.

Neutral: nothing here knows StellaOps; ``export/``, ``airgap/`` and ``signing/`` share it
(the schema plumbing is :mod:`stella_oci.schemas`).

Every JSON document that comes from outside (export.json, a manifest or index from a
registry or a layout, a layout's index.json, a DSSE envelope and its payload, a config
file) goes through :func:`load_json`, which refuses, with the caller's error class (exit 2
for a bundle or user input, exit 3 for a pulled artifact) and a message naming the
document:

* more than ``max_bytes`` bytes (checked before decoding),
* text that is not UTF-8,
* syntax errors (with line and column), ``NaN``/``Infinity``, a member given twice in one
  object (two readers could otherwise see two different documents),
* nesting deeper than ``max_depth`` (default :data:`MAX_JSON_DEPTH`) objects and arrays:
  the parse itself cannot exhaust the stack (a RecursionError is turned into this error), and
  nothing downstream (pydantic, jsonschema) ever walks a deeper tree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rfc8785

from stella_oci.errors import InvalidInputError, StellaOciError

MAX_JSON_DEPTH = 64
"""Objects and arrays nested deeper than this are refused (real documents use under 10)."""
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = value
    return out


def json_depth_exceeds(obj: Any, limit: int) -> bool:
    """True when ``obj`` nests objects/arrays more than ``limit`` levels deep (iterative walk)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            kids: Any = node.values()
        elif isinstance(node, list):
            kids = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((kid, depth + 1) for kid in kids if isinstance(kid, (dict, list)))
    return False


def load_json(
    data: bytes,
    what: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    error: type[StellaOciError] = InvalidInputError,
    object_hook: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """Parse ``data`` as strict JSON within the size and depth limits, or raise ``error``.

    ``what`` names the document in messages (a path, or ``REF@DIGEST export.json``).
    ``object_hook`` replaces each decoded object (after the duplicate check), innermost first,
    as :func:`json.loads`'s does: a reader can turn objects into smaller values while the
    document is parsed (the OCI manifest reader, issue 15); what it returns counts as a leaf
    in the depth check.
    """
    if len(data) > max_bytes:
        raise error(
            f"{what}: {len(data)} bytes, more than the {max_bytes} allowed for this document",
            details={"file": what, "bytes": len(data), "limit": max_bytes},
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what}: not UTF-8 text (byte {exc.start}): {exc.reason}", details={"file": what}) from None
    try:
        pairs_hook = _no_duplicates
        if object_hook is not None:
            hook = object_hook

            def pairs_hook(pairs: list[tuple[str, Any]]) -> Any:
                return hook(_no_duplicates(pairs))

        obj = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_reject_constant)
    except RecursionError:
        obj = None
        deep = True
    except json.JSONDecodeError as exc:
        raise error(
            f"{what}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            details={"file": what, "line": exc.lineno, "column": exc.colno},
        ) from None
    except ValueError as exc:
        raise error(f"{what}: invalid JSON: {exc}", details={"file": what}) from None
    else:
        deep = json_depth_exceeds(obj, max_depth)
    if deep:
        raise error(
            f"{what}: JSON nested more than {max_depth} levels deep (objects and arrays)",
            hint="no valid document nests this deep; the file is damaged or hostile",
            details={"file": what, "max_depth": max_depth},
        )
    return obj


def parse_json_bytes(data: bytes, what: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse strict JSON (UTF-8, no duplicate members, no NaN/Infinity, bounded size and
    nesting: :func:`stella_oci.jsonio.load_json`) from ``data``; exit 2 on any problem.

    ``what`` names the document in errors (a path, or ``export.json layer sha256:..``).
    """
    return load_json(data, what, max_bytes=max_bytes)


def load_json_file(path: Path, what: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Read and parse a JSON file; ``what`` says what the file is (``"export manifest"``).

    A missing or unreadable file, one larger than ``max_bytes``, or a parse error, raises
    :class:`InvalidInputError` naming the path (and the line and column of a parse error).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise InvalidInputError(f"{what} {path}: no such file", details={"file": str(path)}) from exc
    except IsADirectoryError as exc:
        raise InvalidInputError(f"{what} {path}: is a directory, expected a JSON file") from exc
    except OSError as exc:
        raise InvalidInputError(f"{what} {path}: cannot be read: {exc.strerror}") from exc
    return parse_json_bytes(data, f"{what} {path}", max_bytes=max_bytes)


def try_load_json(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any | None:
    """:func:`load_json` for best-effort reads (a registry's error body): None instead of an error."""
    try:
        return load_json(data, "document", max_bytes=max_bytes)
    except StellaOciError:
        return None


def canonical_bytes(obj: Any, what: str) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) UTF-8 bytes of a JSON value; exit 2 for a value
    JCS cannot represent (an integer beyond +/-(2^53-1), a non-finite float, a non-string key)."""
    try:
        data: bytes = rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as exc:
        raise InvalidInputError(
            f"{what}: cannot be canonicalized with RFC 8785 (JCS): {exc}",
            hint="integers must lie within +/-(2^53-1), floats must be finite, keys must be strings",
        ) from exc
    return data


__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_JSON_DEPTH",
    "canonical_bytes",
    "json_depth_exceeds",
    "load_json",
    "load_json_file",
    "parse_json_bytes",
    "try_load_json",
]
