"""A registry WITH the OCI 1.1 referrers API, for tests: a reverse proxy in front of the real
distribution registry binary (which has no referrers API, like registry:2).

Everything is forwarded to the registry unchanged (streamed, ``Host`` kept so that the
registry's ``Location`` headers point back at the proxy), except:

* ``PUT /v2/<name>/manifests/<ref>`` of an image manifest with a ``subject``: once the registry
  stored it, the proxy records the manifest as a referrer of the subject (descriptor with
  ``artifactType``, falling back to the config mediaType, and the manifest's ``annotations``,
  as distribution-spec v1.1 says) and answers ``OCI-Subject: <subject digest>``;
* ``GET /v2/<name>/referrers/<digest>[?artifactType=T]``: 200 with an OCI image index of the
  recorded referrers (an empty one when there are none), filtered by ``artifactType`` with
  ``OCI-Filters-Applied: artifactType``;
* ``DELETE /v2/<name>/manifests/<digest>``: the manifest is forgotten as a referrer too.

``ReferrersProxy.requests`` records ``(method, path)`` of every request, so tests can assert
that the client used the API (and never wrote a ``sha256-<hex>`` fallback tag).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
_REFERRERS_RE = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[a-f0-9]{64})$")
_MANIFEST_RE = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
CHUNK = 64 * 1024


class ReferrersProxy:
    """``start()`` returns ``host:port``; ``stop()`` ends the server thread."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # "127.0.0.1:PORT" of the real registry
        self.lock = threading.Lock()
        #: (repository, subject digest) -> {referrer digest: descriptor}
        self.referrers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.host = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.host

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # ------------------------------------------------------------------ state
    def record(self, repo: str, digest: str, media_type: str, data: bytes) -> str | None:
        """Remember a stored manifest as a referrer when it has a subject; return the subject."""
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("subject"), dict):
            return None
        subject = doc["subject"].get("digest")
        if not isinstance(subject, str):
            return None
        desc: dict[str, Any] = {
            "mediaType": doc.get("mediaType") or media_type,
            "digest": digest,
            "size": len(data),
        }
        art = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
        if isinstance(art, str):
            desc["artifactType"] = art
        if isinstance(doc.get("annotations"), dict) and doc["annotations"]:
            desc["annotations"] = doc["annotations"]
        with self.lock:
            self.referrers.setdefault((repo, subject), {})[digest] = desc
        return subject

    def forget(self, repo: str, digest: str) -> None:
        with self.lock:
            for (r, _), entries in self.referrers.items():
                if r == repo:
                    entries.pop(digest, None)

    def index_for(self, repo: str, subject: str, artifact_type: str | None) -> bytes:
        with self.lock:
            entries = list(self.referrers.get((repo, subject), {}).values())
        if artifact_type:
            entries = [e for e in entries if e.get("artifactType") == artifact_type]
        entries.sort(key=lambda e: e["digest"])
        doc = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": entries}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class _Handler(BaseHTTPRequestHandler):
    owner: ReferrersProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # ------------------------------------------------------------------ body
    def _body_chunks(self) -> tuple[int | None, Any]:
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            data = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return len(data), iter([bytes(data)])
        length = int(self.headers.get("Content-Length") or 0)

        def gen() -> Any:
            left = length
            while left > 0:
                chunk = self.rfile.read(min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk

        return length, gen()

    # ------------------------------------------------------------------ dispatch
    def _handle(self) -> None:
        parts = urlsplit(self.path)
        self.owner.requests.append((self.command, parts.path))
        m = _REFERRERS_RE.match(parts.path)
        if m and self.command in ("GET", "HEAD"):
            art = parse_qs(parts.query).get("artifactType", [None])[0]
            body = self.owner.index_for(m.group("name"), m.group("digest"), art)
            self._drain()
            self.send_response(200)
            self.send_header("Content-Type", INDEX_MEDIA_TYPE)
            self.send_header("Content-Length", str(len(body)))
            if art:
                self.send_header("OCI-Filters-Applied", "artifactType")
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)
            return
        manifest_put = self.command == "PUT" and _MANIFEST_RE.match(parts.path)
        length, chunks = self._body_chunks()
        body_copy: bytearray | None = bytearray() if manifest_put else None
        conn = http.client.HTTPConnection(self.owner.upstream, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() in _HOP_BY_HOP or key.lower() == "content-length":
                    continue
                conn.putheader(key, value)
            if self.command in ("PUT", "POST", "PATCH") or length:
                conn.putheader("Content-Length", str(length or 0))
            conn.endheaders()
            for chunk in chunks:
                if body_copy is not None:
                    body_copy += chunk
                conn.send(chunk)
            resp = conn.getresponse()
            extra: dict[str, str] = {}
            if manifest_put and resp.status in (200, 201, 202) and body_copy is not None:
                mm = _MANIFEST_RE.match(parts.path)
                assert mm is not None
                data = bytes(body_copy)
                digest = (
                    resp.getheader("Docker-Content-Digest") or "sha256:" + hashlib.sha256(data).hexdigest()
                )
                media = (self.headers.get("Content-Type") or MANIFEST_MEDIA_TYPE).split(";")[0].strip()
                subject = self.owner.record(mm.group("name"), digest, media, data)
                if subject:
                    extra["OCI-Subject"] = subject
            if self.command == "DELETE" and resp.status in (200, 202):
                mm = _MANIFEST_RE.match(parts.path)
                if mm:
                    self.owner.forget(mm.group("name"), mm.group("ref"))
            self.send_response(resp.status, resp.reason)
            declared = resp.getheader("Content-Length")
            for key, value in resp.getheaders():
                if key.lower() in _HOP_BY_HOP:
                    continue
                self.send_header(key, value)
            for key, value in extra.items():
                self.send_header(key, value)
            if declared is None and self.command != "HEAD" and resp.status not in (204, 304):
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                while chunk := resp.read(CHUNK):
                    self.wfile.write(chunk)
        finally:
            conn.close()

    def _drain(self) -> None:
        _, chunks = self._body_chunks()
        for _ in chunks:
            pass


def start_referrers_proxy(upstream: str) -> ReferrersProxy:
    proxy = ReferrersProxy(upstream)
    proxy.start()
    return proxy
