"""tags: the tags of a repository (registry, ``oci:`` directory or ``oci-archive:`` file).

From a registry the list is read page by page (``n``, ``last``, ``Link``). ``filter`` keeps
the tags a regular expression matches (anywhere: anchor it with ``^...$``). ``sort="created"``
reads each tag's manifest and orders newest first by its ``org.opencontainers.image.created``
annotation (tags without one last, by name); otherwise tags come sorted by name.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Literal

from stella_oci.errors import InvalidInputError, StellaOciError
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import parse_index, parse_manifest
from stella_oci.oci.reference import Reference
from stella_oci.results import ResultModel
from stella_oci.targets.base import ReadOnlyTarget
from stella_oci.targets.verified import read_manifest
from stella_oci.verbs.common import RunOptions, as_reference, open_source

ANN_CREATED = "org.opencontainers.image.created"
#: Manifests read in parallel for ``sort="created"``.
CREATED_CONCURRENCY = 8


class TagInfo(ResultModel):
    tag: str
    digest: str
    created: str | None = None
    """The manifest's ``org.opencontainers.image.created`` annotation, when it has one."""


class TagsResult(ResultModel):
    """The tags of one repository (``stella-oci tags --format json``)."""

    repository: str
    """``host/repo`` (or ``oci:PATH``)."""
    tags: list[str]
    """In the order asked for (by name, or newest first with ``--sort created``)."""
    details: list[TagInfo] | None = None
    """With ``--sort created``: each tag's digest and creation time, in the same order."""


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInputError(f"--filter {pattern!r}: not a regular expression ({exc})") from None


def _when(created: str | None) -> datetime | None:
    if not created:
        return None
    try:
        when = datetime.fromisoformat(created.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _tag_info(src: ReadOnlyTarget, tag: str) -> TagInfo:
    desc = src.resolve(tag)
    data = read_manifest(src, desc)
    where = f"{src.name}:{tag}"
    parsed = (
        parse_index(data, where)
        if desc.media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST)
        else parse_manifest(data, where)
    )
    created = (parsed.annotations or {}).get(ANN_CREATED)
    return TagInfo(tag=tag, digest=desc.digest, created=created)


def _list(src: ReadOnlyTarget, ref: Reference, page_size: int, last: str | None) -> list[str]:
    from stella_oci.targets.registry import RegistryTarget

    if isinstance(src, RegistryTarget):
        from stella_oci.transport.repository import iter_tags

        found = iter_tags(src.client, src.repo, page_size=page_size, last=last)
        # ``last`` again here: a registry may ignore it (distribution 2.8 ignores n and last)
        return [t for t in found if last is None or t > last]
    lister = getattr(src, "tags", None)
    if lister is None:
        store = getattr(src, "_store", None)
        lister = getattr(store(), "tags", None) if callable(store) else None
    if not callable(lister):
        raise InvalidInputError(f"{ref}: cannot list the tags of this kind of reference")
    names = sorted(str(t) for t in lister())
    return [t for t in names if last is None or t > last]


def tags(
    repository: str | Reference,
    *,
    filter: str | None = None,
    sort: Literal["name", "created"] = "name",
    page_size: int = 1000,
    last: str | None = None,
    run: RunOptions | None = None,
) -> TagsResult:
    """The tags of ``repository`` (``host/repo``, ``oci:DIR`` or ``oci-archive:FILE``)."""
    run = run or RunOptions()
    if not 1 <= page_size <= 10_000:
        raise InvalidInputError(f"--page-size {page_size}: give 1 to 10000")
    if sort not in ("name", "created"):
        raise InvalidInputError(f"--sort {sort!r}: give name or created")
    pattern = _compile(filter)
    ref = as_reference(repository)
    if ref.tag or ref.digest:
        raise InvalidInputError(
            f"{ref}: give the repository without a tag or digest", hint=f"stella-oci tags {ref.base()}"
        )
    src = open_source(ref, run)
    try:
        names = _list(src, ref, page_size, last)
        if pattern is not None:
            names = [t for t in names if pattern.search(t)]
        names = sorted(dict.fromkeys(names))
        details: list[TagInfo] | None = None
        if sort == "created":
            with ThreadPoolExecutor(max_workers=CREATED_CONCURRENCY) as pool:
                infos = list(pool.map(lambda t: _tag_info(src, t), names))
            # newest first; undated (or unparseable) last, by name
            dated = [(when, i) for i in infos if (when := _when(i.created)) is not None]
            dated.sort(key=lambda p: (p[0], p[1].tag), reverse=True)
            details = [i for _, i in dated] + [i for i in infos if _when(i.created) is None]
            names = [i.tag for i in details]
    except StellaOciError:
        raise
    finally:
        src.close()
    return TagsResult(repository=ref.base(), tags=names, details=details)
