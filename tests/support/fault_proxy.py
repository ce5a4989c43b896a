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
Counters: ``body_bytes_up`` (request bodies forwarded), ``bytes_down``, ``requests``.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from dataclasses import dataclass, field


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
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------
    def _handle(self, client: socket.socket) -> None:
        client.settimeout(30)
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = client.recv(65536)
            if not data:
                return
            buf += data
            if len(buf) > 1 << 20:
                return
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = ([*lines[0].split(" ", 2), "", ""])[:3]
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        lower = {n.lower(): v for n, v in headers}
        length = int(lower.get("content-length", "0") or 0)
        seen = SeenRequest(method, path, lower.get("range"), lower.get("content-range"), length)
        with self._lock:
            self.requests.append(seen)
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
        if rule is not None:
            seen.outcome = f"answered {rule.status}"
            self._drain(client, rest, length)
            extra = "".join(f"{k}: {v}\r\n" for k, v in rule.headers.items())
            reason = _REASONS.get(rule.status, "Fault")
            head_out = f"HTTP/1.1 {rule.status} {reason}\r\n{extra}"
            client.sendall(f"{head_out}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
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
        out_head = [lines[0]] + [f"{n}: {v}" for n, v in headers if n.lower() != "connection"]
        out_head.append("Connection: close")
        upstream.sendall(("\r\n".join(out_head) + "\r\n\r\n").encode("latin-1"))
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
            try:
                while True:
                    data = upstream.recv(65536)
                    if not data:
                        break
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
