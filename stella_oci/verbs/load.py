"""load: the exports of ``save`` archives into a registry (or ``oci:`` directories) inside the gap.

Before anything is written, every archive is checked whole against its checksums file
(:func:`stella_oci.airgap.inventory.check_archive`). Each export then lands at
``DEST/<its source repository path>`` (Hauler, ``skopeo sync --scoped``), so
``--registry-mirror SOURCE=DEST`` finds it, through :func:`stella_oci.verbs.copy.copy`: the
same StellaOps checks as ``verify`` (CONTRACT section 5), staleness and the import ledger, the
engine's verified reads, referrers along. An export already at its destination, its import
recorded in the ledger, is skipped, so a load cut in the middle finishes when run again; one
that is there but unrecorded (cut between copy's write and its record) is copied again (every
blob is found there) and recorded. An export that fails verification is
quarantined: reported with its reason, never tagged, while the others load; the command then
exits 3. ``dry_run`` writes nothing and says which exports and blobs would move, and which
exports the real load would quarantine: each export not yet at its destination gets the checks
its copy would run (CONTRACT section 5, ``checks``, staleness, delta base, rollback), against
an in-memory copy of the ledger into which the dry run records what the real load would, and
exits 3 as the real load would.

Generations (:mod:`stella_oci.airgap.generations`): archives are applied in ``mirrorGeneration``
order; each one's generation must be above the last one activated for its origin at DEST, else
the load is refused (exit 3) before anything is written. The activation is recorded in the
ledger before the first export moves, so the same archive run again (after a cut) is a resume.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from stella_oci import interrupts
from stella_oci.airgap.generations import decide_generation
from stella_oci.airgap.inventory import Inventory, InventoryExport, check_archive, verify_inventory_signature
from stella_oci.airgap.ledger import GenerationRecord, Ledger, default_ledger_path
from stella_oci.airgap.volumes import PARTS_SUFFIX, join, parts_listing
from stella_oci.cancel import Cancellation
from stella_oci.errors import InvalidInputError, NotFoundError, StellaOciError, VerificationError
from stella_oci.oci.digest import check_digest
from stella_oci.oci.manifest import Descriptor, children, media_type_of, parse_manifest
from stella_oci.oci.mediatypes import MANIFEST_MEDIA_TYPES, OCI_MANIFEST
from stella_oci.oci.reference import Reference, parse_reference
from stella_oci.results import ClockInfo, ResultModel
from stella_oci.signing.trust import TrustRoot
from stella_oci.targets.archive import OciArchiveTarget
from stella_oci.targets.base import Storage
from stella_oci.targets.verified import read_manifest
from stella_oci.verbs.airgap import AirgapCheck, AirgapOptions
from stella_oci.verbs.common import RunOptions, open_destination
from stella_oci.verbs.copy import copy, is_export_manifest
from stella_oci.verbs.pull import ExtraCheck, fetch_export, run_checks

QUARANTINE_EXIT_CODES = (3, 4, 7)
"""Failures that quarantine one export (verification, a missing piece, staleness); any other
failure (offline, auth, transient) stops the load: run it again to resume."""


class LoadedExport(ResultModel):
    archive: str
    source: str
    destination: str
    digest: str
    status: Literal["loaded", "present", "quarantined", "would-load", "would-quarantine"]
    """``would-quarantine``: a dry run found what the real load would quarantine it for (``reason``)."""
    reason: str | None = None
    new_blobs: int | None = None
    new_bytes: int | None = None
    cosign_tags: list[str] = []
    """cosign's ``sha256-<hex>.sig/.att/.sbom`` tags loaded with it (``--no-signatures``: none)."""


class Activation(ResultModel):
    """One archive's ``mirrorGeneration`` at DEST (recorded in the ledger's generations)."""

    archive: str
    origin: str
    """The source the generation counts for (inventory ``origin``)."""
    mirror_generation: int
    previous_generation: int | None = None
    """The highest generation activated before for this origin at DEST."""
    status: Literal["activated", "resumed", "forced", "would-activate", "would-resume", "would-force"]
    """``resumed``: this archive was the last one activated, run again (nothing new recorded);
    ``forced``: not above the previous one, let in by --force-activate (the reason recorded)."""
    force_reason: str | None = None


