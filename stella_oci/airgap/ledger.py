"""The import ledger: a local SQLite database of every export imported into this site.

One row per import (re-importing the same export adds a row: the ledger is an audit
trail; counts use distinct exports). The database runs in WAL mode with a busy timeout
and every write is one ``BEGIN IMMEDIATE`` transaction, so several stella-oci processes
may import at the same time without corrupting it or failing.

Default location: ``platformdirs.user_data_dir("stella-oci")/ledger.sqlite3``, or the
path in ``STELLA_OCI_LEDGER``, or the path given to :class:`Ledger`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import ConfigDict, Field, PlainSerializer, WithJsonSchema

from stella_oci.airgap.metrics import build_metrics
from stella_oci.airgap.models import (
    DomainSummary,
    StalenessConfig,
    TimeAnchor,
    export_uuid,
    format_rfc3339,
    parse_rfc3339,
    to_utc,
)
from stella_oci.airgap.staleness import StalenessOutcome, evaluate_domain
from stella_oci.errors import InvalidInputError, TransientError, VerificationError
from stella_oci.export.models import ExportManifest
from stella_oci.results import ResultModel

LEDGER_ENV = "STELLA_OCI_LEDGER"
SCHEMA_VERSION = 2
"""1: imports. 2: imports.archive and imports.forced_reason, the generations table (a version-1
ledger is migrated in place when opened to write; :meth:`Ledger.read_only` reads it as it is)."""
DEFAULT_BUSY_TIMEOUT_SECONDS = 60.0
ERR_EXPORT_BASE_MISSING = "ERR_EXPORT_BASE_MISSING"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS imports (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    export_id               TEXT NOT NULL,
    bundle_id               TEXT NOT NULL,
    run_id                  TEXT,
    tenant                  TEXT,
    profile                 TEXT,
    profile_name            TEXT,
    domain                  TEXT NOT NULL,
    manifest_digest         TEXT,
    export_manifest_digest  TEXT NOT NULL,
    generated_at            TEXT NOT NULL,
    generated_at_us         INTEGER NOT NULL,
    imported_at             TEXT NOT NULL,
    imported_at_us          INTEGER NOT NULL,
    time_anchor             TEXT NOT NULL,
    reference               TEXT,
    base_export_id          TEXT,
    base_manifest_digest    TEXT,
    staleness_seconds       INTEGER,
    provenance              TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS imports_export ON imports (export_id, export_manifest_digest);
CREATE INDEX IF NOT EXISTS imports_domain ON imports (domain, tenant);
CREATE TABLE IF NOT EXISTS generations (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    origin                  TEXT NOT NULL,
    destination             TEXT NOT NULL,
    generation              INTEGER NOT NULL,
    previous_generation     INTEGER,
    archive                 TEXT NOT NULL,
    archive_name            TEXT,
    activated_at            TEXT NOT NULL,
    forced_reason           TEXT
);
CREATE INDEX IF NOT EXISTS generations_source ON generations (origin, destination, generation)
"""
_SCHEMA_STATEMENTS = tuple(filter(None, (s.strip() for s in _SCHEMA.split(";"))))
_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS\s+(\w+)")
"""A table of :data:`_SCHEMA` (its name): the read-only opener shadows the missing ones."""
_IMPORT_COLUMNS_V2 = (("archive", "TEXT"), ("forced_reason", "TEXT"))
"""Columns version 2 added to ``imports`` (ALTER TABLE on a version-1 ledger)."""

_SELECT = (
    "SELECT id, export_id, bundle_id, run_id, tenant, profile, profile_name, domain, manifest_digest, "
    "export_manifest_digest, generated_at, imported_at, time_anchor, reference, base_export_id, "
    "base_manifest_digest, staleness_seconds, provenance, archive, forced_reason FROM imports"
)
_INSERT = (
    "INSERT INTO imports (export_id, bundle_id, run_id, tenant, profile, profile_name, domain, "
    "manifest_digest, export_manifest_digest, generated_at, generated_at_us, imported_at, imported_at_us, "
    "time_anchor, reference, base_export_id, base_manifest_digest, staleness_seconds, provenance, archive, "
    "forced_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_GEN_SELECT = (
    "SELECT id, origin, destination, generation, previous_generation, archive, archive_name, activated_at, "
    "forced_reason FROM generations"
)


