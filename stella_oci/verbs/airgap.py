"""The air-gap checks of pull, verify and copy: staleness, delta order, and the import ledger.

:class:`AirgapCheck` is an :data:`~stella_oci.verbs.pull.ExtraCheck`: it runs once the
manifest and export.json passed their checks and before any other blob moves. After a
successful import (pull, or copy into a mirror) :meth:`AirgapCheck.record` writes the
BundleProvenance record into the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from stella_oci.airgap import (
    Ledger,
    StalenessConfig,
    StalenessOutcome,
    TimeAnchor,
    build_provenance,
    check_delta,
    evaluate_staleness,
    export_domain,
    format_rfc3339,
    load_staleness_config,
    parse_rfc3339,
)
from stella_oci.airgap.generations import check_rollback
from stella_oci.airgap.timeanchor import Clock, resolve_clock
from stella_oci.errors import InvalidInputError, StalenessError, StellaOciError
from stella_oci.export.annotations import ANN_MANIFEST_DIGEST
from stella_oci.export.models import ExportManifest
from stella_oci.oci.manifest import Descriptor, Manifest
from stella_oci.oci.reference import Reference


class FetchedExport(Protocol):
    """What the air-gap checks read of a fetched export (:class:`stella_oci.verbs.pull.FetchedExport`)."""

    ref: Reference
    desc: Descriptor
    manifest: Manifest
    model: ExportManifest

log = logging.getLogger("stella_oci")


@dataclass(frozen=True)
class AirgapOptions:
    """The air-gap options of ``pull``, ``verify`` and ``copy``: staleness, time anchor, import ledger."""

    staleness_config: Path | None = None
    """A StalenessConfig file; without one, staleness is not evaluated."""
    time_anchor: Path | None = None
    """A TimeAnchor file or a signed one (DSSE); without one the system clock is the anchor,
    recorded as unverified."""
    time_anchor_trust_root: Path | None = None
    """Root certificates a signed ``time_anchor`` must verify with (docs/airgap.md, signed time)."""
    require_time_anchor: bool = False
    """Refuse (exit 7) any clock but a verified time anchor (also ``requireTimeAnchor`` in the config)."""
    domain: str | None = None
    """The export's domain; default: export.json profile.name."""
    ledger: Path | None = None
    """The import ledger; default: $STELLA_OCI_LEDGER or the user data dir."""
    source_environment: str | None = None
    record_in_default_ledger: bool = False
    """A pull without ``ledger`` is recorded in the default ledger (the CLI's pull sets this; a
    library ``pull()`` records an import only when asked)."""
    force_reason: str | None = None
    """``--force-activate --force-reason TEXT``: import an export older than the newest one
    imported for its tenant and profile (and, for ``load``, a generation not above the last
    one); the reason is recorded in the ledger."""
    archive: str | None = None
    """``load``: the inventory digest of the save archive the export comes in (recorded; exports
    of one archive are not rollbacks of each other)."""


