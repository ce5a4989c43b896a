"""Volumes: a save archive split into FILE.000, FILE.001, ... for size-limited media (Zarf's
``--max-package-size``). ``FILE.parts.json`` lists every part with its size and SHA-256;
``load`` checks every part (none missing, none changed, none extra) before it writes anything."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from stella_oci.errors import InvalidInputError, VerificationError

PARTS_SUFFIX = ".parts.json"
PARTS_KIND = "stella-oci/archive-parts"
CHUNK = 1024 * 1024
MAX_PARTS = 10_000
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS or int(m.group(1)) < 1:
        raise InvalidInputError(f"--split-size {text!r}: give a size such as 4GiB, 700MiB or 1048576")
    return int(m.group(1)) * _UNITS[unit]


def split(archive: Path, size: int) -> list[Path]:
    """Cut ``archive`` into parts of ``size`` bytes (the last shorter) and write the parts list;
    the whole archive is removed once every part is written."""
    total = archive.stat().st_size
    if -(-total // size) > MAX_PARTS:
        raise InvalidInputError(f"--split-size {size}: {total} bytes would make more than {MAX_PARTS} parts")
    parts: list[dict[str, object]] = []
    paths: list[Path] = []
    with open(archive, "rb") as fh:
        index = 0
        while True:
            part = archive.with_name(f"{archive.name}.{index:03d}")
            h, written = hashlib.sha256(), 0
            with open(part, "wb") as out:
                while written < size and (chunk := fh.read(min(CHUNK, size - written))):
                    out.write(chunk)
                    h.update(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if written == 0 and index > 0:
                part.unlink()
                break
            parts.append({"name": part.name, "size": written, "sha256": h.hexdigest()})
            part.with_name(part.name + ".sha256").write_text(f"{h.hexdigest()}  {part.name}\n")
            paths.append(part)
            index += 1
            if written < size:
                break
    listing = {"kind": PARTS_KIND, "archive": archive.name, "size": total, "parts": parts}
    archive.with_name(archive.name + PARTS_SUFFIX).write_text(
        json.dumps(listing, indent=2, sort_keys=True) + "\n"
    )
    archive.unlink()
    return paths


def parts_listing(path: Path) -> Path | None:
    """The parts list for ``FILE`` (or ``FILE.000``, or the list itself), when ``path`` names a split archive."""
    candidates = [path.with_name(path.name + PARTS_SUFFIX)]
    if path.name.endswith(PARTS_SUFFIX):
        candidates.insert(0, path)
    if re.search(r"\.\d{3}$", path.name):
        candidates.append(path.with_name(path.name[:-4] + PARTS_SUFFIX))
    return next((c for c in candidates if c.is_file()), None)


def join(listing: Path, workdir: Path) -> Path:
    """Check every part named in ``listing`` and join them into one archive in ``workdir``."""
    try:
        doc = json.loads(listing.read_text(encoding="utf-8"))
        parts = doc["parts"]
        name = str(doc["archive"])
        assert doc.get("kind") == PARTS_KIND and isinstance(parts, list) and 0 < len(parts) <= MAX_PARTS
    except (ValueError, KeyError, TypeError, AssertionError):
        raise InvalidInputError(
            f"{listing}: not a stella-oci parts list", hint="carry the .parts.json again"
        ) from None
    if "/" in name or name.startswith("."):
        raise InvalidInputError(f"{listing}: archive name {name!r} is not a plain file name")
    expected = [f"{name}.{i:03d}" for i in range(len(parts))]
    for i, part in enumerate(parts):
        if part.get("name") != expected[i]:
            raise VerificationError(
                f"{listing}: part {i} is named {part.get('name')!r}, expected {expected[i]}"
            )
        p = listing.with_name(expected[i])
        if not p.is_file():
            raise VerificationError(
                f"{listing}: part {p.name} is missing ({len(parts)} parts listed)", hint="carry every part"
            )
        if p.stat().st_size != part.get("size"):
            raise VerificationError(f"{p}: {p.stat().st_size} bytes, the parts list says {part.get('size')}")
    extra = listing.with_name(f"{name}.{len(parts):03d}")
    if extra.exists():
        raise VerificationError(f"{listing}: {extra.name} is not listed; the parts do not belong together")
    _check_hashes(listing, parts, expected)
    fd, joined = tempfile.mkstemp(prefix=f".{name}.joined-", dir=workdir)
    with os.fdopen(fd, "wb") as out:
        for part_name in expected:
            with open(listing.with_name(part_name), "rb") as fh:
                while chunk := fh.read(CHUNK):
                    out.write(chunk)
    return Path(joined)


def _check_hashes(listing: Path, parts: list[dict[str, object]], expected: list[str]) -> None:
    for i, part in enumerate(parts):
        p = listing.with_name(expected[i])
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        if h.hexdigest() != part.get("sha256"):
            raise VerificationError(
                f"{p}: sha256:{h.hexdigest()}, the parts list says sha256:{part.get('sha256')}",
                hint="this part changed after it was saved; carry it again",
            )


__all__ = ["join", "parse_size", "parts_listing", "split"]
