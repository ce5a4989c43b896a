"""A registry front that paginates the tag list as the distribution spec says (``n``,
``last``, ``Link: <...>; rel="next"``, lexical order), for tests: the distribution 2.8
binary ignores ``n`` and sends every tag at once.

It answers ``GET /v2/`` and ``GET /v2/<name>/tags/list`` only, reading the full list from the
real registry behind it; ``requests`` records the paths asked for.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

_TAGS_RE = re.compile(r"^/v2/(?P<name>.+)/tags/list$")


class PagingTagsServer:
    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                server.requests.append(self.path)
                parts = urlsplit(self.path)
                if parts.path == "/v2/":
                    return self._send(200, b"{}")
                m = _TAGS_RE.match(parts.path)
                if not m:
                    return self._send(404, b'{"errors":[{"code":"UNSUPPORTED"}]}')
                up = requests.get(f"{server.upstream_url}/v2/{m.group('name')}/tags/list", timeout=10)
                if up.status_code != 200:
                    return self._send(up.status_code, up.content)
                tags = sorted(up.json().get("tags") or [])
                q = parse_qs(parts.query)
                last = q.get("last", [""])[0]
                n = int(q.get("n", ["100"])[0])
                after = [t for t in tags if t > last] if last else tags
                page = after[:n]
                links = {}
                if len(after) > n:
                    nxt = f"/v2/{m.group('name')}/tags/list?" + urlencode({"n": n, "last": page[-1]})
                    links["Link"] = f'<{nxt}>; rel="next"'
                body = json.dumps({"name": m.group("name"), "tags": page}).encode()
                return self._send(200, body, links)

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
