"""A total deadline per request and a minimum throughput per transfer.

urllib3 and requests only know per-read timeouts: a peer that sends one byte every few
seconds (headers or body) keeps a request alive forever. Here every connection's socket is
wrapped so that the bytes it moves are counted, and one watchdog thread aborts (shuts the
socket down from outside, which wakes the blocked ``recv``/``send`` at once) a request that

* in ``total`` mode (small requests, and the headers of every request): has not finished
  ``timeout`` seconds after it started;
* in ``speed`` mode (blob bodies, both ways): moved fewer than ``min_speed * window`` bytes
  during the last ``window`` seconds.

The aborted read or write raises :class:`DeadlineExceeded` (an :class:`OSError`, so
urllib3/requests wrap it as a connection error and the usual retries apply), whose text
names the limit and the option that sets it.

A :class:`RequestGuard` follows one request (with its redirects) from the first byte to the
end of its answer. Connections made or reused while a guard is *current* in the calling
thread (:func:`current`) attach to it; the watchdog only touches a connection whose guard
is still the one that fired, so a kept-alive connection handed to the next request is never
shut by a stale guard.
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import urllib3.connection
import urllib3.connectionpool

TICK = 0.1
"""How often the watchdog looks at the guards (seconds)."""
TLS_PIECE = 256 * 1024
"""Most bytes handed to one ``send`` of a TLS socket, which returns only once all are written
(and times out as a whole): small enough that a link at a few KiB/s shows progress to the
minimum-speed window and finishes each call within the read timeout."""


class DeadlineExceeded(OSError):
    """A request ran past its deadline or below the minimum throughput (its text says which)."""


class RequestGuard:
    """The limits of one request and the state the watchdog reads."""

    def __init__(self, timeout: float, min_speed: float, window: float) -> None:
        self.timeout = timeout
        self.min_speed = min_speed
        self.window = window
        self.mode = "total"
        self.deadline = time.monotonic() + timeout
        self.moved = 0
        self._window_start = 0.0
        self._window_moved = 0
        self.fired: str | None = None
        self.conn: _GuardedConnectionMixin | None = None
        self.done = False
        self._response: Any = None

    # ---------------------------------------------------------------- modes

    def total(self, timeout: float | None = None) -> None:
        """From now on: finish within ``timeout`` (default: this guard's) seconds."""
        self.deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self.mode = "total"

    def speed(self) -> None:
        """From now on: move at least ``min_speed`` bytes/s, measured over ``window`` seconds."""
        self._window_start = time.monotonic()
        self._window_moved = self.moved
        self.mode = "speed" if self.min_speed > 0 else "none"

    def watch_response(self, response: Any) -> None:
        """The guard ends by itself once this (urllib3) response is closed or read to its end."""
        self._response = response

    def finish(self) -> None:
        self.done = True
        _WATCHDOG.remove(self)

    # ---------------------------------------------------------------- watchdog side

    def ended(self) -> bool:
        if self.done or self.fired is not None:
            return True
        response = self._response
        if response is not None and response.closed:
            self.done = True
        return self.done

    def check(self, now: float) -> str | None:
        """The reason to abort now, if any (called by the watchdog)."""
        if self.mode == "total" and now >= self.deadline:
            return f"no complete answer within {self.timeout:g} s (--timeout / STELLA_OCI_TIMEOUT)"
        if self.mode == "speed" and now - self._window_start >= self.window:
            moved = self.moved - self._window_moved
            if moved < self.min_speed * self.window:
                return (
                    f"transfer slower than {self.min_speed:g} bytes/s over {self.window:g} s "
                    f"({moved} bytes; --min-speed / STELLA_OCI_MIN_SPEED)"
                )
            self._window_start = now
            self._window_moved = self.moved
        return None

    def abort(self, reason: str) -> None:
        self.fired = reason
        conn = self.conn
        if conn is None or conn.stella_guard is not self:
            return
        # (not conn.sock: http.client drops it when an answer says "Connection: close",
        # while the answer is still read from the socket)
        sock = conn.stella_socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def raise_if_fired(self) -> None:
        if self.fired is not None:
            raise DeadlineExceeded(self.fired)


class _Watchdog:
    def __init__(self) -> None:
        self._guards: set[RequestGuard] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, guard: RequestGuard) -> None:
        with self._cond:
            self._guards.add(guard)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="stella-oci-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def remove(self, guard: RequestGuard) -> None:
        with self._cond:
            self._guards.discard(guard)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._guards:
                    self._cond.wait()
                guards = list(self._guards)
            now = time.monotonic()
            for guard in guards:
                if guard.ended():
                    self.remove(guard)
                    continue
                reason = guard.check(now)
                if reason is not None:
                    guard.abort(reason)
                    self.remove(guard)
            time.sleep(TICK)


