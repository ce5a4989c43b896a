"""save: many exports into one ``oci-archive`` (Hauler ``store save``, ORAS ``backup``).

Each SRC is a reference (``host/repo:tag`` or ``@digest``) or a repository with a tag selection
(``--tags REGEX``, ``--latest N`` by ``org.opencontainers.image.created``, ``--all-tags``).
Every export is copied by the engine (digests unchanged, every blob verified while it streams,
referrers along) into one staged OCI layout, so a blob shared by several exports is stored
once; the archive then gets two more members next to the layout:

- ``stella-oci/inventory.json`` (:mod:`stella_oci.airgap.inventory`): the exports, their
  source repositories, tags, digests and sizes, the ``mirrorGeneration`` and who made it;
- ``stella-oci/checksums.sha256``: ``sha256sum`` lines over every other member.

``load`` reads both back; skopeo and every OCI tool read the archive as any ``oci-archive``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from stella_oci import interrupts
from stella_oci.airgap.havelist import looks_like_have_list, read_have_list
from stella_oci.airgap.inventory import (
    CHECKSUMS_MEMBER,
    INVENTORY_MEMBER,
    Inventory,
    InventoryExport,
    archive_blobs,
    checksums_text,
    derive_origin,
    previous_generation,
    write_archive,
)
from stella_oci.airgap.volumes import split
from stella_oci.errors import InvalidInputError, on_side
from stella_oci.export.annotations import ANN_PROFILE, ANN_TENANT
from stella_oci.oci.manifest import Descriptor, children, media_type_of
from stella_oci.oci.reference import Reference
from stella_oci.results import ResultModel
from stella_oci.signing.sign import load_signer
from stella_oci.targets.base import BlobOpener, ProgressFn, PushOutcome, Target
from stella_oci.targets.layout import OciLayoutTarget
from stella_oci.targets.verified import read_manifest
from stella_oci.verbs.common import RunOptions, as_reference, check_output_parent, engine_for, open_source
from stella_oci.verbs.cosign import copy_cosign_tags
from stella_oci.verbs.tags import tags as list_tags

DEFAULT_SAVE_CONCURRENCY = 4
MAX_EXPORTS = 10_000
#: Tags that are not exports: the referrers-API fallback tag (``sha256-<hex>``) and cosign's
#: ``sha256-<hex>.sig/.att/.sbom``; both travel with their subject (cosign's unless --no-signatures).
FALLBACK_TAG = re.compile(r"^sha256-[0-9a-f]{64}(\.(sig|att|sbom))?$")


class SaveResult(ResultModel):
    """What ``save`` wrote: the archive (and its volumes), its generation, the exports in it."""

    output: str
    """The archive written."""
    mirror_generation: int
    origin: str
    """The source the generation counts for (the registries saved from)."""
    exports: list[InventoryExport]
    blobs: int
    """Distinct blobs stored (a blob shared by several exports counts once)."""
    bytes: int
    """Size of the archive file."""
    left_out: int = 0
    """Blobs left out because ``--since`` says the other side has them."""
    parts: list[str] = []
    """With ``--split-size``: the volumes written (FILE.000, ...), listed in FILE.parts.json."""
    signed_by: str | None = None
    """With ``--sign-key``: the key id (hex SHA-256 of the public key's DER SubjectPublicKeyInfo)
    that signed the inventory (``stella-oci/inventory.dsse.json``)."""
    cosign_tags: int = 0
    """cosign tag-scheme manifests saved (``sha256-<hex>.sig/.att/.sbom``; ``--no-signatures``: 0)."""


def _selection(
    ref: Reference, *, tags: str | None, latest: int | None, all_tags: bool, run: RunOptions
) -> list[Reference]:
    if ref.tag or ref.digest:
        return [ref]
    if tags is None and latest is None and not all_tags:
        raise InvalidInputError(
            f"{ref}: a repository without a tag needs --tags REGEX, --latest N or --all-tags",
            hint=f"e.g. stella-oci save {ref} --all-tags --output exports.tar, or name {ref}:<tag>",
        )
    if tags is not None:
        try:
            re.compile(tags)
        except re.error as exc:
            raise InvalidInputError(f"--tags {tags!r}: not a regular expression ({exc})") from None
    found = list_tags(ref, filter=tags, sort="created" if latest is not None else "name", run=run)
    # referrers-API fallback tags and cosign tags are not exports: they travel with their subject
    names = [t for t in found.tags if not FALLBACK_TAG.match(t)]
    if latest is not None:
        names = _newest_exports(names, {i.tag: i.digest for i in found.details or []}, latest)
    return [ref.with_tag(t) for t in names]


def _newest_exports(names: list[str], digests: dict[str, str], latest: int) -> list[str]:
    """The tags (newest first) of the ``latest`` newest exports: an export is a manifest, so
    two tags naming one manifest (``w47`` and ``latest``) count once, and both are kept."""
    keep: set[str] = set()
    for tag in names:
        if len(keep) == latest:
            break
        keep.add(digests.get(tag, tag))
    return [t for t in names if digests.get(t, t) in keep]


def _check_arguments(
    sources: list[str | Reference], latest: int | None, generation: int | None, out: Path
) -> None:
    if not sources:
        raise InvalidInputError("save: give at least one SRC (a reference or a repository)")
    if latest is not None and latest < 1:
        raise InvalidInputError(f"--latest {latest}: give 1 or more")
    if generation is not None and generation < 1:
        raise InvalidInputError(f"--generation {generation}: give 1 or more")
    if out.is_dir():
        raise InvalidInputError(f"--output {out}: is a directory; give the archive file to write")
    check_output_parent(out, "--output")


def _check_unique_tags(refs: list[Reference]) -> None:
    """One archive holds each tag once: the same tag from two repositories is refused."""
    taken: dict[str, Reference] = {}
    for ref in refs:
        if ref.tag and ref.tag in taken and taken[ref.tag].repository != ref.repository:
            raise InvalidInputError(
                f"save: tag {ref.tag!r} is selected in {taken[ref.tag].base()} and in {ref.base()}; "
                "one archive holds each tag once",
                hint="save the two repositories into separate archives, or narrow --tags",
            )
        if ref.tag:
            taken[ref.tag] = ref


def save(
    sources: list[str | Reference],
    output: str | Path,
    *,
    tags: str | None = None,
    latest: int | None = None,
    all_tags: bool = False,
    generation: int | None = None,
    since: str | Path | None = None,
    split_size: int | None = None,
    created_by: str = "",
    signatures: bool = True,
    sign_key: str | Path | None = None,
    run: RunOptions | None = None,
) -> SaveResult:
    """Write the exports ``sources`` name into the archive ``output`` (replaced atomically).

    ``signatures``: also save cosign's tag-scheme signatures, attestations and SBOMs of each
    export (``sha256-<hex>.sig/.att/.sbom``, as ``copy`` does); ``load`` brings them along.
    ``sign_key`` (a PEM private key): the inventory is signed as a DSSE envelope
    (``stella-oci/inventory.dsse.json``) that ``load --trust-root`` verifies.

    ``generation``: the archive's ``mirrorGeneration``; default: the ``since`` archive's
    generation + 1 (a ``since`` have-list: its ``generations`` entry for this origin + 1), else 1. One not above the ``since`` archive's is refused (exit 2): ``load``
    would refuse it after that archive."""
    run = run or RunOptions()
    out = Path(output)
    _check_arguments(sources, latest, generation, out)
    signer = load_signer(sign_key) if sign_key is not None else None  # a bad key fails before any read
    refs: list[Reference] = []
    for s in sources:
        ref = as_reference(s)
        if ref.transport != "registry":
            raise InvalidInputError(f"save {ref}: SRC must be a registry reference or repository")
        refs.extend(_selection(ref, tags=tags, latest=latest, all_tags=all_tags, run=run))
    if len(refs) > MAX_EXPORTS:
        raise InvalidInputError(f"save: {len(refs)} exports selected, more than {MAX_EXPORTS}")
    _check_unique_tags(refs)

    from stella_oci.version import __version__

    have = _since(Path(since)) if since is not None else None
    previous = previous_generation(Path(since)) if since is not None else None  # None: a have-list
    if previous is not None and generation is not None and generation <= previous:
        raise InvalidInputError(
            f"--generation {generation} is not above {previous}, the mirrorGeneration of --since {since}: "
            "load refuses a generation not above the last one applied",
            hint=f"give --generation {previous + 1} or more, or leave --generation out",
        )
    origin = derive_origin(ref.base() for ref in refs)
    if previous is None and have is not None:  # a have-list: the inside's last generation, if it knew it
        previous = have.generations.get(origin)
        if previous is not None and generation is not None and generation <= previous:
            raise InvalidInputError(
                f"--generation {generation} is not above {previous}, the last mirrorGeneration of {origin} "
                f"applied at {have.label}: load would refuse it as a replay",
                hint=f"give --generation {previous + 1} or more, or leave --generation out",
            )
    if generation is None and previous is not None:
        generation = previous + 1
    generation = generation or 1

    stage = Path(tempfile.mkdtemp(prefix="stella-oci-save-", dir=out.parent if out.parent.exists() else None))
    token = interrupts.track(stage)
    try:
        layout = OciLayoutTarget(stage / "layout", create=True)
        leave_out = _LeaveOut(layout, have) if have is not None else None
        dst: Target = leave_out or layout
        omitted: dict[str, str] = {}
        engine = engine_for(run, DEFAULT_SAVE_CONCURRENCY)
        exports: list[InventoryExport] = []
        seen: set[tuple[str, str]] = set()
        for ref in refs:
            if leave_out is not None:
                leave_out.repository = ref.repository
            src = open_source(ref, run)
            try:
                with on_side("source"):
                    desc = src.resolve(ref.selector or "")
                if (ref.repository, desc.digest + (ref.tag or "")) in seen:
                    continue
                seen.add((ref.repository, desc.digest + (ref.tag or "")))
                data = read_manifest(src, desc)
                stats = engine.copy_graph(
                    src, dst, desc, tags=[ref.tag] if ref.tag else [], referrers=True, root_data=data
                )
                cosign = copy_cosign_tags(engine, src, dst, desc)[0] if signatures else []
                blobs = children(data, media_type_of(data, desc.media_type))
                annotations = _annotations(data)
                exports.append(
                    InventoryExport(
                        source=ref.base(),
                        repository=ref.repository,
                        tag=ref.tag,
                        digest=desc.digest,
                        media_type=desc.media_type,
                        size=desc.size + sum(b.size for b in blobs),
                        artifact_type=annotations.pop("__artifactType", None),
                        created=annotations.get("org.opencontainers.image.created"),
                        profile=annotations.get(ANN_PROFILE),
                        tenant=annotations.get(ANN_TENANT),
                        referrers=sorted(d.digest for d in stats.copied_referrers),
                        cosign_tags={c.tag: c.digest for c in cosign},
                    )
                )
            finally:
                src.close()
        layout.commit()
        if leave_out is not None:
            omitted = dict(leave_out.left_out)
        inventory = Inventory(
            mirror_generation=generation,
            origin=origin,
            created_by=created_by or f"stella-oci {__version__}",
            exports=exports,
            omitted=dict(sorted(omitted.items())),
        )
        nblobs = write_archive(stage / "layout", inventory, out, signer)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        interrupts.untrack(token)
    size = os.path.getsize(out)
    parts = [str(p) for p in split(out, split_size)] if split_size else []
    return SaveResult(
        output=str(out),
        parts=parts,
        mirror_generation=generation,
        origin=origin,
        exports=exports,
        blobs=nblobs,
        bytes=size,
        left_out=len(omitted),
        cosign_tags=sum(len(e.cosign_tags) for e in exports),
        signed_by=signer.key_id if signer else None,
    )


class _Have:
    """What the other side has, for ``save --since``: from a previous archive, every blob it
    carried (anywhere: ``everywhere``); from a have-list, the blobs of each repository
    (``by_repository``: a registry shows a blob only in the repositories that link it)."""

    def __init__(
        self,
        everywhere: dict[str, str],
        by_repository: dict[str, set[str]] | None = None,
        label: str = "",
        generations: dict[str, int] | None = None,
    ) -> None:
        self.everywhere, self.by_repository, self.label = everywhere, by_repository or {}, label
        self.generations = generations or {}

    def where(self, repository: str, digest: str) -> str | None:
        """Which archive (or have-list) says the other side has ``digest`` for ``repository``."""
        if digest in self.everywhere:
            return self.everywhere[digest]
        return self.label if digest in self.by_repository.get(repository, ()) else None


def _since(path: Path) -> _Have:
    """``--since PREVIOUS``: a previous save archive or a have-list (``stella-oci have``)."""
    if not path.is_file():
        raise InvalidInputError(
            f"--since {path}: no such file",
            hint="give the previous save archive, or a have-list written by stella-oci have DEST",
        )
    if looks_like_have_list(path):
        listed = read_have_list(path)
        return _Have(
            {}, listed.by_repository(), f"{path.name} (have-list of {listed.destination})", listed.generations
        )
    return _Have(archive_blobs(path))


class _LeaveOut:
    """The staging layout, except that blobs the other side has (``save --since``) are not
    stored: the engine sees them as already there. Manifests always travel. ``repository`` is
    the source repository of the export being copied (set before each one)."""

    def __init__(self, layout: OciLayoutTarget, have: _Have) -> None:
        self.layout, self.have, self.name = layout, have, layout.name
        self.repository = ""
        self.left_out: dict[str, str] = {}
        self._lock = threading.Lock()

    def _held(self, digest: str) -> bool:
        where = self.have.where(self.repository, digest)
        if where is None:
            return False
        with self._lock:
            self.left_out[digest] = where
        return True

    def has_blob(self, desc: Descriptor) -> bool:
        return self.layout.has_blob(desc) or self._held(desc.digest)

    def has_manifest(self, desc: Descriptor) -> bool:
        return self.layout.has_manifest(desc)

    def push_blob(
        self, desc: Descriptor, opener: BlobOpener, progress: ProgressFn | None = None
    ) -> PushOutcome:
        if self._held(desc.digest):
            return PushOutcome.EXISTS
        return self.layout.push_blob(desc, opener, progress)

    def push_manifest(self, desc: Descriptor, data: bytes) -> None:
        self.layout.push_manifest(desc, data)

    def tag(self, desc: Descriptor, tag: str) -> None:
        self.layout.tag(desc, tag)

    def commit(self) -> None:
        self.layout.commit()

    def abort(self) -> None:
        self.layout.abort()

    def close(self) -> None:
        self.layout.close()


def _annotations(data: bytes) -> dict[str, str]:
    import json

    try:
        doc = json.loads(data)
    except ValueError:
        return {}
    ann = doc.get("annotations") if isinstance(doc, dict) else None
    out = {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {}
    if isinstance(doc, dict) and isinstance(doc.get("artifactType"), str):
        out["__artifactType"] = doc["artifactType"]
    return out


__all__ = ["CHECKSUMS_MEMBER", "INVENTORY_MEMBER", "SaveResult", "checksums_text", "save"]
