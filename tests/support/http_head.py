"""The request head of one HTTP/1.1 exchange, for the tests' socket-level proxies
(:mod:`tests.support.fault_proxy`, :mod:`tests.support.tamper_proxy`,
:mod:`tests.support.stall_proxy`): read from the client socket with a size bound, parsed once,
and written out again for the upstream."""

from __future__ import annotations

import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass

#: A request head longer than this is not read further (the connection is dropped).
MAX_HEAD_BYTES = 1 << 20
END = b"\r\n\r\n"


@dataclass(frozen=True)
class RequestHead:
    request_line: str
    """``METHOD PATH HTTP/1.1``, as sent."""
    method: str
    path: str
    headers: list[tuple[str, str]]
    """Every header line with a ``:``, in order, name and value stripped."""
    rest: bytes
    """What arrived after the head: the start of the body."""

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name`` (any case)."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), default)

    @property
    def content_length(self) -> int:
        return int(self.header("content-length") or 0)

    def forward(self, drop: Collection[str] = ("connection",), add: Sequence[str] = ("Connection: close",)) -> bytes:
        """The head to send upstream: the request line, the headers but those named in ``drop``
        (lower case), then the lines ``add``; latin-1, ending with the blank line."""
        lines = [self.request_line, *(f"{n}: {v}" for n, v in self.headers if n.lower() not in drop), *add]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_request_head(sock: socket.socket, limit: int = MAX_HEAD_BYTES) -> RequestHead | None:
    """Read and parse one request head from ``sock``. None when the client closed or failed
    before the head was whole, or sent more than ``limit`` bytes without ending it."""
    buf = b""
    while END not in buf:
        try:
            data = sock.recv(65536)
        except OSError:
            return None
        if not data:
            return None
        buf += data
        if len(buf) > limit and buf.find(END, 0, limit + len(END)) < 0:
            return None
    head, _, rest = buf.partition(END)
    lines = head.decode("latin-1").split("\r\n")
    method, path = [*lines[0].split(" ", 2), "", ""][:2]
    headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:] if ":" in line)]
    return RequestHead(lines[0], method, path, headers, rest)