_WATCHDOG = _Watchdog()
_local = threading.local()


@contextlib.contextmanager
def guarded(guard: RequestGuard) -> Iterator[RequestGuard]:
    """Make ``guard`` current in this thread (connections used meanwhile attach to it) and
    watched; the caller ends it with :meth:`RequestGuard.finish` (a streamed answer outlives
    this block)."""
    previous = getattr(_local, "guard", None)
    _local.guard = guard
    _WATCHDOG.add(guard)
    try:
        yield guard
    finally:
        _local.guard = previous


def current() -> RequestGuard | None:
    guard: RequestGuard | None = getattr(_local, "guard", None)
    return guard


# ------------------------------------------------------------------------ counted sockets


class _CountingReader(socket.SocketIO):
    """The raw reader under the buffered file ``http.client`` reads answers from: counts
    what arrives for the connection's guard and turns a watchdog abort into
    :class:`DeadlineExceeded`."""

    def __init__(self, sock: socket.socket, conn: _GuardedConnectionMixin) -> None:
        super().__init__(sock, "rb")
        self._stella_conn = conn

    def readinto(self, b: Any) -> int:
        guard = self._stella_conn.stella_guard
        try:
            n = super().readinto(b)
        except OSError:
            if guard is not None:
                guard.raise_if_fired()
            raise
        if guard is not None:
            if not n:
                guard.raise_if_fired()
            guard.moved += n or 0
        return n or 0


class _CountingSocket:
    """A socket that counts the bytes it sends and hands out counting readers; everything
    else goes to the real socket."""

    def __init__(self, sock: socket.socket, conn: _GuardedConnectionMixin) -> None:
        self._stella_sock = sock
        self._stella_conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stella_sock, name)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "rb":
            # what socket.makefile does: the reader holds a reference, so that the socket
            # stays open while an answer is read after its connection was closed
            raw = _CountingReader(self._stella_sock, self._stella_conn)
            self._stella_sock._io_refs += 1  # type: ignore[attr-defined]
            return io.BufferedReader(raw, io.DEFAULT_BUFFER_SIZE)
        return getattr(self._stella_sock, "makefile")(mode, *args, **kwargs)  # noqa: B009

    def sendall(self, data: Any, *args: Any) -> None:
        """``socket.sendall`` as a loop of ``send``: on a plain socket each call hands the
        kernel what fits in the socket buffer and returns, so the guard counts bytes as the
        peer takes them (a slow link shows its progress, whatever the size of the piece), and a
        large piece costs one Python step per buffer-full, not per fixed slice. A TLS socket's
        ``send`` writes all it is given (and its timeout bounds the whole call), so it gets
        :data:`TLS_PIECE` at a time."""
        view = memoryview(data).cast("B")
        sock = self._stella_sock
        conn = self._stella_conn
        piece = TLS_PIECE if isinstance(sock, ssl.SSLSocket) else len(view)
        pos, end = 0, len(view)
        while pos < end:
            guard = conn.stella_guard
            try:
                n: int = sock.send(view[pos : pos + piece], *args)
            except OSError:
                if guard is not None:
                    guard.raise_if_fired()
                raise
            pos += n
            if guard is not None:
                guard.moved += n

    def send(self, data: Any, *args: Any) -> int:
        n: int = self._stella_sock.send(data, *args)
        guard = self._stella_conn.stella_guard
        if guard is not None:
            guard.moved += n
        return n

    def fileno(self) -> int:
        return self._stella_sock.fileno()


class _GuardedConnectionMixin:
    sock: Any
    stella_guard: RequestGuard | None = None
    stella_socket: socket.socket | None = None

    def _stella_attach(self) -> None:
        guard = current()
        self.stella_guard = guard
        if guard is not None:
            guard.conn = self

    def connect(self) -> None:
        self._stella_attach()
        super().connect()  # type: ignore[misc]
        if isinstance(self.sock, socket.socket):
            self.stella_socket = self.sock
            self.sock = _CountingSocket(self.sock, self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._stella_attach()
        super().request(*args, **kwargs)  # type: ignore[misc]


class GuardedHTTPConnection(_GuardedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


POOL_CLASSES: dict[str, type[urllib3.connectionpool.HTTPConnectionPool]] = {
    "http": GuardedHTTPConnectionPool,
    "https": GuardedHTTPSConnectionPool,
}
