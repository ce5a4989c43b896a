"""Leaving nothing behind when a run is stopped: SIGINT, SIGTERM, SIGHUP.

Every file or directory a run creates only for the duration of the run (the partial pull
beside ``--output``, ``$TMPDIR/stella-oci-verify-*``, an unpacked bundle archive, an
``oci-archive:`` staging directory and its partial tar) is *tracked* here while it exists.

The CLI installs :func:`install`: on the first of those signals the main thread removes
every tracked path, prints one line on stderr (and the JSON error with ``--format json``),
and leaves with ``os._exit(128 + signal)`` -- 130 for SIGINT, 143 for SIGTERM. It does not
wait for worker threads: a transfer blocked in a socket read of a stalled registry cannot
delay the exit, and ``os._exit`` takes the sockets down with the process.

Two rules keep the removal exact while workers still run:

* a worker creates entries inside a tracked directory only under :func:`creating`, which
  refuses once removal has begun (so nothing is created after the tree was removed);
* the main thread wraps the steps that must not be split (the ledger commit and the moment
  the pulled bundle stops being a leftover) in :func:`deferred`: a signal arriving inside
  is handled when the block ends.

Python callers of the API (no handler installed) see the usual ``KeyboardInterrupt``; the
verbs' own ``try``/``except`` blocks remove what they created.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

#: The signals handled, and the exit code of each (128 + number, as shells report them).
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_lock = threading.RLock()
_paths: dict[int, Path] = {}
_tokens = itertools.count(1)
_closing = False
_defer_depth = 0
_pending: int | None = None
_fmt = "text"


class Stopping(RuntimeError):
    """Raised in a worker that tries to create a file once the run is being stopped."""


# --------------------------------------------------------------------------- tracking


def track(path: str | os.PathLike[str]) -> int:
    """Remember ``path`` as a leftover to remove if the run is stopped; returns a token."""
    with _lock:
        token = next(_tokens)
        _paths[token] = Path(path)
        return token


def retrack(token: int, path: str | os.PathLike[str]) -> None:
    """The leftover of ``token`` now lives at ``path`` (it was renamed)."""
    with _lock:
        if token in _paths:
            _paths[token] = Path(path)


def untrack(token: int | None) -> None:
    """``path`` of ``token`` is no longer a leftover (it was removed, or it is the result)."""
    if token is None:
        return
    with _lock:
        _paths.pop(token, None)


def tracked_paths() -> list[Path]:
    with _lock:
        return list(_paths.values())


@contextmanager
def temp_dir(prefix: str, dir: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A tracked ``tempfile.mkdtemp`` directory, removed when the block ends."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    token = track(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        untrack(token)


@contextmanager
def creating() -> Iterator[None]:
    """Create files or directories inside a tracked directory; refused once a stop began."""
    with _lock:
        if _closing:
            raise Stopping("the run is being stopped: nothing more is written")
        yield


@contextmanager
def deferred() -> Iterator[None]:
    """Steps that a signal must not split: a signal arriving inside is acted on at the end."""
    global _defer_depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: nothing to defer elsewhere
        return
    _defer_depth += 1
    try:
        yield
    finally:
        _defer_depth -= 1
        if _defer_depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            _stop(signum)


def _remove(path: Path) -> None:
    for _ in range(3):  # a worker may have been writing into the tree while it went
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass
        if not os.path.lexists(path):
            return


def remove_all() -> list[Path]:
    """Stop all creation and remove every tracked path (newest first); returns what was tracked."""
    global _closing
    got = _lock.acquire(timeout=2.0)  # never wait long for a worker; the main thread may hold it
    try:
        _closing = True
        paths = [_paths[k] for k in sorted(_paths, reverse=True)]
        _paths.clear()
    finally:
        if got:
            _lock.release()
    for path in paths:
        _remove(path)
    for path in paths:  # once more: a writer outside creating() may have been mid-step
        if os.path.lexists(path):
            _remove(path)
    return paths


# --------------------------------------------------------------------------- the handler


def install(fmt: str = "text") -> None:
    """Handle SIGINT, SIGTERM and SIGHUP as described in the module docstring (main thread only)."""
    global _fmt
    _fmt = fmt
    for sig in SIGNALS:
        if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
            continue  # nohup: keep ignoring hang-ups
        signal.signal(sig, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _defer_depth:
        _pending = signum
        return
    _stop(signum)


def _stop(signum: int) -> None:
    for sig in SIGNALS:  # a second Ctrl-C while cleaning up changes nothing
        signal.signal(sig, signal.SIG_IGN)
    removed = remove_all()
    name = signal.Signals(signum).name
    code = 128 + signum
    message = f"stopped by {name}"
    if removed:
        message += f"; removed {len(removed)} partial file(s) and directories"
    _write(2, _clear_progress_line() + f"stella-oci: {message}\n")
    if _fmt == "json":
        doc = {"error": {"code": code, "kind": "interrupted", "message": message}}
        _flush(sys.stdout)
        _write(1, json.dumps(doc) + "\n")
    else:
        _flush(sys.stdout)
    _exit(code)


def _clear_progress_line() -> str:
    try:
        return "\r\x1b[2K\x1b[?25h" if sys.stderr is not None and sys.stderr.isatty() else ""
    except (OSError, ValueError):
        return ""


def _flush(stream: object) -> None:
    try:
        stream.flush()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001, S110 - the stream may be mid-write in the interrupted frame
        pass


def _write(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode("utf-8", "replace"))
    except OSError:
        pass


_exit: Callable[[int], None] = os._exit