class LoadResult(ResultModel):
    """What ``load`` did: each export (loaded, present, quarantined), each archive's generation, the clock used."""

    destination: str
    dry_run: bool
    exports: list[LoadedExport]
    inventory_signed_by: dict[str, str] = {}
    """With ``--trust-root``: each archive and the trusted key id its inventory verified with."""
    clock: ClockInfo | None = None
    """The "now" of the staleness checks and import records (docs/airgap.md, "Signed time")."""
    activations: list[Activation] = []


def _destination(dest: str, export: InventoryExport) -> Reference:
    tail = f":{export.tag}" if export.tag else f"@{export.digest}"
    if dest.startswith("oci:"):
        return parse_reference(f"oci:{Path(dest[4:]) / export.repository}{tail}")
    if dest.startswith("oci-archive:"):
        raise InvalidInputError(f"load DEST {dest}: give a registry host, host/prefix, or an oci: directory")
    return parse_reference(f"{dest.rstrip('/')}/{export.repository}{tail}")


def _present(ref: Reference, export: InventoryExport, run: RunOptions) -> bool:
    if ref.transport == "oci" and not (Path(ref.path) / "index.json").is_file():
        return False
    dst = open_destination(ref, run)
    try:
        return dst.resolve(ref.selector or export.digest).digest == export.digest
    except NotFoundError:
        return False
    finally:
        dst.close()


def _new_blobs(archive: Path, ref: Reference, export: InventoryExport, run: RunOptions) -> tuple[int, int]:
    src = OciArchiveTarget(archive, create=False)
    dst = None
    try:
        desc = src.resolve(export.digest)
        roots = [desc, *(src.resolve(d) for d in export.referrers)]
        blobs: dict[str, int] = {}
        for root in roots:
            data = read_manifest(src, root)
            blobs[root.digest] = root.size
            for child in children(data, media_type_of(data, root.media_type)):
                blobs[child.digest] = child.size
        if ref.transport == "oci" and not (Path(ref.path) / "index.json").is_file():
            return len(blobs), sum(blobs.values())
        dst = open_destination(ref, run)
        new = {
            d: s
            for d, s in blobs.items()
            if not dst.has_blob(Descriptor(media_type="application/octet-stream", digest=d, size=s))
        }
        return len(new), sum(new.values())
    finally:
        src.close()
        if dst is not None:
            dst.close()


def _blob(digest: str, size: int) -> Descriptor:
    return Descriptor(media_type="application/octet-stream", digest=digest, size=size)


def _graph_blobs(src: OciArchiveTarget, exports: list[InventoryExport]) -> dict[str, int]:
    """The non-manifest blobs of the exports' graphs (root, referrers), read from the archive's
    manifests (they always travel)."""
    out: dict[str, int] = {}
    for export in exports:
        for digest in (export.digest, *export.referrers):
            root = src.resolve(digest)
            data = read_manifest(src, root)
            for child in children(data, media_type_of(data, root.media_type)):
                if child.media_type in MANIFEST_MEDIA_TYPES:
                    sub = read_manifest(src, child)
                    out.update(
                        (c.digest, c.size) for c in children(sub, media_type_of(sub, child.media_type))
                    )
                else:
                    out[child.digest] = child.size
    return out


def _check_increment(
    path: Path,
    exports: list[InventoryExport],
    omitted: dict[str, str],
    destination: str,
    carried: set[str],
    run: RunOptions,
) -> None:
    src = OciArchiveTarget(path, create=False)
    missing: dict[str, str] = {}
    try:
        for export in exports:
            ref = _destination(destination, export)
            needed = {d: n for d, n in _graph_blobs(src, [export]).items() if d not in carried}
            if not needed:
                continue
            if ref.transport == "oci" and not (Path(ref.path) / "index.json").is_file():
                missing.update((d, omitted.get(d, "?")) for d in needed)
                continue
            dst = open_destination(ref, run)
            try:
                missing.update(
                    (d, omitted.get(d, "?")) for d, n in needed.items() if not dst.has_blob(_blob(d, n))
                )
            finally:
                dst.close()
    finally:
        src.close()
    if missing:
        names = "; ".join(f"{d} (carried by {a})" for d, a in sorted(missing.items()))
        raise VerificationError(
            f"load {path}: an increment whose base is missing at {destination}: {len(missing)} blob(s) it "
            f"leaves out are not there: {names}; nothing was written",
            hint="load the archive(s) named first (or save again without --since)",
            details={"missing": dict(sorted(missing.items()))},
        )


