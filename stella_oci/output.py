"""What the CLI shows: results as text or one JSON document, errors, and transfer progress.

Progress is drawn with rich on stderr, only when stderr is a terminal and neither
``--quiet`` nor ``--format json`` was given, so CI logs and JSON consumers stay clean.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
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


def rate_text(nbytes: float, seconds: float) -> str:
    return human_size(nbytes / seconds) + "/s" if seconds > 0 else "-"


class RichProgress:
    """On a terminal: a "checking" bar with a file counter while a push checks its bundle, then one
    bar for the whole artifact (MiB, MiB/s, blobs done/total), plus a line per large blob in flight."""

    LARGE = 8 * 1024 * 1024

    def __init__(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
        from rich.text import Text

        class SizeColumn(ProgressColumn):
            def render(self, task: Task) -> Text:
                total = f"/{human_size(task.total)}" if task.total else ""
                return Text(f"{human_size(task.completed)}{total}")

        class RateColumn(ProgressColumn):
            def render(self, task: Task) -> Text:
                return Text(human_size(task.speed) + "/s" if task.speed else "")

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            SizeColumn(),
            RateColumn(),
            TextColumn("{task.fields[files]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._description = description
        self._lock = threading.RLock()
        self._total = 0
        self._blobs_total = 0
        self._blobs_done = 0
        self._hashing: Any = None
        self._overall: Any = None
        self._tasks: dict[str, Any] = {}
        self._progress.start()

    @staticmethod
    def _files(done: int, total: int) -> str:
        return f"{done}/{total} files" if total else ""

    def _ensure_overall(self) -> Any:
        with self._lock:
            if self._overall is None:
                if self._hashing is not None:  # the hashing line stays, finished
                    task = self._progress.tasks[-1] if self._progress.tasks else None
                    done = task.completed if task is not None else 0
                    self._progress.update(self._hashing, description="checked", total=done or 1, completed=done or 1)
                self._overall = self._progress.add_task(self._description, total=self._total or None, files="")
            return self._overall

    def file_hashed(self, path: str, size: int, done: int, total: int) -> None:
        with self._lock:
            if self._hashing is None:
                self._hashing = self._progress.add_task("checking", total=None, files="")
            self._progress.update(self._hashing, advance=size, files=self._files(done, total))

    def add_total(self, nbytes: int, blobs: int = 0) -> None:
        with self._lock:
            self._total += nbytes
            self._blobs_total += blobs
            overall = self._ensure_overall()
            self._progress.update(overall, total=self._total, files=self._files(self._blobs_done, self._blobs_total))

    def blob_started(self, desc: Descriptor) -> None:
        with self._lock:
            self._ensure_overall()
            if desc.size >= self.LARGE:
                self._tasks[desc.digest] = self._progress.add_task(
                    "  " + (desc.title or desc.digest[:19]), total=desc.size, files=""
                )

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        self._progress.advance(self._ensure_overall(), nbytes)
        task = self._tasks.get(desc.digest)
        if task is not None:
            self._progress.advance(task, nbytes)

    def blob_done(self, desc: Descriptor, how: PushOutcome) -> None:
        with self._lock:
            task = self._tasks.pop(desc.digest, None)
            self._blobs_done += 1
            overall = self._ensure_overall()
            self._progress.update(overall, files=self._files(self._blobs_done, self._blobs_total))
        if task is not None:
            self._progress.remove_task(task)
        if how != "uploaded":  # PushOutcome is a str enum (not imported at runtime: fast --help)
            self._progress.advance(overall, desc.size)

    def close(self, failed: bool = False) -> None:
        self._progress.stop()


class LineProgress:
    """For CI logs (stderr not a terminal): plain lines, never redrawn. One when a push starts and
    ends checking its bundle, one per completed blob (with many small blobs, at most one every
    ``interval`` seconds, and the last), one every ``interval`` seconds while bytes move, and a
    summary: bytes and blobs done of the total, and the rate, in MiB."""

    def __init__(self, description: str, stream: TextIO | None = None, *, interval: float = 5.0) -> None:
        self._verb = description
        self._out = stream or sys.stderr
        self._interval = interval
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last = self._started
        self._total = 0
        self._done_bytes = 0
        self._blobs_total = 0
        self._blobs_done = 0
        self._hash_started: float | None = None
        self._hashed_bytes = 0
        self._closed = False

    def _line(self, text: str) -> None:
        self._out.write(f"stella-oci: {self._verb}: {text}\n")
        self._out.flush()
        self._last = time.monotonic()

    def _state(self) -> str:
        elapsed = time.monotonic() - self._started
        total = f"/{human_size(self._total)}" if self._total else ""
        blobs = f", {self._blobs_done}/{self._blobs_total} blobs" if self._blobs_total else ""
        return f"{human_size(self._done_bytes)}{total}{blobs}, {rate_text(self._done_bytes, elapsed)}"

    def file_hashed(self, path: str, size: int, done: int, total: int) -> None:
        with self._lock:
            now = time.monotonic()
            if self._hash_started is None:
                self._hash_started = now
                self._line(f"checking {total} files")
            self._hashed_bytes += size
            if done == total:
                self._line(
                    f"checked {done}/{total} files, {human_size(self._hashed_bytes)} "
                    f"in {now - self._hash_started:.1f} s"
                )
                self._started = time.monotonic()  # the transfer's rate starts now
            elif now - self._last >= self._interval:
                self._line(f"checking: {done}/{total} files, {human_size(self._hashed_bytes)}")

    def add_total(self, nbytes: int, blobs: int = 0) -> None:
        with self._lock:
            self._total += nbytes
            self._blobs_total += blobs

    def blob_started(self, desc: Descriptor) -> None:
        pass

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        with self._lock:
            self._done_bytes += nbytes
            if time.monotonic() - self._last >= self._interval:
                self._line(self._state())

    def blob_done(self, desc: Descriptor, how: PushOutcome) -> None:
        with self._lock:
            self._blobs_done += 1
            if how != "uploaded":
                self._done_bytes += desc.size
            last = self._blobs_done == self._blobs_total
            if desc.size >= RichProgress.LARGE or last or time.monotonic() - self._last >= self._interval:
                name = desc.title or desc.digest[:19]
                note = {"exists": ", already there", "mounted": ", mounted"}.get(str(how), "")
                self._line(f"{self._state()} ({name}, {human_size(desc.size)}{note})")

    def close(self, failed: bool = False) -> None:
        """The summary line: ``done: ...``, or ``stopped: ...`` when the command failed (a
        CI log must not say "done" above the error that ended the run)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._blobs_total:
                word = "stopped" if failed else "done"
                self._line(f"{word}: {self._state()} in {time.monotonic() - self._started:.1f} s")


def progress_for(fmt: str, quiet: bool, description: str) -> RichProgress | LineProgress | None:
    """What shows progress on stderr: nothing for --quiet or a JSON/template stdout; rich bars on
    a terminal; plain lines otherwise (CI logs)."""
    if fmt != "text" or quiet:
        return None
    if sys.stderr.isatty():
        return RichProgress(description)
    return LineProgress(description)
