"""have: what a mirror already holds, as a have-list for ``save --since``
(:mod:`stella_oci.airgap.havelist`).

DEST is what ``load`` was given: a registry host, ``host/prefix`` or ``oci:DIR``. Without
REPOSITORY arguments every repository below DEST is listed: from a registry through the
catalog API (``/v2/_catalog``, paginated, bounded); a registry without it (or refusing it) is
refused with the advice to name the repositories. With REPOSITORY arguments (paths below DEST,
e.g. ``stellaops/mirror``, or written in full, ``DEST/stellaops/mirror``) only those are read,
and the catalog is not asked. For every repository: its tags, each tag's manifest (an index's
manifests too, one level), and the blobs they list.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stella_oci.airgap.havelist import (
    MAX_BLOBS,
    MAX_REPOSITORIES,
    MAX_TAGS_PER_REPOSITORY,
    HaveList,
    HaveRepository,
    write_have_list,
)
from stella_oci.errors import InvalidInputError, NotFoundError
from stella_oci.oci.manifest import children, media_type_of
from stella_oci.oci.mediatypes import MANIFEST_MEDIA_TYPES
from stella_oci.oci.reference import parse_reference
from stella_oci.results import ResultModel
from stella_oci.targets.base import ReadOnlyTarget
from stella_oci.targets.verified import read_manifest
from stella_oci.verbs.common import RunOptions, check_output_parent, open_source

#: Manifests read in parallel per repository.
HAVE_CONCURRENCY = 8
#: How deep an ``oci:`` destination is searched for layouts (DIR/<repository path>).
MAX_LAYOUT_DEPTH = 8


class HaveResult(ResultModel):
    """What ``have`` wrote: the have-list of a mirror, for ``save --since``."""

    output: str
    """The have-list written."""
    destination: str
    catalog: bool
    """True when the repositories came from the catalog (or the ``oci:`` directory tree)."""
    repositories: int
    tags: int
    blobs: int
    """Distinct blob digests over all repositories."""
    missing: list[str] = []
    """Repositories named on the command line that DEST does not have (listed as empty)."""
    generations: dict[str, int] = {}
    """Origin -> the highest generation applied at DEST (from the import ledger)."""


def _split_dest(dest: str) -> tuple[str, str]:
    """(host, prefix) of a registry DEST."""
    text = dest.strip().rstrip("/")
    if "://" in text:
        raise InvalidInputError(f"have {dest}: give host[:port][/prefix] without a scheme")
    host, _, prefix = text.partition("/")
    if not host or not ("." in host or ":" in host or host == "localhost"):
        raise InvalidInputError(
            f"have {dest}: DEST must be a registry host (host[:port]), host/prefix, or oci:DIR",
            hint="give what you give load, e.g. stella-oci have mirror.local:5000",
        )
    return host, prefix


def _relative(dest: str, name: str) -> str:
    """A REPOSITORY argument as a path below DEST (``DEST/x/y`` and ``x/y`` both give ``x/y``)."""
    base = dest.strip().rstrip("/") + "/"
    rel = name[len(base) :] if name.startswith(base) else name
    rel = rel.strip("/")
    if not rel or rel.startswith(("oci:", "/")) or ".." in rel.split("/") or ":" in rel or "@" in rel:
        raise InvalidInputError(
            f"have {dest}: repository {name!r} is not a repository path below {dest}",
            hint=f"e.g. stella-oci have {dest} stellaops/mirror stellaops/trivy (no tag, no digest)",
        )
    return rel


def _graph_blobs(src: ReadOnlyTarget, tag: str) -> tuple[str, set[str]]:
    """The digest ``tag`` points at and the blobs its manifest (and an index's manifests) list."""
    desc = src.resolve(tag)
    data = read_manifest(src, desc)
    blobs: set[str] = set()
    for child in children(data, media_type_of(data, desc.media_type)):
        if child.media_type in MANIFEST_MEDIA_TYPES:
            try:
                sub = read_manifest(src, child)
            except NotFoundError:
                continue  # an index may name platforms the mirror does not hold
            blobs.update(c.digest for c in children(sub, media_type_of(sub, child.media_type)))
        else:
            blobs.add(child.digest)
    return desc.digest, blobs


def _tags_of(src: ReadOnlyTarget, ref_repo: str) -> list[str]:
    from stella_oci.targets.registry import RegistryTarget

    if isinstance(src, RegistryTarget):
        from stella_oci.transport.repository import iter_tags

        names: list[str] = []
        for t in iter_tags(src.client, src.repo):
            names.append(t)
            if len(names) > MAX_TAGS_PER_REPOSITORY:
                raise InvalidInputError(f"have: {ref_repo} has more than {MAX_TAGS_PER_REPOSITORY} tags")
        return sorted(set(names))
    lister = getattr(src, "tags", None)
    return sorted(set(lister())) if callable(lister) else []


def _repository(location: str, name: str, run: RunOptions) -> HaveRepository | None:
    """What one repository holds; None when it does not exist."""
    ref = parse_reference(location)
    if ref.transport == "oci" and not (Path(ref.path) / "index.json").is_file():
        return None
    src = open_source(ref, run)
    try:
        try:
            tags = _tags_of(src, location)
        except NotFoundError:
            return None
        with ThreadPoolExecutor(max_workers=HAVE_CONCURRENCY) as pool:
            found = list(pool.map(lambda t: _graph_blobs(src, t), tags))
    finally:
        src.close()
    blobs: set[str] = set()
    for _, b in found:
        blobs.update(b)
    return HaveRepository(
        repository=name, tags={t: d for t, (d, _) in zip(tags, found, strict=True)}, blobs=sorted(blobs)
    )


def _catalog(host: str, prefix: str, page_size: int, run: RunOptions) -> list[str]:
    """The repositories below ``host/prefix``, as paths below it, from the catalog API."""
    from stella_oci.transport.client import RegistryClient
    from stella_oci.transport.repository import CatalogRefused, CatalogUnavailable, iter_catalog

    dest = f"{host}/{prefix}" if prefix else host
    hint = (
        f"name the repositories below {dest} that load wrote: stella-oci have {dest} REPO1 REPO2 ... "
        f"(or in full: stella-oci have {dest} {dest}/REPO1 {dest}/REPO2)"
    )
    api_host = parse_reference(f"{host}/x").api_host
    if run.transport.offline:
        from stella_oci.errors import OfflineError

        raise OfflineError(f"have {dest}: --offline is set and this would contact the registry {host}")
    client = RegistryClient(api_host, run.transport)
    names: list[str] = []
    try:
        for repo in iter_catalog(client, page_size=page_size):
            if prefix and not repo.startswith(prefix + "/"):
                continue
            names.append(repo[len(prefix) + 1 :] if prefix else repo)
            if len(names) > MAX_REPOSITORIES:
                raise InvalidInputError(
                    f"have {dest}: more than {MAX_REPOSITORIES} repositories", hint="give a narrower prefix"
                )
    except (CatalogUnavailable, CatalogRefused) as exc:
        exc.hint = hint
        raise
    finally:
        client.close()
    return sorted(set(names))


def _layouts(root: Path) -> list[str]:
    """The OCI layouts below an ``oci:`` DEST (directories holding ``oci-layout``), as paths."""
    found: list[str] = []
    if not root.is_dir():
        raise NotFoundError(f"have oci:{root}: no such directory")
    for dirpath, dirs, files in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        if depth >= MAX_LAYOUT_DEPTH:
            dirs[:] = []
        dirs[:] = sorted(d for d in dirs if d != "blobs" and not (Path(dirpath) / d).is_symlink())
        if "oci-layout" in files and depth:
            found.append(Path(dirpath).relative_to(root).as_posix())
            if len(found) > MAX_REPOSITORIES:
                raise InvalidInputError(f"have oci:{root}: more than {MAX_REPOSITORIES} layouts")
    return sorted(found)


def have(
    destination: str,
    repositories: Sequence[str] = (),
    *,
    output: str | Path,
    page_size: int = 1000,
    created_by: str = "",
    ledger: str | Path | None = None,
    run: RunOptions | None = None,
) -> HaveResult:
    """Write the have-list of ``destination`` (every repository below it, or ``repositories``)
    to ``output``.

    ``ledger``: the import ledger ``load`` recorded into (default: ``$STELLA_OCI_LEDGER`` or the
    user data dir, when that file exists); the highest generation applied at ``destination``
    per origin goes into the list, so that ``save --since`` numbers its archive above it."""
    from stella_oci.version import __version__

    run = run or RunOptions()
    out = Path(output)
    if out.is_dir():
        raise InvalidInputError(f"--output {out}: is a directory; give the have-list file to write")
    check_output_parent(out, "--output")
    if not 1 <= page_size <= 10_000:
        raise InvalidInputError(f"--page-size {page_size}: give 1 to 10000")
    dest = destination.strip().rstrip("/")
    names = sorted({_relative(dest, r) for r in repositories})
    if len(names) > MAX_REPOSITORIES:
        raise InvalidInputError(f"have: {len(names)} repositories named, more than {MAX_REPOSITORIES}")
    use_catalog = not names
    if dest.startswith("oci:"):
        root = Path(dest[4:])
        names = names or _layouts(root)
        locations = {n: f"oci:{root / n}" for n in names}
    elif dest.startswith("oci-archive:"):
        raise InvalidInputError(f"have {dest}: give a registry host, host/prefix, or an oci: directory")
    else:
        host, prefix = _split_dest(dest)
        names = names or _catalog(host, prefix, page_size, run)
        locations = {n: f"{dest}/{n}" for n in names}
    repos: list[HaveRepository] = []
    missing: list[str] = []
    total = 0
    for name in names:
        repo = _repository(locations[name], name, run)
        if repo is None:
            if use_catalog:
                continue  # listed by the catalog, gone (or never tagged) now
            missing.append(name)
            repo = HaveRepository(repository=name)
        total += len(repo.blobs)
        if total > MAX_BLOBS:
            raise InvalidInputError(f"have {dest}: more than {MAX_BLOBS} blobs")
        repos.append(repo)
    generations = _generations(dest, ledger)
    have_list = HaveList(
        destination=dest,
        created_by=created_by or f"stella-oci {__version__}",
        generations=generations,
        repositories=repos,
    )
    write_have_list(have_list, out)
    return HaveResult(
        output=str(out),
        destination=dest,
        catalog=use_catalog,
        repositories=len(repos),
        tags=sum(len(r.tags) for r in repos),
        blobs=len({b for r in repos for b in r.blobs}),
        missing=missing,
        generations=generations,
    )


def _generations(dest: str, ledger: str | Path | None) -> dict[str, int]:
    """Origin -> highest generation applied at ``dest`` (load's key for it), from the ledger;
    empty when there is no ledger file (an explicitly named one must exist)."""
    from stella_oci.airgap.ledger import Ledger, default_ledger_path
    from stella_oci.verbs.load import destination_key

    path = Path(ledger) if ledger is not None else default_ledger_path()
    if not path.is_file():
        if ledger is not None:
            raise InvalidInputError(f"--ledger {path}: no such file", hint="give the ledger load recorded into")
        return {}
    key = destination_key(dest)
    with Ledger.read_only(path) as book:
        records = book.generations(destination=key)
    out: dict[str, int] = {}
    for r in records:
        out[r.origin] = max(out.get(r.origin, 0), r.generation)
    return dict(sorted(out.items()))


__all__ = ["HaveResult", "have"]
