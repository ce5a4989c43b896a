"""A real TCP proxy between a client and a registry that injects faults.

Every client connection carries one HTTP request: the proxy reads the request head, decides,
then either answers itself (a canned status such as 429 or 503), swallows the request, or
forwards it upstream with ``Connection: close`` and pipes bytes both ways. Because each
connection holds exactly one exchange, every request passes the fault rules.

Faults:
  * ``rules``: canned answers (``StatusRule``) for matching requests, ``times`` each (-1: forever);
  * ``cut_upload_after``: once the client has sent that many request-body bytes in total,
    cut both connections in the middle of the transfer (the registry sees a partial body);
  * ``swallow_upload``: the first PATCH/PUT with a body that starts once at least that many
    body bytes were forwarded is read (up to ``swallow_bytes`` of it) and dropped *without*
    reaching the registry, then the connection is cut: the registry's upload session stays
    intact, so the client can resume at the registry's offset;
  * ``cut_download_after``: once that many response bytes of blob GETs went to the client,
    cut the connection (the client sees a short body).
  * ``faults``: :class:`Fault` rules: a fault *kind* for requests matching a method and a
    path regex, injected once (``times=1``) or on every attempt (``times=-1``);
  * ``random_faults(seed, rate, kinds)``: each request that no rule matched gets a fault with
    probability ``rate``, its kind drawn from ``kinds``; all draws (whether, which, where to
    cut) come from one ``random.Random(seed)`` in the order requests arrive, so a run is
    reproducible from its seed (the order of concurrent requests aside).
Fault kinds (:data:`KINDS`):
  * ``reset-request``: forward the request head and half its body, then reset both
    connections (the registry sees a partial request; no answer reaches the client);
  * ``reset-body``: forward the answer's head and half its body, then reset;
  * ``cut-after-status``: forward only the status line, then close (http.client takes the
    EOF for the end of the headers: a status without headers or body);
  * ``cut-in-headers``: forward the status line and part of the headers, cut at a seeded
    place (possibly inside a line), then close; with ``Fault.header``, cut inside that
    header's value (e.g. ``Docker-Content-Digest: sha256:5e``);
  * ``cut-in-location``: like ``cut-in-headers``, cut inside the host of ``Location``
    (``http://127.0.0.1:5``); answers without Location are cut as ``cut-in-headers``;
  * ``status``: answer ``Fault.status`` (500, 502, 503, 504) itself, never forwarding;
  * ``429``: answer 429 with ``Retry-After: Fault.retry_after``;
  * ``stall``: hold the request ``Fault.stall`` seconds (at most 5), then forward it.
Counters: ``body_bytes_up`` (request bodies forwarded), ``bytes_down``, ``requests`` (each with
the proxy's ``time.monotonic()`` when its head arrived, ``at``, and when a canned answer was
sent, ``answered_at``),
``injected`` (one ``(method, path, kind)`` per fault injected).
"""

from __future__ import annotations

import random
import re
import socket
import socketserver
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.support.http_head import read_request_head

KINDS = (
    "reset-request",
    "reset-body",
    "cut-after-status",
    "cut-in-headers",
    "cut-in-location",
    "status",
    "429",
    "stall",
)
RESPONSE_CUTS = ("reset-body", "cut-after-status", "cut-in-headers", "cut-in-location")
MAX_STALL = 5.0


@dataclass
class Fault:
    """Inject ``kind`` into requests with ``method`` (None: any) whose path matches ``path``
    (a regex, searched; None: any): ``times`` of them (1: once; -1: every attempt)."""

    kind: str
    method: str | None = None
    path: str | None = None
    times: int = 1
    status: int = 503
    retry_after: str = "1"
    stall: float = 1.0
    header: str | None = None
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")

    def matches(self, method: str, path: str) -> bool:
        if self.times == 0:
            return False
        if self.method and self.method != method:
            return False
        return not (self.path and not re.search(self.path, path))


@dataclass
class StatusRule:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    method: str | None = None
    path_contains: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times == 0:
            return False
        if self.method and self.method != method:
            return False
        return not (self.path_contains and self.path_contains not in path)


@dataclass
class SeenRequest:
    method: str
    path: str
    range: str | None
    content_range: str | None
    content_length: int
    outcome: str = "forwarded"
    at: float = field(default_factory=time.monotonic)
    """When the proxy had the request's head (its own monotonic clock)."""
    answered_at: float | None = None
    """When the proxy finished sending a canned answer (a ``StatusRule``, a 429)."""


