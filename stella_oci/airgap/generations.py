"""Monotonic activation: mirror generations (``load``) and export rollback (every recorded import).

Two rules, both kept by the import ledger (docs/airgap.md, "Generations and rollback"):

- **Generations.** Every ``save`` archive carries a ``mirrorGeneration`` and an ``origin`` (the
  registries its exports were saved from). ``load`` refuses an archive whose generation is not
  above the highest one already activated for the same origin at the same destination
  (``ERR_AIRGAP_GENERATION_REPLAY``, exit 3), before anything is written. Running the archive
  activated last again (a load cut in the middle, or a re-run) is a resume, not a replay.
- **Rollback.** An export whose export.json ``generatedAt`` is older than the newest export
  already imported for the same tenant and profile (``kind:variant`` and name) is refused
  (``ERR_AIRGAP_EXPORT_ROLLBACK``, exit 3). Exports that came in the same save archive do not
  count against each other (one archive is one generation, and a resumed load must finish).

``--force-activate --force-reason TEXT`` lets either through; the reason is recorded in the
ledger row (``generations.forced_reason``, ``imports.forced_reason``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from stella_oci.airgap.ledger import GenerationRecord, ImportRecord, Ledger
from stella_oci.airgap.models import format_rfc3339, parse_rfc3339
from stella_oci.errors import VerificationError
from stella_oci.export.models import ExportManifest

ERR_AIRGAP_GENERATION_REPLAY = "ERR_AIRGAP_GENERATION_REPLAY"
ERR_AIRGAP_EXPORT_ROLLBACK = "ERR_AIRGAP_EXPORT_ROLLBACK"
FORCE_HINT = "to activate it on purpose: --force-activate --force-reason TEXT (the reason is recorded in the ledger)"


@dataclass(frozen=True)
class Decision:
    """What ``load`` does with one archive's generation."""

    status: Literal["activate", "resume", "forced"]
    """``activate``: above the last one; ``resume``: this archive was the last activated (run
    again, nothing new recorded); ``forced``: not above, let in by --force-activate."""
    previous: int | None
    """The highest generation activated before, for this origin and destination."""


def decide_generation(
    records: Sequence[GenerationRecord],
    *,
    origin: str,
    destination: str,
    generation: int,
    archive: str,
    archive_name: str,
    batch: Collection[str] = (),
    force_reason: str | None = None,
    ledger_path: str = "",
) -> Decision:
    """Check ``generation`` of the archive whose inventory digest is ``archive`` against the
    activations ``records`` (same origin and destination, in recorded order). ``batch``: the
    inventory digests of every archive of this load. Raises ``VerificationError`` (exit 3)."""
    last = max((r.generation for r in records), default=None)
    if last is None or generation > last:
        return Decision("activate", last)
    mine = [r for r in records if r.archive == archive and r.generation == generation]
    if mine and all(r.archive in batch or r.archive == archive for r in records if r.id > mine[-1].id):
        # this archive was activated and nothing else since: a cut or repeated load, finishing
        return Decision("resume", last)
    if force_reason:
        return Decision("forced", last)
    newest = [r for r in records if r.generation == last][-1]
    what = "the same generation as" if generation == last else "older than"
    raise VerificationError(
        f"{ERR_AIRGAP_GENERATION_REPLAY}: {archive_name} has mirrorGeneration {generation}, {what} "
        f"mirrorGeneration {last} already applied for source {origin} at {destination} (archive "
        f"{newest.archive_name or newest.archive}, activated {format_rfc3339(newest.activated_at)}; "
        f"ledger {ledger_path}); a generation must be above the last one applied; nothing was written",
        hint=f"carry an archive saved with --generation above {last}; {FORCE_HINT}",
        details={
            "code": ERR_AIRGAP_GENERATION_REPLAY,
            "origin": origin,
            "destination": destination,
            "mirrorGeneration": generation,
            "lastGeneration": last,
            "lastArchive": newest.archive_name or newest.archive,
        },
    )


def check_rollback(
    export: ExportManifest,
    ledger: Ledger,
    *,
    archive: str | None = None,
    force_reason: str | None = None,
) -> ImportRecord | None:
    """Refuse ``export`` when it is older than the newest export already imported for the same
    tenant and profile (``ERR_AIRGAP_EXPORT_ROLLBACK``, exit 3). Returns the newer import it
    rolls back to when ``force_reason`` lets it through, else None."""
    newest = ledger.newest_export(
        tenant=export.tenant,
        profile=export.profile_label,
        profile_name=export.profile.name,
        exclude_archive=archive,
    )
    if newest is None:
        return None
    generated = parse_rfc3339(export.generated_at, field="export.json generatedAt")
    if generated >= newest.generated_at:
        return None
    if force_reason:
        return newest
    raise VerificationError(
        f"{ERR_AIRGAP_EXPORT_ROLLBACK}: export {export.export_id} (tenant {export.tenant}, profile "
        f"{export.profile_label} {export.profile.name!r}) was generated at {format_rfc3339(generated)}, before "
        f"export {newest.export_id} (generatedAt {format_rfc3339(newest.generated_at)}) already imported for the "
        f"same tenant and profile (ledger {ledger.path}): importing it would roll the mirror back",
        hint=f"import an export generated at or after {format_rfc3339(newest.generated_at)}; {FORCE_HINT}",
        details={
            "code": ERR_AIRGAP_EXPORT_ROLLBACK,
            "exportId": export.export_id,
            "generatedAt": format_rfc3339(generated),
            "newerExportId": newest.export_id,
            "newerGeneratedAt": format_rfc3339(newest.generated_at),
            "tenant": export.tenant,
            "profile": export.profile_label,
        },
    )


__all__ = [
    "ERR_AIRGAP_EXPORT_ROLLBACK",
    "ERR_AIRGAP_GENERATION_REPLAY",
    "Decision",
    "check_rollback",
    "decide_generation",
]