class AirgapCheck:
    def __init__(
        self, opts: AirgapOptions, *, is_import: bool, now: datetime | None = None, ledger: Ledger | None = None
    ) -> None:
        """``ledger``: an open ledger to read and record in (left open) instead of the file of
        ``opts.ledger`` (``load --dry-run``: :meth:`Ledger.in_memory`)."""
        self.opts = opts
        self.open_ledger = ledger
        self.is_import = is_import
        given = [
            f"--{name} {value}" if not isinstance(value, bool) else f"--{name}"
            for name, value in (
                ("time-anchor", opts.time_anchor),
                ("time-anchor-trust-root", opts.time_anchor_trust_root),
                ("require-time-anchor", opts.require_time_anchor),
            )
            if value
        ]
        if given and opts.staleness_config is None and not is_import:
            # Without a staleness check and without an import record, nothing would use it.
            raise InvalidInputError(
                f"{' '.join(given)} given without --staleness-config: "
                "the anchor is the 'now' staleness is measured against, and nothing else reads it here",
                hint="add --staleness-config FILE (a StalenessConfig), or leave the time-anchor options out",
            )
        self.now = now or datetime.now(timezone.utc).replace(microsecond=0)
        self.config: StalenessConfig | None = (
            load_staleness_config(opts.staleness_config) if opts.staleness_config else None
        )
        require = None
        if opts.require_time_anchor:
            require = "--require-time-anchor"
        elif self.config is not None and self.config.requireTimeAnchor:
            require = f"requireTimeAnchor in {opts.staleness_config}"
        self.clock: Clock = resolve_clock(
            opts.time_anchor, opts.time_anchor_trust_root, now=self.now, require=require
        )
        self.anchor: TimeAnchor = self.clock.anchor
        self.outcome: StalenessOutcome | None = None
        if opts.force_reason is not None and not is_import:
            raise InvalidInputError(
                "--force-activate: nothing is activated here: only an import (pull, load, or a copy into a "
                "registry or oci: directory) is recorded in the ledger",
                hint="leave --force-activate and --force-reason out",
            )
        self.forced: str | None = None
        """The force reason, once ``--force-activate`` let a rollback through."""

    def _ledger(self, *, read_only: bool = False) -> AbstractContextManager[Ledger]:
        """The ledger, opened (closed when the ``with`` ends), or the open one given. With
        ``read_only``, the file is only read (:meth:`Ledger.read_only`: an older schema is not
        migrated, a missing file is empty and not created)."""
        if self.open_ledger is not None:
            return nullcontext(self.open_ledger)
        return Ledger.read_only(self.opts.ledger) if read_only else Ledger(self.opts.ledger)

    def __call__(self, fetched: FetchedExport) -> dict[str, Any]:
        export = fetched.model
        out: dict[str, Any] = {}
        domain = export_domain(export, self.opts.domain)
        if self.config is not None or self.is_import:
            out["clock"] = self.clock.to_json()  # every result that used a clock says which one
        if self.config is not None:
            generated_at = parse_rfc3339(export.generated_at, field="export.json generatedAt")
            self.outcome = evaluate_staleness(
                generated_at=generated_at,
                config=self.config,
                anchor=self.anchor,
                domain=domain,
                now=self.now,
                export_id=export.export_id,
            )
            out["staleness"] = self.outcome.result
            out.setdefault("checks", []).append("staleness against --staleness-config")
            if not self.outcome.passed:
                try:
                    self.outcome.raise_if_failed()
                except StalenessError as exc:
                    exc.message += f" (measured against {self.clock.describe()})"
                    exc.details["clock"] = self.clock.to_json()
                    if not self.clock.verified:
                        exc.hint = (exc.hint + "; " if exc.hint else "") + (
                            "if that clock is wrong, give a signed time anchor with --time-anchor FILE "
                            "--time-anchor-trust-root ROOT"
                        )
                    if self.is_import:
                        exc.details["provenance"] = self.provenance(fetched)
                    raise
        if self.is_import or self.opts.ledger is not None:
            if export.delta is not None or export.profile.variant == "delta":
                with self._ledger(read_only=True) as ledger:  # a check: it records nothing
                    check_delta(export, ledger)
                out.setdefault("checks", []).append("delta: its base export was imported before (ledger)")
        if self.is_import:
            self._check_rollback(export)
            out.setdefault("checks", []).append(
                "rollback: not older than the newest export imported for its tenant and profile (ledger)"
                + (f"; FORCED: {self.forced}" if self.forced else "")
            )
            out["provenance"] = self.provenance(fetched)
        return out

    def _check_rollback(self, export: ExportManifest) -> None:
        try:
            opened = self._ledger()
        except StellaOciError as exc:
            if self.opts.ledger is not None:
                raise
            log.warning("rollback not checked, the default ledger cannot be opened: %s", exc.message)
            return
        with opened as ledger:
            newer = check_rollback(
                export, ledger, archive=self.opts.archive, force_reason=self.opts.force_reason
            )
        if newer is not None:
            self.forced = self.opts.force_reason
            log.warning(
                "FORCED: export %s (generatedAt %s) rolls back %s (generatedAt %s): --force-reason %r",
                export.export_id,
                export.generated_at,
                newer.export_id,
                format_rfc3339(newer.generated_at),
                self.forced,
            )

    def provenance(self, fetched: FetchedExport) -> dict[str, Any]:
        export = fetched.model
        generated_at = parse_rfc3339(export.generated_at, field="export.json generatedAt")
        staleness = max(0, int((self.anchor.timestamp - generated_at).total_seconds()))
        annotations = fetched.manifest.annotations or {}
        return build_provenance(
            export=export,
            manifest_digest=fetched.desc.digest,
            bundle_digest=None,
            anchor=self.anchor,
            imported_at=self.now,
            domain=export_domain(export, self.opts.domain),
            staleness_seconds=staleness,
            source_environment=self.opts.source_environment,
            export_manifest_digest=annotations.get(ANN_MANIFEST_DIGEST),
            reference=str(fetched.ref),
            force_reason=self.forced,
        )

    @contextmanager
    def importing(
        self, fetched: FetchedExport, provenance: dict[str, Any] | None, reference: str
    ) -> Iterator[Callable[[], None]]:
        """Record the import around the step that makes it real (a pull's final rename).

        The ledger is opened, locked and the row written *before* the block, so an unusable
        explicit ``--ledger`` fails the pull before anything lands at ``--output``. The block
        calls the function it is given to commit the row right after its step (else the row
        is committed when the block ends); it is rolled back if the block raises. Without an
        explicit ledger, a default ledger that cannot be written is a warning, as in
        :meth:`record`.
        """
        if provenance is None:
            provenance = self.provenance(fetched)
        annotations = fetched.manifest.annotations or {}
        with ExitStack() as stack:
            try:
                ledger = stack.enter_context(self._ledger())
                stack.enter_context(
                    ledger.pending_import(
                        export=fetched.model,
                        provenance=provenance,
                        export_manifest_digest=annotations.get(ANN_MANIFEST_DIGEST, ""),
                        reference=reference,
                        archive=self.opts.archive,
                        forced_reason=self.forced,
                    )
                )
            except StellaOciError as exc:
                if self.opts.ledger is not None:
                    raise
                log.warning("import not recorded in the default ledger: %s", exc.message)
            yield stack.close

    def record(self, fetched: FetchedExport, provenance: dict[str, Any] | None, reference: str) -> None:
        """Write the import into the ledger. Without an explicit ``--ledger`` a failure to write
        the default ledger is a warning, not a failed pull."""
        if provenance is None:
            provenance = self.provenance(fetched)
        annotations = fetched.manifest.annotations or {}
        try:
            with self._ledger() as ledger:
                ledger.record_import(
                    export=fetched.model,
                    provenance=provenance,
                    export_manifest_digest=annotations.get(ANN_MANIFEST_DIGEST, ""),
                    reference=reference,
                    archive=self.opts.archive,
                    forced_reason=self.forced,
                )
        except StellaOciError as exc:
            if self.opts.ledger is not None:
                raise
            log.warning("import not recorded in the default ledger: %s", exc.message)
