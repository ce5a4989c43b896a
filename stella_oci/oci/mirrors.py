"""Registry mirrors: read ``ghcr.io/org/exports:tag`` from ``mirror.local:5000/org/exports:tag``.

A mapping ``SOURCE=MIRROR`` rewrites every registry reference whose ``registry/repository``
starts with SOURCE (a host, or a host and a repository prefix, matched on whole path
components) so that it starts with MIRROR instead. The longest matching SOURCE wins. Only
reads go to a mirror; what is read is verified exactly as from the source, and a pull by
digest makes the mirror's answer provably the original.

Mappings come from ``--registry-mirror SOURCE=MIRROR`` (repeatable) and from a JSON file
(``--mirror-config FILE``) of the form ``{"mirrors": {"ghcr.io": "mirror.local:5000"}}``.

One source may have several mirrors, tried in order (``--registry-mirror SOURCE=M1,M2``, the
option repeated for the same SOURCE, or a JSON list ``{"ghcr.io": ["m1:5000", "m2:5000"]}``):
:func:`mirror_candidates` gives them, :mod:`stella_oci.verbs.failover` tries them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from stella_oci.errors import InvalidInputError
from stella_oci.jsonio import load_json
from stella_oci.oci.reference import Reference, mask_credentials, parse_reference, refuse_credentials


def _normalize(side: str, where: str) -> str:
    side = side.strip().rstrip("/")
    refuse_credentials(side, f"{where} registry mirror")
    if not side:
        raise InvalidInputError(f"{where}: empty side in registry mirror mapping")
    probe = parse_reference(side + "/x" if "/" not in side else side)
    if probe.transport != "registry" or probe.tag or probe.digest:
        raise InvalidInputError(f"{where}: {side!r} is not a registry host or host/repository prefix")
    return side


#: ``SOURCE`` prefix -> its mirrors, in the order they are tried.
Mirrors = Mapping[str, "str | Sequence[str]"]


def parse_mirror_args(items: Iterable[str], where: str = "--registry-mirror") -> dict[str, list[str]]:
    """``SOURCE=MIRROR[,MIRROR...]`` items; the same SOURCE repeated adds mirrors, in order."""
    out: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            refuse_credentials(item, f"{where} registry mirror")
            raise InvalidInputError(
                f"{where} {mask_credentials(item)!r}: expected SOURCE=MIRROR, e.g. ghcr.io=mirror.local:5000"
            )
        src, dst = item.split("=", 1)
        targets = out.setdefault(_normalize(src, where), [])
        for one in dst.split(","):
            mirror = _normalize(one, where)
            if mirror not in targets:
                targets.append(mirror)
    return out


#: A mirror config maps a few hosts; refuse a file larger than this.
MAX_MIRROR_CONFIG_BYTES = 1024 * 1024


def _read_json(path: Path, what: str) -> Any:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_MIRROR_CONFIG_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"{what} {path}: cannot be read: {exc.strerror}") from None
    return load_json(data, f"{what} {path}", max_bytes=MAX_MIRROR_CONFIG_BYTES)


def load_mirror_config(path: Path) -> dict[str, list[str]]:
    doc = _read_json(path, "mirror config")
    mirrors = doc.get("mirrors") if isinstance(doc, dict) else None
    if not isinstance(mirrors, dict) or not all(
        isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(x, str) for x in v))
        for v in mirrors.values()
    ):
        raise InvalidInputError(
            f'{path}: expected {{"mirrors": {{"SOURCE": "MIRROR" or ["MIRROR", ...], ...}}}}',
            hint='e.g. {"mirrors": {"ghcr.io": ["mirror-a.local:5000", "mirror-b.local:5000"]}}',
        )
    return {
        _normalize(k, str(path)): [_normalize(x, str(path)) for x in ([v] if isinstance(v, str) else v)]
        for k, v in mirrors.items()
    }


def mirror_candidates(ref: Reference, mirrors: Mirrors) -> list[Reference]:
    """The references to read ``ref`` from, in order: ``ref`` rewritten by each mirror of the
    longest matching mapping; empty when no mapping matches."""
    if ref.transport != "registry" or not mirrors:
        return []
    full = f"{ref.registry}/{ref.repository}"
    for src in sorted(mirrors, key=len, reverse=True):
        if full == src or full.startswith(src + "/") or (ref.registry == src):
            rest = full[len(src) :] if full.startswith(src) else "/" + ref.repository
            targets = mirrors[src]
            return [
                replace(parse_reference(m + rest), tag=ref.tag, digest=ref.digest)
                for m in ([targets] if isinstance(targets, str) else targets)
            ]
    return []


def apply_mirrors(ref: Reference, mirrors: Mirrors) -> Reference:
    """The reference to read from: ``ref`` rewritten by the first mirror of the longest matching
    mapping, if any."""
    found = mirror_candidates(ref, mirrors)
    return found[0] if found else ref
