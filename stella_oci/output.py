"""What the CLI shows: results as text or one JSON document, errors, and transfer progress.

Progress is drawn with rich on stderr, only when stderr is a terminal and neither
``--quiet`` nor ``--format json`` was given, so CI logs and JSON consumers stay clean.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from stella_oci.errors import InvalidInputError, StellaOciError

if TYPE_CHECKING:  # pydantic models: imported by the commands that make them, not by --help
    from pydantic import BaseModel

    from stella_oci.oci.manifest import Descriptor
    from stella_oci.targets.base import PushOutcome


def emit_json(doc: dict[str, Any], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    out.flush()


_TEMPLATE_FIELD = re.compile(r"\{\{\s*\.([A-Za-z0-9_.-]+)\s*\}\}")


def render_template(template: str, doc: dict[str, Any]) -> str:
    """``{{.digest}}``, ``{{.transfer.bytes}}``, ``{{.layers.0.path}}``: fields of the JSON document
    (strings as they are, anything else as JSON). An unknown field is an error naming the known ones."""

    def field(m: re.Match[str]) -> str:
        value: Any = doc
        for part in m.group(1).split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise InvalidInputError(
                    f"--format {template!r}: the result has no field .{m.group(1)}",
                    hint="fields: " + ", ".join(f".{k}" for k in sorted(doc)) + " (docs/output.md)",
                )
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    return _TEMPLATE_FIELD.sub(field, template)


def emit_result(result: BaseModel, fmt: str, text: str | None) -> None:
    """Print the result: its JSON document, a template of it, or ``text`` (None: the command
    already wrote its output, e.g. raw manifest bytes)."""
    if fmt == "json" or "{{" in fmt:
        from stella_oci.results import to_json_dict

        doc = to_json_dict(result)
        if fmt == "json":
            emit_json(doc)
        else:
            sys.stdout.write(render_template(fmt, doc) + "\n")
            sys.stdout.flush()
    elif text is not None:
        sys.stdout.write(text.rstrip("\n") + "\n")
        sys.stdout.flush()


def emit_error(error: StellaOciError, fmt: str) -> None:
    from stella_oci.cli.hints import hint_for

    error.hint = hint_for(error)
    # Every secret this process learned (passwords, tokens, credentials refused in a
    # reference) is masked here too, whatever built the message.
    from stella_oci.transport.redact import redact

    if fmt == "json":
        emit_json(json.loads(redact(json.dumps(error.to_json()))))
    else:
        sys.stderr.write(f"stella-oci: error: {redact(str(error))}\n")
        sys.stderr.flush()


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class RichProgress:
    """One bar for the whole artifact (bytes), plus a line per large blob in flight."""

    LARGE = 8 * 1024 * 1024

    def __init__(self, description: str, total_bytes: int | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._lock = threading.Lock()
        self._total = 0
        self._overall = self._progress.add_task(description, total=total_bytes)
        self._tasks: dict[str, Any] = {}
        self._progress.start()

    def add_total(self, nbytes: int) -> None:
        with self._lock:
            self._total += nbytes
            self._progress.update(self._overall, total=self._total)

    def blob_started(self, desc: Descriptor) -> None:
        if desc.size >= self.LARGE:
            with self._lock:
                self._tasks[desc.digest] = self._progress.add_task(
                    "  " + (desc.title or desc.digest[:19]), total=desc.size
                )

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        self._progress.advance(self._overall, nbytes)
        task = self._tasks.get(desc.digest)
        if task is not None:
            self._progress.advance(task, nbytes)

    def blob_done(self, desc: Descriptor, how: PushOutcome) -> None:
        with self._lock:
            task = self._tasks.pop(desc.digest, None)
        if task is not None:
            self._progress.remove_task(task)
        if how != "uploaded":  # PushOutcome is a str enum (not imported at runtime: fast --help)
            self._progress.advance(self._overall, desc.size)

    def close(self) -> None:
        self._progress.stop()


def progress_wanted(fmt: str, quiet: bool) -> bool:
    return fmt == "text" and not quiet and sys.stderr.isatty()
