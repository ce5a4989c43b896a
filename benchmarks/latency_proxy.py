"""A user-space TCP proxy that models a far registry: every chunk waits RTT/2 each way.

This kernel has no ``sch_netem``, so latency is added here: each connection to the proxy
gets one upstream connection; two pump threads per direction (a reader that stamps every
chunk with its arrival time, a writer that sends it once ``RTT/2`` has passed) keep the
byte order and do not limit bandwidth. Keep-alive connections stay open, so a client that
reuses connections pays the handshake once, as it would against a real far registry.

The proxy also counts the HTTP requests that pass through it (method and path), by parsing
the client's byte stream: request heads, then ``Content-Length`` or chunked bodies. That is
what ``requests per blob`` in the benchmark is read from.

Use::

    with LatencyProxy("127.0.0.1", upstream_port, rtt=0.040) as proxy:
        ...  # talk to 127.0.0.1:proxy.port
        proxy.requests  # [("POST", "/v2/repo/blobs/uploads/"), ...]
        proxy.connections, proxy.peak_connections  # accepted since reset_counts(), most open at once

or from a shell: ``python benchmarks/latency_proxy.py UPSTREAM_PORT --rtt-ms 40``.
"""

from __future__ import annotations

import argparse
import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

CHUNK = 256 * 1024
MAX_HEAD = 64 * 1024


@dataclass
class _RequestParser:
    """Incremental HTTP/1.1 request framing, enough to count requests on a kept-alive stream."""

    seen: list[tuple[str, str]]
    lock: threading.Lock
    buf: bytearray = field(default_factory=bytearray)
    body_left: int = 0
    chunked: bool = False
    broken: bool = False

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        self.buf += data
        while self._step():
            pass

    def _step(self) -> bool:
        if self.body_left:
            take = min(self.body_left, len(self.buf))
            del self.buf[:take]
            self.body_left -= take
            return bool(self.buf)
        if self.chunked:
            return self._chunk()
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self.broken = True
            return False
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        method, _, rest = head[0].partition(" ")
        path = rest.rsplit(" ", 1)[0]
        with self.lock:
            self.seen.append((method, path))
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            self.chunked = True
        else:
            self.body_left = int(headers.get("content-length", "0") or 0)
        return bool(self.buf)

    def _chunk(self) -> bool:
        end = self.buf.find(b"\r\n")
        if end < 0:
            return False
        size = int(bytes(self.buf[:end]).split(b";")[0], 16)
        if size == 0:  # last chunk; no trailers from the clients we measure
            if len(self.buf) < end + 4:
                return False
            del self.buf[: end + 4]
            self.chunked = False
            return bool(self.buf)
        if len(self.buf) < end + 2 + size + 2:
            return False
        del self.buf[: end + 2 + size + 2]
        return bool(self.buf)


class LatencyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, rtt: float, listen_port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = rtt / 2
        self.requests: list[tuple[str, str]] = []
        self.connections = 0
        self.open_connections = 0
        self.peak_connections = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", listen_port))
        self.port: int = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LatencyProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        t = threading.Thread(target=self._accept, name="latency-accept", daemon=True)
        t.start()

    def stop(self) -> None:
        self._stop.set()
        self._server.close()

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.connections = 0
            self.peak_connections = self.open_connections

    def counts(self) -> Counter[str]:
        """Requests by kind: ``HEAD blob``, ``POST upload``, ``PUT upload``, ``PUT manifest`` ..."""
        with self._lock:
            seen = list(self.requests)
        kinds: Counter[str] = Counter()
        for method, path in seen:
            if "/blobs/uploads" in path:
                what = "upload"
            elif "/blobs/" in path:
                what = "blob"
            elif "/manifests/" in path:
                what = "manifest"
            elif "/referrers/" in path:
                what = "referrers"
            elif "/token" in path or path.rstrip("/") in ("/v2", ""):
                what = "auth/ping"
            else:
                what = "other"
            kinds[f"{method} {what}"] += 1
        return kinds

    # ------------------------------------------------------------------ plumbing
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self.open_connections += 1
                self.peak_connections = max(self.peak_connections, self.open_connections)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            self._relay(client)
        finally:
            with self._lock:
                self.open_connections -= 1

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(None)
        parser = _RequestParser(self.requests, self._lock)
        pumps = [*self._pipe(client, upstream, parser), *self._pipe(upstream, client, None)]
        for t in pumps:
            t.join()
        client.close()
        upstream.close()

    def _pipe(
        self, src: socket.socket, dst: socket.socket, parser: _RequestParser | None
    ) -> list[threading.Thread]:
        q: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def read() -> None:
            try:
                while True:
                    data = src.recv(CHUNK)
                    if parser is not None and data:
                        parser.feed(data)
                    q.put((time.monotonic() + self.delay, data))
                    if not data:
                        return
            except OSError:
                q.put((time.monotonic() + self.delay, b""))

        def write() -> None:
            try:
                while True:
                    due, data = q.get()
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
            except OSError:
                try:  # the other side is gone: wake the reader of this direction too
                    src.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threads = [threading.Thread(target=f, daemon=True) for f in (read, write)]
        for t in threads:
            t.start()
        return threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("upstream_port", type=int)
    ap.add_argument("--upstream-host", default="127.0.0.1")
    ap.add_argument("--rtt-ms", type=float, default=40.0)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    with LatencyProxy(
        args.upstream_host, args.upstream_port, rtt=args.rtt_ms / 1000, listen_port=args.port
    ) as p:
        print(
            f"listening on 127.0.0.1:{p.port}, {args.rtt_ms} ms RTT to {args.upstream_host}:{args.upstream_port}"
        )
        try:
            while True:
                time.sleep(5)
                print(dict(p.counts()), flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
