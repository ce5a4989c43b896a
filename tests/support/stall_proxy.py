"""A real TCP proxy to a registry that holds chosen exchanges until the test releases them.

It makes "a transfer is in flight" a state a test can wait for instead of a sleep:

* ``stall_downloads_after=N``: a blob GET's answer is forwarded up to ``N`` bytes (status
  line, headers and the start of the body), then the proxy stops forwarding: the client
  sits in a socket read, as with a registry that stalls mid-body;
* ``stall_uploads=True``: a PATCH or PUT carrying a blob body is read and never answered;
* ``hold_downloads=True``: a blob GET is not forwarded at all until :meth:`release`.

:meth:`wait_stalled` returns once that many exchanges are being held. :meth:`release` lets
them go on; :meth:`stop` closes everything. Each client connection carries one exchange
(``Connection: close`` is forced), so every request passes the rules.
"""

from __future__ import annotations

import socket
import socketserver
import threading

from tests.support.http_head import read_request_head


class StallProxy:
    def __init__(
        self,
        upstream: str,
        *,
        stall_downloads_after: int | None = None,
        stall_uploads: bool = False,
        hold_downloads: bool = False,
    ) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.stall_downloads_after = stall_downloads_after
        self.stall_uploads = stall_uploads
        self.hold_downloads = hold_downloads
        self.stalled = 0
        self._cond = threading.Condition()
        self._released = threading.Event()
        self._stopped = threading.Event()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def wait_stalled(self, count: int = 1, timeout: float = 60.0) -> bool:
        """Wait until ``count`` exchanges are held (True), or ``timeout`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.stalled >= count, timeout=timeout)

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self._stopped.set()
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------
    def _hold(self) -> None:
        with self._cond:
            self.stalled += 1
            self._cond.notify_all()
        self._released.wait()

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(120)
        request = read_request_head(client)
        if request is None:
            return
        method, path, rest, length = request.method, request.path, request.rest, request.content_length
        is_blob_get = method == "GET" and "/blobs/" in path and "/uploads/" not in path
        if self.stall_uploads and method in ("PATCH", "PUT") and "/blobs/uploads/" in path and length:
            got = len(rest)
            try:
                while got < length and (data := client.recv(65536)):
                    got += len(data)
            except OSError:
                pass
            self._hold()
            _close(client)
            return
        if is_blob_get and self.hold_downloads:
            self._hold()
            if self._stopped.is_set():
                _close(client)
                return
        try:
            upstream = socket.create_connection(self.upstream, timeout=120)
        except OSError:
            _close(client)
            return
        try:
            upstream.sendall(request.forward() + rest)
            sent = len(rest)
            while sent < length and (data := client.recv(65536)):
                upstream.sendall(data)
                sent += len(data)
            forwarded = 0
            limit = self.stall_downloads_after if is_blob_get else None
            while data := upstream.recv(65536):
                if limit is not None and forwarded + len(data) >= limit:
                    client.sendall(data[: limit - forwarded])
                    self._hold()
                    if self._stopped.is_set():
                        return
                    client.sendall(data[limit - forwarded :])
                    limit = None
                else:
                    client.sendall(data)
                forwarded += len(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
