"""A scripted hostile HTTP(S) server for tests: a registry (or a CDN, or a token service)
under an attacker's control.

``HostileServer(script)`` calls ``script(ex)`` for every request; the script answers through
``ex`` (:class:`Exchange`): a plain answer, an endless body, headers or a body that trickle,
a redirect, or the request forwarded to a real registry (``ex.forward(url)``). Every request
is recorded (method, path, headers) in ``server.seen`` so tests can assert what the client
sent, e.g. that no ``Authorization`` header ever reached a host.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.tls import CertPair

SAFETY_SECONDS = 120.0
"""An endless or trickling answer stops by itself after this long (a test that failed must
not leave a thread writing forever)."""


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class Exchange:
    """One request and the ways to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, server: HostileServer) -> None:
        self.handler = handler
        self.server = server
        self.method = handler.command
        self.path = handler.path
        self.headers = {k: v for k, v in handler.headers.items()}
        self._body: bytes | None = None

    @property
    def body(self) -> bytes:
        """The request body (read on first use, at most 16 MiB)."""
        if self._body is None:
            length = int(self.handler.headers.get("Content-Length") or 0)
            self._body = self.handler.rfile.read(min(length, 16 * 1024 * 1024)) if length else b""
        return self._body

    # ------------------------------------------------------------------ plain answers

    def reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        h = self.handler
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if self.method != "HEAD":
            h.wfile.write(body)

    def json(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.reply(status, body, {"Content-Type": "application/json", **(headers or {})})

    def redirect(self, location: str, status: int = 307) -> None:
        self.reply(status, b"", {"Location": location})

    # ------------------------------------------------------------------ hostile answers

    def endless(self, status: int, headers: Mapping[str, str] | None = None, chunk: int = 256 * 1024) -> None:
        """Headers, then a body that never ends (no Content-Length; until the client leaves)."""
        h = self.handler
        h.close_connection = True
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Connection", "close")
        h.end_headers()
        block = b"A" * chunk
        stop = time.monotonic() + SAFETY_SECONDS
        try:
            while time.monotonic() < stop:
                h.wfile.write(block)
                self.server.count_sent(len(block))
        except OSError:
            return

    def trickle_headers(self, interval: float) -> None:
        """A status line, then one byte of a header every ``interval`` seconds, forever."""
        h = self.handler
        h.close_connection = True
        stop = time.monotonic() + SAFETY_SECONDS
        try:
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            h.wfile.flush()
            while time.monotonic() < stop:
                h.wfile.write(b"X-Slow: ")
                while time.monotonic() < stop:
                    time.sleep(interval)
                    h.wfile.write(b"a")
                    h.wfile.flush()
        except OSError:
            return

    def trickle_body(
        self, status: int, length: int, interval: float, headers: Mapping[str, str] | None = None
    ) -> None:
        """Headers announcing ``length`` bytes at once, then one byte every ``interval`` seconds."""
        h = self.handler
        h.close_connection = True
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(length))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.flush()
        stop = time.monotonic() + SAFETY_SECONDS
        try:
            for _ in range(length):
                if time.monotonic() > stop:
                    return
                time.sleep(interval)
                h.wfile.write(b"a")
                h.wfile.flush()
        except OSError:
            return

    def stall(self) -> None:
        """Read nothing of the request body and answer nothing (until the client leaves)."""
        h = self.handler
        h.close_connection = True
        stop = time.monotonic() + SAFETY_SECONDS
        h.connection.settimeout(0.5)
        while time.monotonic() < stop:
            try:
                if h.connection.recv(1, socket.MSG_PEEK) == b"":
                    return  # the client closed
            except TimeoutError:
                continue
            except OSError:
                return
            time.sleep(0.5)

    def forward(self, upstream: str, headers: Mapping[str, str] | None = None) -> None:
        """The same request (GET or HEAD, Accept kept) to a real registry at ``upstream``
        (``http://host:port``); its answer is passed on, plus ``headers``."""
        req = urllib.request.Request(
            upstream + self.path,
            method=self.method,
            headers={"Accept": self.headers.get("Accept", "*/*")},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as up:
                status, body, up_headers = up.status, up.read(), up.headers
        except urllib.error.HTTPError as err:
            status, body, up_headers = err.code, err.read(), err.headers
        keep = {
            k: v
            for k, v in up_headers.items()
            if k.lower() in ("content-type", "docker-content-digest", "www-authenticate")
        }
        if self.method == "HEAD":
            h = self.handler
            h.send_response(status)
            for k, v in {**keep, **(headers or {})}.items():
                h.send_header(k, v)
            h.send_header("Content-Length", up_headers.get("Content-Length", "0"))
            h.end_headers()
            return
        self.reply(status, body, {**keep, **(headers or {})})


@dataclass
class HostileServer:
    script: Callable[[Exchange], None]
    tls: CertPair | None = None
    seen: list[Seen] = field(default_factory=list)
    sent_bytes: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def count_sent(self, n: int) -> None:
        with self._lock:
            self.sent_bytes += n

    def authorizations(self) -> list[str]:
        """Every Authorization header this server received."""
        return [s.headers[k] for s in self.seen for k in s.headers if k.lower() == "authorization"]

    def start(self) -> HostileServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def handle_one(self) -> None:
                ex = Exchange(self, owner)
                with owner._lock:
                    owner.seen.append(Seen(ex.method, ex.path, ex.headers))
                try:
                    owner.script(ex)
                    if not self.close_connection:
                        _ = ex.body  # (the next request on this connection starts after it)
                except OSError:
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls.cert), str(self.tls.key))
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
