"""A real HTTP proxy in front of a real registry that lies, stalls and counts, per request path.

Unlike :mod:`tests.support.fault_proxy` (network faults), this one changes *answers*: it is
the hostile registry of the verification tests. One exchange per connection (the proxy
answers ``Connection: close``); the upstream answer is read whole (test artifacts are small)
and then, for the first matching rule:

* ``set_header``: a response header replaced (e.g. a lying ``Docker-Content-Digest``);
* ``corrupt``: one body byte flipped (a blob that fails its digest);
* ``stall``: the head and the first ``stall_bytes`` of the body sent, then nothing until the
  client closes the connection; ``stall_gone`` is set when it does (the test waits on it).

Counters per request: ``requests`` (method, path), ``body_bytes_sent`` per path.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field

from tests.support.http_head import read_request_head


@dataclass
class Rule:
    path_contains: str
    method: str = "GET"
    set_header: tuple[str, str] | None = None
    corrupt: bool = False
    stall: bool = False
    stall_bytes: int = 1024
    wait_for: threading.Event | None = None
    """Hold the answer until this event is set (at most 30 s): orders events between requests."""
    hits: int = 0
    sent_at: float | None = None
    """time.monotonic() when the (tampered) answer was sent."""


@dataclass
class TamperProxy:
    upstream: tuple[str, int]
    rules: list[Rule] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    body_bytes_sent: dict[str, int] = field(default_factory=dict)
    stall_started: threading.Event = field(default_factory=threading.Event)
    stall_gone: threading.Event = field(default_factory=threading.Event)
    stall_gone_at: float | None = None
    release: threading.Event = field(default_factory=threading.Event)
    keep_host: bool = False
    """Forward the client's ``Host`` (as a reverse proxy does), so that the registry's upload
    ``Location`` names the proxy and pushes can go through it."""

    def __post_init__(self) -> None:
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

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def requests_to(self, fragment: str, method: str = "GET") -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and fragment in p)

    # ------------------------------------------------------------------
    def _handle(self, client: socket.socket) -> None:
        client.settimeout(60)
        request = read_request_head(client)
        if request is None:
            return
        method, path, length = request.method, request.path, request.content_length
        buf = bytearray(request.rest)  # (not bytes +=: quadratic for a 64 MiB upload body)
        while len(buf) < length:
            data = client.recv(1 << 20)
            if not data:
                break
            buf += data
        body = bytes(buf)
        with self._lock:
            self.requests.append((method, path))
            rule = next((r for r in self.rules if r.method == method and r.path_contains in path), None)
            if rule is not None:
                rule.hits += 1
        dropped = ("connection",) if self.keep_host else ("connection", "host")
        host = [] if self.keep_host else [f"Host: {self.upstream[0]}:{self.upstream[1]}"]
        out = request.forward(drop=dropped, add=(*host, "Connection: close"))
        try:
            with socket.create_connection(self.upstream, timeout=60) as up:
                up.sendall(out + body)
                answer = _read_all(up)
        except OSError:
            client.close()
            return
        resp_head, _, resp_body = answer.partition(b"\r\n\r\n")
        resp_lines = resp_head.decode("latin-1").split("\r\n")
        if rule is not None and rule.set_header is not None:
            name, value = rule.set_header
            resp_lines = [ln for ln in resp_lines if not ln.lower().startswith(name.lower() + ":")]
            resp_lines.append(f"{name}: {value}")
        if rule is not None and rule.corrupt and resp_body:
            resp_body = bytes([resp_body[0] ^ 0xFF]) + resp_body[1:]
        data_head = ("\r\n".join(resp_lines) + "\r\n\r\n").encode("latin-1")
        if rule is not None and rule.wait_for is not None:
            rule.wait_for.wait(30)
        try:
            if rule is not None and rule.stall:
                client.sendall(data_head + resp_body[: rule.stall_bytes])
                self._count(path, min(len(resp_body), rule.stall_bytes))
                self._stall(client)
                return
            client.sendall(data_head + resp_body)
            if rule is not None:
                rule.sent_at = time.monotonic()
            self._count(path, len(resp_body))
        except OSError:
            pass
        finally:
            _close(client)

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self.body_bytes_sent[path] = self.body_bytes_sent.get(path, 0) + n

    def _stall(self, client: socket.socket) -> None:
        """Send nothing more; notice when the client gives up (its close reaches us as EOF)."""
        self.stall_started.set()
        client.settimeout(0.1)
        while not self.release.is_set():
            try:
                if client.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        else:
            return
        self.stall_gone_at = time.monotonic()
        self.stall_gone.set()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def start_tamper_proxy(upstream: str) -> TamperProxy:
    host, port = upstream.rsplit(":", 1)
    return TamperProxy((host, int(port)))
