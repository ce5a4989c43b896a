"""Cancelling transfers that are in flight, including those blocked in a socket read.

A :class:`Cancellation` is a flag that the copy engine sets when one transfer of a call fails.
Chunked readers check it between chunks, which is enough for local files; a network read
that is blocked (a stalled registry sends nothing) would only notice after its read timeout.
So readers that can block register an *interrupt* with :meth:`Cancellation.on_cancel` (the
transport shuts the response's socket down): :meth:`Cancellation.set` runs every registered
interrupt at once, the blocked read returns, and the reader raises :class:`Cancelled`.

This module imports nothing else of stella-oci's but the error base, so the transport, the
targets and the engine can all use it.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from stella_oci.errors import StellaOciError

log = logging.getLogger("stella_oci")


class Cancelled(StellaOciError):
    """A transfer stopped because its call was cancelled (a sibling failed). Never the error a
    user sees: the sibling's failure is reported instead."""


class Cancellation:
    """A cancel flag whose :meth:`set` also interrupts blocked reads."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._interrupts: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def set(self) -> None:
        """Cancel: every reader stops at its next chunk, blocked reads are interrupted now."""
        with self._lock:
            self._event.set()
            interrupts = list(self._interrupts.values())
        for interrupt in interrupts:
            try:
                interrupt()
            except Exception as exc:  # noqa: BLE001 - an interrupt must not stop the others
                log.debug("interrupting a transfer failed: %s", exc)

    def check(self, what: str) -> None:
        """Raise :class:`Cancelled` naming ``what`` once cancelled."""
        if self._event.is_set():
            raise Cancelled(f"{what}: cancelled")

    @contextmanager
    def on_cancel(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """Run ``interrupt`` if the call is cancelled while the block runs (at once if it
        already is)."""
        key = next(self._ids)
        with self._lock:
            self._interrupts[key] = interrupt
            already = self._event.is_set()
        if already:
            interrupt()
        try:
            yield
        finally:
            with self._lock:
                self._interrupts.pop(key, None)


__all__ = ["Cancellation", "Cancelled"]