_REASONS = {
    429: "Too Many Requests",
    503: "Service Unavailable",
    502: "Bad Gateway",
    500: "Internal Server Error",
}


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.rules: list[StatusRule] = []
        self.cut_upload_after: int | None = None
        self.swallow_upload: int | None = None
        self.swallow_bytes = 256 * 1024
        self.cut_download_after: int | None = None
        self.body_bytes_up = 0
        self.bytes_down = 0
        self.download_bytes = 0
        self.requests: list[SeenRequest] = []
        self.cuts = 0
        self.faults: list[Fault] = []
        self.injected: list[tuple[str, str, str]] = []
        self._rng = random.Random(0)
        self._rate = 0.0
        self._kinds: tuple[str, ...] = ()
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def random_faults(self, seed: int, rate: float, kinds: Sequence[str] = KINDS) -> None:
        """From now on, inject a fault of a kind drawn from ``kinds`` into each request with
        probability ``rate`` (``rate=0`` stops), every draw from ``random.Random(seed)``."""
        for kind in kinds:
            Fault(kind)  # validates
        with self._lock:
            self._rng = random.Random(seed)
            self._rate = rate
            self._kinds = tuple(kinds)

    def _choose(self, method: str, path: str) -> tuple[Fault | None, float]:
        """The fault for this request (None: forward it untouched) and a draw in [0, 1) for
        where to cut. Called under the lock."""
        fault = next((f for f in self.faults if f.matches(method, path)), None)
        if fault is not None:
            fault.hits += 1
            if fault.times > 0:
                fault.times -= 1
        elif self._rate > 0 and self._rng.random() < self._rate:
            kind = self._rng.choice(self._kinds)
            status = self._rng.choice((500, 502, 503, 504))
            fault = Fault(kind, status=status, stall=round(0.2 + self._rng.random(), 2))
        if fault is None:
            return None, 0.0
        self.injected.append((method, path, fault.kind))
        return fault, self._rng.random()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------
    def _handle(self, client: socket.socket) -> None:
        client.settimeout(30)
        request = read_request_head(client)
        if request is None:
            return
        method, path, rest, length = request.method, request.path, request.rest, request.content_length
        seen = SeenRequest(method, path, request.header("range"), request.header("content-range"), length)
        with self._lock:
            self.requests.append(seen)
            fault, draw = self._choose(method, path)
            rule = next((r for r in self.rules if r.matches(method, path)), None)
            if rule is not None:
                rule.hits += 1
                if rule.times > 0:
                    rule.times -= 1
            swallow = (
                self.swallow_upload is not None
                and method in ("PATCH", "PUT")
                and length > 0
                and self.body_bytes_up >= self.swallow_upload
            )
            if swallow:
                limit = min(length, self.swallow_bytes)
                self.swallow_upload = None
        if fault is not None and fault.kind in ("status", "429"):
            rule = StatusRule(
                429 if fault.kind == "429" else fault.status,
                {"Retry-After": fault.retry_after} if fault.kind == "429" else {},
            )
        if fault is not None and fault.kind == "stall":
            seen.outcome = f"stalled {min(fault.stall, MAX_STALL)} s"
            time.sleep(min(fault.stall, MAX_STALL))
        if rule is not None:
            seen.outcome = f"answered {rule.status}"
            self._drain(client, rest, length)
            extra = "".join(f"{k}: {v}\r\n" for k, v in rule.headers.items())
            reason = _REASONS.get(rule.status, "Fault")
            head_out = f"HTTP/1.1 {rule.status} {reason}\r\n{extra}"
            client.sendall(f"{head_out}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            seen.answered_at = time.monotonic()
            client.close()
            return
        if swallow:
            seen.outcome = "swallowed"
            got = len(rest)
            while got < limit:
                data = client.recv(65536)
                if not data:
                    break
                got += len(data)
            self.cuts += 1
            _abort(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            _abort(client)
            return
        upstream.sendall(request.forward())
        if fault is not None and fault.kind == "reset-request":
            seen.outcome = "reset during request"
            half = rest[: length // 2]
            try:
                while len(half) < length // 2:
                    data = client.recv(65536)
                    if not data:
                        break
                    half += data
                upstream.sendall(half[: length // 2])
            except OSError:
                pass
            self.cuts += 1
            _abort(upstream)
            _abort(client)
            return
        cut_kind = fault.kind if fault is not None and fault.kind in RESPONSE_CUTS else None
        cut_header = fault.header if fault is not None else None
        is_blob_get = method == "GET" and "/blobs/" in path and "/uploads/" not in path
        done = threading.Event()

        def up() -> None:
            pending = rest
            try:
                while True:
                    if pending:
                        with self._lock:
                            limit = self.cut_upload_after
                            if limit is not None and self.body_bytes_up + len(pending) > limit:
                                pending = pending[: max(0, limit - self.body_bytes_up)]
                                self.cut_upload_after = None
                                cut = True
                            else:
                                cut = False
                            self.body_bytes_up += len(pending)
                        if pending:
                            upstream.sendall(pending)
                        if cut:
                            seen.outcome = "cut during upload"
                            self.cuts += 1
                            _abort(upstream)
                            _abort(client)
                            return
                    pending = client.recv(65536)
                    if not pending:
                        break
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finally:
                done.set()

        def down() -> None:
            head = b""
            head_done = cut_kind is None
            body_limit: int | None = None
            body_sent = 0
            try:
                while True:
                    data = upstream.recv(65536)
                    if not data:
                        if not head_done and head:
                            client.sendall(head)
                        break
                    if not head_done:
                        head += data
                        end = head.find(b"\r\n\r\n")
                        if end < 0 and len(head) < 1 << 20:
                            continue
                        end = end + 4 if end >= 0 else len(head)
                        head, data = head[:end], head[end:]
                        head_done = True
                        if cut_kind != "reset-body":
                            client.sendall(head[: _cut_point(head, cut_kind or "", draw, cut_header)])
                            seen.outcome = cut_kind or ""
                            self.cuts += 1
                            _close(client)
                            _abort(upstream)
                            return
                        client.sendall(head)
                        m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
                        body_limit = int(m.group(1)) // 2 if m and method != "HEAD" else 0
                        if body_limit == 0:
                            seen.outcome = "reset after head"
                            self.cuts += 1
                            _abort(client)
                            _abort(upstream)
                            return
                        if not data:
                            continue
                    if body_limit is not None and body_sent + len(data) >= body_limit:
                        client.sendall(data[: body_limit - body_sent])
                        seen.outcome = "reset during answer"
                        self.cuts += 1
                        _abort(client)
                        _abort(upstream)
                        return
                    body_sent += len(data)
                    cut = False
                    with self._lock:
                        limit = self.cut_download_after
                        if is_blob_get and limit is not None:
                            if self.download_bytes + len(data) > limit:
                                data = data[: max(0, limit - self.download_bytes)]
                                self.cut_download_after = None
                                cut = True
                            self.download_bytes += len(data)
                        self.bytes_down += len(data)
                    if data:
                        client.sendall(data)
                    if cut:
                        seen.outcome = "cut during download"
                        self.cuts += 1
                        _abort(client)
                        _abort(upstream)
                        return
            except OSError:
                pass
            finally:
                _close(client)
                _close(upstream)

        t = threading.Thread(target=up, daemon=True)
        t.start()
        down()
        t.join(timeout=5)

    @staticmethod
    def _drain(client: socket.socket, rest: bytes, length: int) -> None:
        got = len(rest)
        try:
            while got < length:
                data = client.recv(65536)
                if not data:
                    break
                got += len(data)
        except OSError:
            pass


def _cut_point(head: bytes, kind: str, draw: float, header: str | None = None) -> int:
    """How many bytes of the answer head ``head`` (status line, headers, blank line) to send."""
    status_end = head.find(b"\r\n") + 2
    if kind == "cut-after-status" or status_end >= len(head) - 2:
        return status_end
    if kind == "cut-in-headers" and header:
        m = re.search(rb"\r\n" + re.escape(header.encode()) + rb": *([^\r]+)", head, re.IGNORECASE)
        if m:
            start, end = m.span(1)
            return start + 1 + int(draw * max(1, end - start - 1))
    if kind == "cut-in-location":
        m = re.search(rb"\r\nLocation: *(?:[a-z]+://)?([^/\r]+)", head, re.IGNORECASE)
        if m:
            host_start, host_end = m.span(1)
            return host_start + 1 + int(draw * max(1, host_end - host_start - 1))
    # somewhere after the status line and before the blank line, possibly mid-line
    headers_end = len(head) - 2
    return status_end + 1 + int(draw * max(1, headers_end - status_end - 1))


def _abort(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
