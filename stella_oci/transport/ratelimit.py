"""Per-host request pacing shared by every thread of the process: ``--rate-limit N/s`` and
the wait after a ``429``.

One :class:`HostGate` per registry host (:func:`gate_for`), whatever the number of
:class:`~stella_oci.transport.client.RegistryClient` objects or threads talking to it:

* **Rate** (``TransportOptions.rate_limit``, ``--rate-limit N/s``, as regclient's
  ``reqPerSec``): a token bucket with a burst of one. Each request reserves the next free
  slot, slots ``1/N`` s apart, so in any window of ``W`` seconds at most ``W * N + 1``
  requests go out, however many threads ask.
* **429**: when any request to the host is answered ``429``, the host is closed until
  ``Retry-After`` has passed (capped at the retry policy's ``max_delay``), or, without
  ``Retry-After``, for a backoff that doubles with each consecutive ``429``
  (``base_delay * 2**n``, capped the same way); every request to that host waits, not only
  the one that got it. A thread that reserved a slot before the ``429`` arrived checks again
  after its wait.

Waits happen before a request's deadline starts (:mod:`~stella_oci.transport.deadline`) and
before its retry budget starts counting, so a long queue is not a timeout.
"""

from __future__ import annotations

import re
import threading
import time

from stella_oci.errors import InvalidInputError

_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*$", re.IGNORECASE)


def parse_rate(text: str) -> float:
    """``"10/s"``, ``"10"`` (per second), ``"120/m"`` -> requests per second (> 0)."""
    m = _RATE_RE.match(text or "")
    if not m:
        raise InvalidInputError(
            f"--rate-limit {text!r}: not a rate",
            hint="give requests per second as N/s (e.g. 10/s, 0.5/s) or per minute as N/m (e.g. 120/m)",
        )
    value = float(m.group(1))
    per = (m.group(2) or "s").lower()
    rate = value / 60.0 if per.startswith("m") else value
    if rate <= 0:
        raise InvalidInputError(f"--rate-limit {text!r}: must be more than 0 requests per second")
    return rate


class HostGate:
    """The pacing of one host (thread-safe; monotonic clock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rate: float | None = None
        self._next_slot = 0.0
        self._closed_until = 0.0
        self._strikes = 0

    def wait(self) -> float:
        """Block until this request may go: its rate slot has come and the host is not closed
        by a 429. A request that finds the host closed when its slot comes takes a new slot
        after the closure (so the requests held by a 429 leave paced, not all at once).
        Returns the seconds waited."""
        start = time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                at = max(now, self._closed_until)
                if self.rate:
                    at = max(at, self._next_slot)
                    self._next_slot = at + 1.0 / self.rate
            if at > now:
                time.sleep(at - now)
            with self._lock:
                if self._closed_until <= time.monotonic():
                    return time.monotonic() - start

    def too_many(self, retry_after: float | None, base_delay: float, max_delay: float) -> float:
        """A 429 was answered: close the host for ``retry_after`` (or a doubling backoff);
        returns the seconds it stays closed from now."""
        with self._lock:
            if retry_after is None:
                delay = base_delay * (2**self._strikes)
                self._strikes += 1
            else:
                delay = retry_after
            delay = min(max(delay, 0.0), max_delay)
            self._closed_until = max(self._closed_until, time.monotonic() + delay)
            return self._closed_until - time.monotonic()

    def answered(self) -> None:
        """An answer other than 429: the backoff without Retry-After starts over."""
        if self._strikes:
            with self._lock:
                self._strikes = 0


class _NoGate(HostGate):
    """Requests to another host than the registry's (a storage redirect): never paced."""

    def wait(self) -> float:
        return 0.0

    def too_many(self, retry_after: float | None, base_delay: float, max_delay: float) -> float:
        return 0.0


NO_GATE: HostGate = _NoGate()
_GATES: dict[str, HostGate] = {}
_GATES_LOCK = threading.Lock()


def gate_for(host: str, rate: float | None) -> HostGate:
    """The process-wide gate of ``host``, paced at ``rate`` (None: no pace; the session opened
    last sets it: a process runs with one set of options)."""
    key = host.lower()
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = HostGate()
        gate.rate = rate
        return gate


__all__ = ["NO_GATE", "HostGate", "gate_for", "parse_rate"]