def default_ledger_path() -> Path:
    """``$STELLA_OCI_LEDGER``, else ``user_data_dir("stella-oci")/ledger.sqlite3``."""
    env = os.environ.get(LEDGER_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("stella-oci")) / "ledger.sqlite3"


def _open_read_only(path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """A connection that only reads the existing SQLite file ``path`` (never creates it).

    Not SQLite's ``mode=ro``: a read-only connection to a WAL-mode ledger (every ledger this
    stella-oci wrote) creates ``-wal`` and ``-shm`` files it cannot remove, and they stay beside
    the ledger. A read-write connection that writes nothing (``mode=rw``, no journal-mode change;
    :meth:`Ledger.read_only` adds ``PRAGMA query_only``) removes them when it is the last one to
    close, and leaves the file's bytes and mtime as they were (unless a writer that crashed left a
    ``-wal`` file: SQLite then checkpoints it into the ledger on the last close, the data unchanged)."""
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=busy_timeout, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise InvalidInputError(
            f"cannot open the import ledger {path}: {exc}",
            hint=f"give a readable ledger path (--ledger PATH or {LEDGER_ENV})",
        ) from exc
    return conn


def _micros(value: datetime) -> int:
    delta = to_utc(value) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


Timestamp = Annotated[
    datetime,
    PlainSerializer(format_rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
"""A datetime that JSON shows as UTC RFC 3339 with ``Z`` (:func:`format_rfc3339`)."""


class ImportRecord(ResultModel):
    """One row of the ledger. Its JSON (``stella-oci airgap history --format json``, the
    ``imports`` of :class:`HistoryResult`) has the camelCase twins of the fields below except
    those declared ``Field(exclude=True)`` (bundle and run ids, the export manifest-digest,
    time anchor, delta base, staleness, provenance: Python only)."""

    model_config = ConfigDict(frozen=True)

    id: int
    """The row number (imports are numbered in the order they were recorded)."""
    export_id: str
    bundle_id: str = Field(exclude=True)
    run_id: str | None = Field(exclude=True)
    tenant: str | None
    profile: str | None
    """The export's profile ``kind:variant``."""
    profile_name: str | None
    domain: str
    manifest_digest: str | None
    """The OCI manifest digest of the export."""
    export_manifest_digest: str = Field(exclude=True)
    generated_at: Timestamp
    """export.json ``generatedAt``."""
    imported_at: Timestamp
    time_anchor: dict[str, Any] = Field(exclude=True)
    reference: str | None
    """Where the export was imported to (or from)."""
    base_export_id: str | None = Field(exclude=True)
    base_manifest_digest: str | None = Field(exclude=True)
    staleness_seconds: int | None = Field(exclude=True)
    provenance: dict[str, Any] = Field(exclude=True)
    archive: str | None = None
    """``load``: the sha256 of the inventory of the save archive the export came in."""
    forced_reason: str | None = None
    """``--force-reason``, when ``--force-activate`` let this import past the rollback rule."""

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> ImportRecord:
        return cls(
            id=row[0],
            export_id=row[1],
            bundle_id=row[2],
            run_id=row[3],
            tenant=row[4],
            profile=row[5],
            profile_name=row[6],
            domain=row[7],
            manifest_digest=row[8],
            export_manifest_digest=row[9],
            generated_at=parse_rfc3339(row[10]),
            imported_at=parse_rfc3339(row[11]),
            time_anchor=json.loads(row[12]),
            reference=row[13],
            base_export_id=row[14],
            base_manifest_digest=row[15],
            staleness_seconds=row[16],
            provenance=json.loads(row[17]),
            archive=row[18],
            forced_reason=row[19],
        )

    def to_json(self) -> dict[str, Any]:
        """The row as JSON (what ``stella-oci airgap history --format json`` prints)."""
        out: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return out


class GenerationRecord(ResultModel):
    """One activation of a save archive's ``mirrorGeneration`` (``load``) for a source and a
    destination (``stella-oci airgap history --format json``: the ``generations``)."""

    model_config = ConfigDict(frozen=True)

    id: int
    """The row number (activations are numbered in the order they were recorded)."""
    origin: str
    """The archive's source (inventory ``origin``: the registries its exports were saved from)."""
    destination: str
    """The load DEST it was applied to."""
    generation: int = Field(serialization_alias="mirrorGeneration")
    """The archive's ``mirrorGeneration``."""
    previous_generation: int | None
    """The highest generation applied for this source and destination before it."""
    archive: str
    """sha256 of the archive's inventory.json: the same archive run again is a resume."""
    archive_name: str | None
    """The archive's file name as given to ``load``."""
    activated_at: Timestamp
    forced_reason: str | None
    """``--force-reason``, when ``--force-activate`` let a generation not above the last one in."""

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> GenerationRecord:
        return cls(
            id=row[0],
            origin=row[1],
            destination=row[2],
            generation=int(row[3]),
            previous_generation=row[4],
            archive=row[5],
            archive_name=row[6],
            activated_at=parse_rfc3339(row[7]),
            forced_reason=row[8],
        )

    def to_json(self) -> dict[str, Any]:
        """The row as JSON (what ``stella-oci airgap history --format json`` prints)."""
        out: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return out


class HistoryResult(ResultModel):
    """``stella-oci airgap history --format json``: the ledger's two tables, oldest first.
    Members without a value are ``null`` (not left out)."""

    generations: list[GenerationRecord]
    """Generation activations (``load``)."""
    imports: list[ImportRecord]
    """Recorded imports."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return out


class Ledger:
    """The import ledger at ``path`` (created, with its directory, on first use)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS,
    ):
        self.path = Path(path) if path is not None else default_ledger_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot create the directory of the import ledger {self.path}: {exc.strerror}",
                hint=f"give a writable ledger path (--ledger PATH or {LEDGER_ENV})",
            ) from exc
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise InvalidInputError(
                f"cannot open the import ledger {self.path}: {exc}",
                hint=f"give a writable ledger path (--ledger PATH or {LEDGER_ENV})",
            ) from exc
        with self._closed_on_error():
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._enable_wal(busy_timeout)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._create_or_migrate()

    @classmethod
    def read_only(cls, path: str | os.PathLike[str] | None = None) -> Ledger:
        """The ledger file at ``path`` (default: as :class:`Ledger`) opened only to read it, for
        the commands that only read (``airgap status``, ``airgap history``, ``have``, a delta
        check that records nothing): the file keeps its bytes, mtime, schema version and journal
        mode, and no ``-wal``/``-shm`` file is left beside it (see :func:`_open_read_only`).
        Rows are read from the file as they are queried (it is never copied whole). A ledger of
        an older schema version is read through temporary views, never migrated on disk; a newer
        one is refused (exit 2). No file is an empty ledger and nothing is created: a caller
        that needs the file to exist checks that first. Writing to it fails."""
        self = cls.__new__(cls)
        self.path = Path(path) if path is not None else default_ledger_path()
        if not self.path.exists():
            self._conn = sqlite3.connect(":memory:", isolation_level=None)
            with self._closed_on_error():
                self._create_or_migrate()
        else:
            self._conn = _open_read_only(self.path)
            with self._closed_on_error():
                self._older_schema_as_views()
                self._conn.execute("PRAGMA query_only = ON")
        return self

    @classmethod
    def in_memory(cls, path: str | os.PathLike[str] | None = None, *, copy: bool = True) -> Ledger:
        """A ledger in memory standing for the file at ``path`` (default: as :class:`Ledger`):
        with ``copy``, it starts with the file's rows (read once as :meth:`read_only` reads,
        never written; none when there is no file); writes to it stay in memory and are gone
        when it is closed. Its ``path`` is the file's (messages name it). ``load --dry-run``
        records into one what the real load would record, so that each export is checked as
        the real load would check it."""
        self = cls.__new__(cls)
        self.path = Path(path) if path is not None else default_ledger_path()
        self._conn = sqlite3.connect(":memory:", isolation_level=None)
        with self._closed_on_error():
            if copy and self.path.is_file():
                source = _open_read_only(self.path)
                try:
                    source.backup(self._conn)
                finally:
                    source.close()
            self._create_or_migrate()
        return self

    def _older_schema_as_views(self) -> None:
        """On a :meth:`read_only` connection: refuse a newer schema version; show what an older
        one lacks as temporary objects (they live in SQLite's temp schema and shadow the file's
        tables for unqualified names): ``imports`` without the version-2 columns as a view
        adding them as NULL, a missing table as an empty temporary one."""
        cur = self._conn.cursor()
        try:
            version = cur.execute("PRAGMA main.user_version").fetchone()[0]
            self._refuse_newer(version)
            tables = {r[0] for r in cur.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
            for statement in _SCHEMA_STATEMENTS:
                created = _CREATE_TABLE.match(statement)
                if created:
                    if created.group(1) not in tables:
                        cur.execute(statement.replace("CREATE TABLE IF NOT EXISTS ", "CREATE TEMP TABLE ", 1))
            if "imports" in tables:
                have = {r[1] for r in cur.execute("PRAGMA main.table_info(imports)")}
                added = [f"NULL AS {column}" for column, _ in _IMPORT_COLUMNS_V2 if column not in have]
                if added:  # a version-1 ledger
                    # (column names from _IMPORT_COLUMNS_V2, not input)
                    view = f"CREATE TEMP VIEW imports AS SELECT *, {', '.join(added)} FROM main.imports"  # noqa: S608
                    cur.execute(view)
        finally:
            cur.close()

    # -- plumbing -------------------------------------------------------------------------

    def _refuse_newer(self, version: int) -> None:
        """Exit 2 for a ledger whose schema ``version`` is newer than this stella-oci's."""
        if version > SCHEMA_VERSION:
            raise InvalidInputError(
                f"import ledger {self.path} has schema version {version}, newer than this "
                f"stella-oci understands ({SCHEMA_VERSION})",
                hint="upgrade stella-oci, or point it at another ledger file",
            )

    @contextmanager
    def _closed_on_error(self) -> Iterator[None]:
        """Setting up a new connection: on any failure it is closed, and an SQLite error
        becomes :meth:`_db_error`'s (exit 2 naming the file, or 10 when it stayed locked)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise self._db_error(exc) from exc
        except BaseException:
            self._conn.close()
            raise

    def _create_or_migrate(self) -> None:
        """The tables (created when missing) at :data:`SCHEMA_VERSION` (an older ledger is
        migrated in place; a newer one is refused, exit 2)."""
        with self._write() as cur:
            version = cur.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(version)
            for statement in _SCHEMA_STATEMENTS:
                cur.execute(statement)
            have = {r[1] for r in cur.execute("PRAGMA table_info(imports)").fetchall()}
            for column, kind in _IMPORT_COLUMNS_V2:
                if column not in have:  # a version-1 ledger: migrated in place
                    cur.execute(f"ALTER TABLE imports ADD COLUMN {column} {kind}")
            if version < SCHEMA_VERSION:
                cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _enable_wal(self, busy_timeout: float) -> None:
        """Switch to WAL mode. SQLite answers SQLITE_BUSY at once (no busy handler) when another
        process holds the file while the mode changes, e.g. two imports creating one new ledger:
        retry within the busy timeout instead of failing the import."""
        deadline = time.monotonic() + busy_timeout
        delay = 0.01
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _db_error(self, exc: sqlite3.Error) -> InvalidInputError | TransientError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
            return TransientError(
                f"import ledger {self.path} stayed locked by another process: {exc}",
                hint="retry when the other import has finished",
            )
        return InvalidInputError(
            f"import ledger {self.path} is not a usable SQLite database: {exc}",
            hint=f"move the file aside or give another ledger path (--ledger PATH or {LEDGER_ENV})",
        )

    class _Tx:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn
            self.cur = conn.cursor()
            self.outer = False

        def __enter__(self) -> sqlite3.Cursor:
            self.outer = self.conn.in_transaction  # inside Ledger.exclusive(): that one commits
            if not self.outer:
                self.cur.execute("BEGIN IMMEDIATE")
            return self.cur

        def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
            if not self.outer:
                if exc_type is None:
                    self.cur.execute("COMMIT")
                else:
                    self.cur.execute("ROLLBACK")
            self.cur.close()

    def _write(self) -> Ledger._Tx:
        return Ledger._Tx(self._conn)

    @contextmanager
    def exclusive(self) -> Iterator[Ledger]:
        """One write transaction (``BEGIN IMMEDIATE``) around several reads and writes, e.g.
        check a generation and record it: another process's writes wait until it ends."""
        tx = self._write()
        try:
            tx.__enter__()
        except sqlite3.Error as exc:
            raise self._db_error(exc) from exc
        try:
            yield self
        except BaseException as exc:
            tx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        try:
            tx.__exit__(None, None, None)
        except sqlite3.Error as exc:
            raise self._db_error(exc) from exc

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise self._db_error(exc) from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def record_import(
        self,
        *,
        export: ExportManifest,
        provenance: dict[str, Any],
        export_manifest_digest: str,
        reference: str | None = None,
        archive: str | None = None,
        forced_reason: str | None = None,
    ) -> ImportRecord:
        """Record the import of ``export`` (export.json) described by ``provenance``
        (a BundleProvenance from :func:`~stella_oci.airgap.provenance.build_provenance`).

        ``export_manifest_digest`` is the export's ``io.stellaops.export.manifest-digest``:
        what a later delta names as ``delta.baseManifestDigest``. Domain, OCI manifest
        digest, importedAt, time anchor and staleness are taken from ``provenance``.
        """
        with self.pending_import(
            export=export,
            provenance=provenance,
            export_manifest_digest=export_manifest_digest,
            reference=reference,
            archive=archive,
            forced_reason=forced_reason,
        ) as record:
            pass
        return record

    @contextmanager
    def pending_import(
        self,
        *,
        export: ExportManifest,
        provenance: dict[str, Any],
        export_manifest_digest: str,
        reference: str | None = None,
        archive: str | None = None,
        forced_reason: str | None = None,
    ) -> Iterator[ImportRecord]:
        """:meth:`record_import` around a step that must succeed with it (a pull's final rename).

        The row is written, and the ledger's write lock taken, before the block runs, so a
        ledger that cannot be written fails before the step; the row is committed when the
        block ends and rolled back if it raised.
        """
        values = (*self._import_values(export, provenance, export_manifest_digest, reference), archive, forced_reason)
        try:
            tx = self._write()
            cur = tx.__enter__()
            try:
                cur.execute(_INSERT, values)
                row = cur.execute(_SELECT + " WHERE id = ?", (cur.lastrowid,)).fetchone()
            except BaseException as exc:
                tx.__exit__(type(exc), exc, exc.__traceback__)
                raise
        except sqlite3.Error as exc:
            raise self._db_error(exc) from exc
        try:
            yield ImportRecord._from_row(row)
        except BaseException as exc:
            tx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        try:
            tx.__exit__(None, None, None)
        except sqlite3.Error as exc:
            raise self._db_error(exc) from exc

    @staticmethod
    def _import_values(
        export: ExportManifest, provenance: dict[str, Any], export_manifest_digest: str, reference: str | None
    ) -> tuple[Any, ...]:
        generated_at = parse_rfc3339(export.generated_at, field="export.json generatedAt")
        imported_at = parse_rfc3339(str(provenance["importedAt"]), field="provenance importedAt")
        return (
            export.export_id,
            export_uuid(export.export_id),
            export.run_id,
            export.tenant,
            export.profile_label,
            export.profile.name,
            str(provenance["domainId"]),
            provenance.get("manifestDigest"),
            export_manifest_digest,
            format_rfc3339(generated_at),
            _micros(generated_at),
            str(provenance["importedAt"]),
            _micros(imported_at),
            json.dumps(provenance.get("timeAnchor", {}), sort_keys=True, separators=(",", ":")),
            reference,
            export.delta.base_export_id if export.delta else None,
            export.delta.base_manifest_digest if export.delta else None,
            provenance.get("stalenessSeconds"),
            json.dumps(provenance, sort_keys=True, separators=(",", ":")),
        )

    def record_generation(
        self,
        *,
        origin: str,
        destination: str,
        generation: int,
        previous_generation: int | None,
        archive: str,
        archive_name: str | None,
        activated_at: datetime,
        forced_reason: str | None = None,
    ) -> GenerationRecord:
        """Record that ``load`` activates ``generation`` of ``origin`` at ``destination``."""
        try:
            with self._write() as cur:
                cur.execute(
                    "INSERT INTO generations (origin, destination, generation, previous_generation, archive, "
                    "archive_name, activated_at, forced_reason) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        origin,
                        destination,
                        generation,
                        previous_generation,
                        archive,
                        archive_name,
                        format_rfc3339(activated_at),
                        forced_reason,
                    ),
                )
                row = cur.execute(_GEN_SELECT + " WHERE id = ?", (cur.lastrowid,)).fetchone()
        except sqlite3.Error as exc:
            raise self._db_error(exc) from exc
        return GenerationRecord._from_row(row)

    # -- reading --------------------------------------------------------------------------

    def generations(self, *, origin: str | None = None, destination: str | None = None) -> list[GenerationRecord]:
        """Generation activations, in the order they were recorded, optionally filtered."""
        rows = self._query(
            _GEN_SELECT + " WHERE (? IS NULL OR origin = ?) AND (? IS NULL OR destination = ?) ORDER BY id",
            (origin, origin, destination, destination),
        )
        return [GenerationRecord._from_row(r) for r in rows]

    def newest_export(
        self,
        *,
        tenant: str | None,
        profile: str | None,
        profile_name: str | None,
        exclude_archive: str | None = None,
    ) -> ImportRecord | None:
        """The import with the newest export.json ``generatedAt`` for this tenant and profile
        (``kind:variant`` and name); imports that came in the save archive ``exclude_archive``
        do not count."""
        rows = self._query(
            _SELECT + " WHERE tenant IS ? AND profile IS ? AND profile_name IS ? "
            "AND (? IS NULL OR archive IS NULL OR archive != ?) ORDER BY generated_at_us DESC, id DESC LIMIT 1",
            (tenant, profile, profile_name, exclude_archive, exclude_archive),
        )
        return ImportRecord._from_row(rows[0]) if rows else None


    def has_import(self, export_id: str, manifest_digest: str | None = None) -> bool:
        """Whether export ``export_id`` was imported; with ``manifest_digest``, only an
        import whose ``io.stellaops.export.manifest-digest`` equals it counts."""
        rows = self._query(
            "SELECT 1 FROM imports WHERE export_id = ? AND (? IS NULL OR export_manifest_digest = ?) LIMIT 1",
            (export_id, manifest_digest, manifest_digest),
        )
        return bool(rows)

    def has_import_into(self, reference: str) -> bool:
        """Whether an import into ``reference`` was recorded (``copy`` and ``load`` record where
        they wrote the export: ``host/repository@sha256:...`` or ``oci:DIR@sha256:...``)."""
        return bool(self._query("SELECT 1 FROM imports WHERE reference = ? LIMIT 1", (reference,)))

    def imports(
        self, *, export_id: str | None = None, domain: str | None = None, tenant: str | None = None
    ) -> list[ImportRecord]:
        """Import records, oldest import first, optionally filtered."""
        rows = self._query(
            _SELECT + " WHERE (? IS NULL OR export_id = ?) AND (? IS NULL OR domain = ?) "
            "AND (? IS NULL OR tenant = ?) ORDER BY imported_at_us, id",
            (export_id, export_id, domain, domain, tenant, tenant),
        )
        return [ImportRecord._from_row(r) for r in rows]

    def __iter__(self) -> Iterator[ImportRecord]:
        return iter(self.imports())

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM imports")[0][0])

    def domain_summaries(self, *, tenant: str | None = None) -> list[DomainSummary]:
        """Per domain (sorted): distinct exports, imports, last importedAt, newest generatedAt."""
        rows = self._query(
            "SELECT domain, COUNT(DISTINCT export_id), COUNT(*), MAX(imported_at_us), MAX(generated_at_us) "
            "FROM imports WHERE (? IS NULL OR tenant = ?) GROUP BY domain ORDER BY domain",
            (tenant, tenant),
        )
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        return [
            DomainSummary(
                domain=r[0],
                bundle_count=int(r[1]),
                import_count=int(r[2]),
                last_import_at=epoch + timedelta(microseconds=int(r[3])),
                last_source_at=epoch + timedelta(microseconds=int(r[4])),
            )
            for r in rows
        ]

    def domain_summary(self, domain: str, *, tenant: str | None = None) -> DomainSummary | None:
        for summary in self.domain_summaries(tenant=tenant):
            if summary.domain == domain:
                return summary
        return None

    # -- staleness views ------------------------------------------------------------------

    def check_domain(
        self,
        domain: str,
        config: StalenessConfig,
        now: datetime,
        *,
        anchor: TimeAnchor | None = None,
        tenant: str | None = None,
    ) -> StalenessOutcome:
        """Current freshness of ``domain``: ``ERR_AIRGAP_NO_BUNDLE`` without any import,
        ``WARN_AIRGAP_NO_RECENT_IMPORT`` when the last import is older than the threshold."""
        summary = self.domain_summary(domain, tenant=tenant)
        return evaluate_domain(
            domain=domain,
            config=config,
            now=now,
            anchor=anchor,
            last_import_at=summary.last_import_at if summary else None,
            last_source_at=summary.last_source_at if summary else None,
        )

    def metrics(
        self,
        config: StalenessConfig,
        now: datetime,
        tenant: str | None = None,
        *,
        anchor: TimeAnchor | None = None,
    ) -> dict[str, Any]:
        """A schema-valid StalenessMetrics document (see :mod:`stella_oci.airgap.metrics`)."""
        return build_metrics(self.domain_summaries(tenant=tenant), config, now, tenant=tenant, anchor=anchor)


def check_delta(export: ExportManifest, ledger: Ledger) -> None:
    """Refuse a delta export that cannot be applied here (VerificationError, exit 3).

    An export whose profile variant is ``delta`` must carry a ``delta`` block (the schema makes
    the block name its base and carry ``tombstones``; an empty list is a delta that removes
    nothing). Any export with a ``delta`` block needs its base imported first: the ledger must
    hold an import of ``delta.baseExportId`` whose io.stellaops.export.manifest-digest equals
    ``delta.baseManifestDigest``; otherwise ``ERR_EXPORT_BASE_MISSING``.
    """
    export_id = export.export_id
    delta = export.delta
    if delta is None:
        if export.profile.variant == "delta":
            raise VerificationError(
                f"export {export_id} is a {export.profile_label} export but export.json has no 'delta' "
                "block: a delta must name its base and carry tombstones",
                hint="re-export the delta from the Export Center; a delta without tombstones cannot be applied",
                details={"exportId": export_id, "field": "delta"},
            )
        return
    base_id = delta.base_export_id
    base_digest = delta.base_manifest_digest
    if ledger.has_import(str(base_id), str(base_digest)):
        return
    others = sorted({r.export_manifest_digest for r in ledger.imports(export_id=str(base_id))})
    seen = (
        f"; the ledger has {base_id} only with manifest-digest {', '.join(others)}"
        if others
        else "; the ledger has no import of it"
    )
    raise VerificationError(
        f"{ERR_EXPORT_BASE_MISSING}: delta export {export_id} needs base export {base_id} "
        f"(manifest-digest {base_digest}) imported first{seen} (ledger {ledger.path})",
        hint=f"import the base export {base_id} and every delta after it, in order, then this delta",
        details={
            "code": ERR_EXPORT_BASE_MISSING,
            "exportId": export_id,
            "baseExportId": base_id,
            "baseManifestDigest": base_digest,
        },
    )