class _Backed:
    """An increment's archive; a blob it leaves out is read from the first of ``fallbacks``
    that has it, the last one without asking (the destination: its error names what is missing),
    verified as every read is. A dry run puts the load's other archives before the destination:
    what the real load would have written there by then."""

    def __init__(self, archive: OciArchiveTarget, fallbacks: Sequence[Storage]) -> None:
        self.archive, self.fallbacks, self.name = archive, list(fallbacks), archive.name

    def resolve(self, selector: str) -> Descriptor:
        return self.archive.resolve(selector)

    def fetch_manifest(self, desc: Descriptor) -> bytes:
        return self.archive.fetch_manifest(desc)

    def open_blob(
        self, desc: Descriptor, offset: int = 0, cancel: Cancellation | None = None
    ) -> AbstractContextManager[Iterator[bytes]]:
        if self.archive.has_blob(desc) or not self.fallbacks:
            return self.archive.open_blob(desc, offset, cancel)
        for other in self.fallbacks[:-1]:
            if other.has_blob(desc):
                return other.open_blob(desc, offset, cancel)
        return self.fallbacks[-1].open_blob(desc, offset, cancel)

    def referrers(self, subject: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        return self.archive.referrers(subject, artifact_type)

    def close(self) -> None:
        self.archive.close()
        for other in self.fallbacks:
            other.close()


def _carried_blobs(inventories: list[tuple[Path, Inventory]]) -> set[str]:
    """Every blob digest the archives themselves hold."""
    carried: set[str] = set()
    for path, inv in inventories:
        src = OciArchiveTarget(path, create=False)
        try:
            carried.update(d for d, n in _graph_blobs(src, inv.exports).items() if src.has_blob(_blob(d, n)))
        finally:
            src.close()
    return carried


def load(
    archives: list[str | Path],
    destination: str,
    *,
    dry_run: bool = False,
    signatures: bool = True,
    run: RunOptions | None = None,
    airgap: AirgapOptions | None = None,
    checks: tuple[ExtraCheck, ...] = (),
    trust_root: str | Path | None = None,
) -> LoadResult:
    """Load the exports of the save ``archives`` into ``destination`` (module docstring);
    ``signatures``: with each export, the cosign tags saved with it (as ``copy`` does).
    ``trust_root``: every archive's inventory must carry a DSSE signature by one of its keys
    (``save --sign-key``), verified before anything is written."""
    run = run or RunOptions()
    if not archives:
        raise InvalidInputError("load: give at least one archive written by stella-oci save")
    root = TrustRoot.load(Path(trust_root)) if trust_root is not None else None
    # the clock first: a refused time anchor (exit 2, 3, 7) stops the load before any write
    clock = AirgapCheck(airgap or AirgapOptions(), is_import=True).clock
    given = [Path(a) for a in archives]
    workdir = Path(tempfile.mkdtemp(prefix="stella-oci-load-"))
    token = interrupts.track(workdir)
    try:
        paths: list[Path] = []
        names: dict[Path, str] = {}
        for p in given:
            listing = parts_listing(p)
            if listing is not None:  # volumes: every part checked, then joined, before any write
                paths.append(join(listing, workdir))
                names[paths[-1]] = str(p)  # reported as the archive the user gave
            elif p.is_file():
                paths.append(p)
            else:
                raise InvalidInputError(f"load {p}: no such file (nor {p.name}{PARTS_SUFFIX})")
        result = _load(
            paths,
            destination,
            dry_run=dry_run,
            signatures=signatures,
            run=run,
            airgap=airgap,
            checks=checks,
            root=root,
            names=names,
        )
        result.clock = ClockInfo.model_validate(clock.to_json())
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        interrupts.untrack(token)


log = logging.getLogger("stella_oci")
_PENDING_ID = 1 << 62
ActivationStatus = Literal["activated", "resumed", "forced", "would-activate", "would-resume", "would-force"]
_STATUS: dict[str, tuple[ActivationStatus, ActivationStatus]] = {
    "activate": ("activated", "would-activate"),
    "resume": ("resumed", "would-resume"),
    "forced": ("forced", "would-force"),
}


def destination_key(destination: str) -> str:
    """DEST as the ledger's generations know it: ``oci:`` + the absolute directory, or the
    registry host[/prefix] without a trailing slash."""
    if destination.startswith("oci:"):
        return "oci:" + str(Path(destination[4:]).resolve())
    return destination.rstrip("/")


def _activate(
    inventories: list[tuple[Path, Inventory]],
    destination: str,
    *,
    dry_run: bool,
    airgap: AirgapOptions,
    names: dict[Path, str],
) -> list[Activation]:
    """Check every archive's generation (all of them, before anything is written), then record
    the activations (not in a dry run). Raises VerificationError (exit 3) naming both generations."""
    if dry_run and not (airgap.ledger or default_ledger_path()).exists():
        ledger: Ledger | None = None  # a dry run creates no ledger: nothing was activated yet
    else:
        try:
            # a dry run reads the file into memory (an older schema is migrated there, never
            # on disk: the file keeps its bytes); the real load opens it to record
            ledger = Ledger.in_memory(airgap.ledger) if dry_run else Ledger(airgap.ledger)
        except StellaOciError as exc:
            if airgap.ledger is not None:
                raise
            log.warning("generations not checked, the default ledger cannot be opened: %s", exc.message)
            return []
    dest = destination_key(destination)
    batch = {inv.digest for _, inv in inventories}
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # ``is not None``, never the ledger's truth value: a Ledger has a length (its imports), and a
    # ledger without imports is false but may hold generations
    with (
        ledger if ledger is not None else nullcontext(),
        ledger.exclusive() if ledger is not None and not dry_run else nullcontext(),
    ):
        # checked and recorded in one transaction: two loads at once cannot both activate N
        pending: list[GenerationRecord] = []
        decided = []
        for path, inv in inventories:
            given = names.get(path, str(path))  # volumes: the name the user gave, not the joined file
            origin = inv.source_id
            known = ledger.generations(origin=origin, destination=dest) if ledger is not None else []
            records = [*known, *(r for r in pending if r.origin == origin)]
            decision = decide_generation(
                records,
                origin=origin,
                destination=dest,
                generation=inv.mirror_generation,
                archive=inv.digest,
                archive_name=Path(given).name,
                batch=batch,
                force_reason=airgap.force_reason,
                ledger_path=str(ledger.path if ledger is not None else airgap.ledger or default_ledger_path()),
            )
            if decision.status != "resume":
                pending.append(
                    GenerationRecord(
                        id=_PENDING_ID + len(pending),
                        origin=origin,
                        destination=dest,
                        generation=inv.mirror_generation,
                        previous_generation=decision.previous,
                        archive=inv.digest,
                        archive_name=Path(given).name,
                        activated_at=now,
                        forced_reason=airgap.force_reason if decision.status == "forced" else None,
                    )
                )
            status = _STATUS[decision.status][1 if dry_run else 0]
            decided.append(
                Activation(
                    archive=given,
                    origin=origin,
                    mirror_generation=inv.mirror_generation,
                    previous_generation=decision.previous,
                    status=status,
                    force_reason=airgap.force_reason if decision.status == "forced" else None,
                )
            )
        if ledger is not None and not dry_run:
            for r in pending:
                ledger.record_generation(
                    origin=r.origin,
                    destination=r.destination,
                    generation=r.generation,
                    previous_generation=r.previous_generation,
                    archive=r.archive,
                    archive_name=r.archive_name,
                    activated_at=r.activated_at,
                    forced_reason=r.forced_reason,
                )
                if r.forced_reason:
                    log.warning(
                        "FORCED: mirrorGeneration %d of %s activated at %s after %s: --force-reason %r",
                        r.generation,
                        r.origin,
                        r.destination,
                        r.previous_generation,
                        r.forced_reason,
                    )
    return decided


def _load(
    paths: list[Path],
    destination: str,
    *,
    dry_run: bool,
    signatures: bool,
    run: RunOptions,
    airgap: AirgapOptions | None,
    checks: tuple[ExtraCheck, ...],
    root: TrustRoot | None = None,
    names: dict[Path, str] | None = None,
) -> LoadResult:
    # every archive whole and unchanged (and signed by a trusted key when a trust root is
    # given), and every blob an increment leaves out already at the destination, before
    # anything is written
    checked: dict[str, tuple[Path, Inventory]] = {}
    for p in paths:
        inv = check_archive(p)
        checked.setdefault(inv.digest, (p, inv))  # the same archive given twice is loaded once
    # applied in generation order (stable: as given within one generation)
    inventories = sorted(checked.values(), key=lambda pi: pi[1].mirror_generation)
    names = names or {}
    signed_by = (
        {names.get(p, str(p)): verify_inventory_signature(p, root, name=names.get(p)) for p, _ in inventories}
        if root
        else {}
    )
    carried = _carried_blobs(inventories)
    for path, inv in inventories:
        if inv.omitted:
            _check_increment(path, inv.exports, inv.omitted, destination, carried, run)
    gap = airgap or AirgapOptions()
    activations = _activate(inventories, destination, dry_run=dry_run, airgap=gap, names=names)
    results: list[LoadedExport] = []
    with _dry_run_ledger(gap) if dry_run else _records_ledger(gap) as ledger:
        for path, inv in inventories:
            for export in inv.exports:
                results.append(
                    _load_export(
                        path,
                        inv,
                        export,
                        destination,
                        [p for p, _ in inventories if p != path],
                        names.get(path, str(path)),
                        ledger,
                        dry_run=dry_run,
                        signatures=signatures,
                        run=run,
                        gap=gap,
                        checks=checks,
                    )
                )
    result = LoadResult(
        destination=destination,
        dry_run=dry_run,
        exports=results,
        inventory_signed_by=signed_by,
        activations=activations,
    )
    bad = [e for e in results if e.status in ("quarantined", "would-quarantine")]
    if bad:
        if dry_run:
            would = sum(1 for e in results if e.status in ("would-load", "present"))
            summary = f"load --dry-run: {len(bad)} export(s) would be quarantined (not tagged), {would} would load"
        else:
            loaded = sum(1 for e in results if e.status in ("loaded", "present"))
            summary = f"load: {len(bad)} export(s) quarantined (not tagged), {loaded} loaded"
        raise VerificationError(
            f"{summary}: "
            + "; ".join(f"{e.source}@{e.digest}: {e.reason}" for e in bad)
            + ("; nothing was written (dry run)" if dry_run else ""),
            hint="the quarantined exports failed verification; carry them again",
            details={"exports": [e.model_dump(by_alias=True) for e in results]},
        )
    return result


def _load_export(
    path: Path,
    inv: Inventory,
    export: InventoryExport,
    destination: str,
    others: list[Path],
    archive_name: str,
    ledger: Ledger | None,
    *,
    dry_run: bool,
    signatures: bool,
    run: RunOptions,
    gap: AirgapOptions,
    checks: tuple[ExtraCheck, ...],
) -> LoadedExport:
    """One export of the archive at ``path``: present (at DEST and its import recorded in
    ``ledger``), loaded (through :func:`copy`, which records it) or quarantined; in a dry run
    (``ledger`` in memory), would-load or would-quarantine (:func:`_dry_run_checks`).
    ``others``: the load's other archives."""
    check_digest(export.digest, f"{path}: inventory export {export.source}")
    ref = _destination(destination, export)
    entry = LoadedExport(
        archive=archive_name,
        source=export.source,
        destination=str(ref),
        digest=export.digest,
        status="loaded",
    )
    if _present(ref, export, run) and _recorded(path, export, ref, ledger):
        entry.status = "present"
    elif dry_run:
        assert ledger is not None
        entry.reason = _dry_run_checks(path, inv, export, ref, others, ledger, run, gap, checks)
        if entry.reason is not None:
            entry.status = "would-quarantine"
        else:
            entry.status = "would-load"
            entry.new_blobs, entry.new_bytes = _new_blobs(path, ref, export, run)
    else:
        source = None
        if inv.omitted:  # an increment: what it leaves out is read back from the destination
            source = _Backed(OciArchiveTarget(path, create=False), [open_destination(ref, run)])
        try:
            copied = copy(
                f"oci-archive:{path}@{export.digest}",
                ref,
                signatures=signatures,
                run=run,
                airgap=replace(gap, archive=inv.digest),
                checks=checks,
                source_target=source,
            )
            entry.cosign_tags = [c.tag for c in copied.cosign_tags]
        except StellaOciError as exc:
            if exc.exit_code not in QUARANTINE_EXIT_CODES:
                raise
            entry.status, entry.reason = "quarantined", str(exc)
    return entry


def _records_ledger(gap: AirgapOptions) -> AbstractContextManager[Ledger | None]:
    """The ledger a load looks in for the imports of exports already at DEST (None: a default
    ledger that cannot be opened; the load goes on without it, as copy does, with a warning)."""
    try:
        return Ledger(gap.ledger)
    except StellaOciError as exc:
        if gap.ledger is not None:
            raise
        log.warning("exports at the destination not looked up in the default ledger: %s", exc.message)
        return nullcontext()


def _recorded(path: Path, export: InventoryExport, ref: Reference, ledger: Ledger | None) -> bool:
    """Whether an export already at ``ref`` needs nothing more: its import into ``ref`` is in the
    ledger (``copy`` writes the export, then records it: a load cut between the two left it
    unrecorded, and running the load again copies it again, which finds every blob there and
    records it), or it is not a StellaOps export (``copy`` records none), or there is no ledger."""
    if ledger is None or ledger.has_import_into(f"{ref.base()}@{export.digest}"):
        return True
    src = OciArchiveTarget(path, create=False)
    try:
        desc = src.resolve(export.digest)
        return desc.media_type != OCI_MANIFEST or not is_export_manifest(parse_manifest(read_manifest(src, desc)))
    finally:
        src.close()


def _dry_run_ledger(gap: AirgapOptions) -> Ledger:
    """What a dry run checks against and records into: the ledger copied into memory (the file
    is only read). A default ledger that cannot be read counts as empty: the real load goes on
    without it too (with a warning)."""
    try:
        return Ledger.in_memory(gap.ledger)
    except StellaOciError as exc:
        if gap.ledger is not None:
            raise
        log.warning("exports not checked against the default ledger, it cannot be read: %s", exc.message)
        return Ledger.in_memory(copy=False)


def _dry_run_checks(
    path: Path,
    inv: Inventory,
    export: InventoryExport,
    ref: Reference,
    others: list[Path],
    ledger: Ledger,
    run: RunOptions,
    gap: AirgapOptions,
    checks: tuple[ExtraCheck, ...],
) -> str | None:
    """The checks :func:`copy` would run on ``export`` before moving a blob (CONTRACT section 5,
    ``checks``, staleness, delta base, rollback), read from the archive (an increment's left-out
    blobs from the load's ``others`` archives, then the destination), against the in-memory
    ``ledger``, where the import is then recorded as the real load would. None when it passes;
    what it would be quarantined for otherwise. Nothing is written."""
    fallbacks: list[Storage] = [OciArchiveTarget(p, create=False) for p in others] if inv.omitted else []
    if inv.omitted and (ref.transport != "oci" or (Path(ref.path) / "index.json").is_file()):
        fallbacks.append(open_destination(ref, run))
    src = _Backed(OciArchiveTarget(path, create=False), fallbacks)
    workdir = Path(tempfile.mkdtemp(prefix="stella-oci-dry-run-"))
    try:
        pinned = parse_reference(f"oci-archive:{path}@{export.digest}")
        desc = src.resolve(export.digest)
        data = read_manifest(src, desc)
        if desc.media_type != OCI_MANIFEST or not is_export_manifest(parse_manifest(data)):
            return None  # not a StellaOps export: copy checks nothing and records nothing either
        fetched, _ = fetch_export(pinned, src, expect_digest=None, workdir=workdir)
        gap_check = AirgapCheck(replace(gap, archive=inv.digest), is_import=True, ledger=ledger)
        extra = run_checks([gap_check, *checks], fetched)
        gap_check.record(fetched, extra.get("provenance"), reference=f"{ref.base()}@{desc.digest}")
    except StellaOciError as exc:
        if exc.exit_code not in QUARANTINE_EXIT_CODES:
            raise
        return str(exc)
    finally:
        src.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return None


__all__ = ["Activation", "LoadResult", "LoadedExport", "load"]
