"""Blob uploads: :class:`BlobUploader` and the request body it streams.

Holds the upload strategy of :meth:`RegistryClient.upload_blob
<stella_oci.transport.client.RegistryClient.upload_blob>`: the HEAD existence probe,
cross-repository mounts, one streamed monolithic PUT (the default for every size) or chunked
PATCH uploads (when asked for: ``TransportOptions.chunk_size``, the registry's
``OCI-Chunk-Min-Length``, a ``413`` to the whole body, or a resume at an offset), resuming an
interrupted upload from the offset the registry reports, and a new session when the
registry forgot the old one. Every step of an upload shares one retry budget. Requests go
through :class:`~stella_oci.transport.http.RegistrySession`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import requests

from stella_oci.errors import (
    AuthError,
    NotFoundError,
    RegistryError,
    StellaOciError,
    TransientError,
    VerificationError,
)
from stella_oci.transport.auth import repository_scope
from stella_oci.transport.bodies import small_body
from stella_oci.transport.http import RegistrySession
from stella_oci.transport.http_errors import Interrupted
from stella_oci.transport.retry import RetryBudget

log = logging.getLogger("stella_oci.transport")

BlobOpener = Callable[[int], AbstractContextManager[Iterator[bytes]]]
"""Open a blob's bytes starting at the given offset, as an iterator of chunks."""

DEFAULT_PART = 64 * 1024 * 1024
"""Part size of a chunked upload when chunks are needed but ``TransportOptions.chunk_size``
names none (the registry's ``OCI-Chunk-Min-Length``, a ``413`` to the whole body, a resume):
every part costs the distribution registry a round of work (~15 ms), and 64 MiB stays under
the request limits of common fronting proxies (Cloudflare: 100 MB)."""


class _BodyStream:
    """A request body of exactly ``length`` bytes from an iterator, with a length for requests.

    Having ``__len__`` makes requests send ``Content-Length`` instead of chunked encoding.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        length: int,
        progress: Callable[[int], None],
        what: str,
        *,
        final: bool = True,
    ):
        self._chunks = chunks
        self._length = length
        self._progress = progress
        self._what = what
        self._final = final

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        remaining = self._length
        if remaining <= 0:
            return
        for chunk in self._chunks:
            if not chunk or remaining <= 0:
                continue  # (past the end: a verifying source raises on the excess itself)
            if len(chunk) > remaining:
                chunk = bytes(chunk[:remaining])
            remaining -= len(chunk)
            self._progress(len(chunk))
            yield chunk
            if remaining <= 0 and not self._final:
                # A part that is not the blob's last: stop without pulling another chunk, so
                # the source (and the engine's running hash) stands exactly at the end of this
                # part and the next part goes on from there, instead of re-reading and
                # re-hashing the blob from byte 0 for every part (quadratic in the size).
                return
        # The blob's last part: the source was read to its end (a verifying source checks
        # size and digest there and raises before the request completes).
        if remaining > 0:
            raise VerificationError(
                f"{self._what}: the source ended {remaining} bytes short of the size the descriptor states",
                side="source",
            )


class BlobUploader:
    """Uploads blobs to one registry host through ``http``; ``blob_size(repo, digest)`` is
    the HEAD that tells whether a blob is already there (None: it is not)."""

    def __init__(self, http: RegistrySession, blob_size: Callable[[str, str], int | None]) -> None:
        self._http = http
        self._blob_size = blob_size

    def upload_blob(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: BlobOpener,
        *,
        mount_from: Sequence[str] = (),
        on_bytes: Callable[[int], None] | None = None,
        probe: bool = True,
    ) -> str:
        """Upload a blob unless present: ``HEAD`` it in ``repo`` ("exists"; skipped when not
        ``probe``: the blob is then uploaded even if the registry has it), then try a
        cross-repository mount from each of ``mount_from`` ("mounted"), then one streamed
        monolithic PUT, or chunked PATCH uploads when chunks are asked for (an explicit
        ``chunk_size`` smaller than the blob, the registry's ``OCI-Chunk-Min-Length``, a ``413``
        to the whole body) ("uploaded"); resumes an
        interrupted upload from the registry's reported offset, and starts a new session when
        the registry forgot the old one. ``on_bytes(n)`` is called as bytes are sent (for
        progress). Returns how the blob got there: "exists", "mounted" or "uploaded".

        Existence is probed with HEAD, never with a mount from the same repository: registry
        2.8 rewrites the blob's link on such a mount, and concurrent readers of that blob
        (other pushes sharing it) then get 500s and "blob unknown" (docs/transport.md)."""
        what = f"blob {self._http.host}/{repo}@{digest}"
        if probe and self._blob_size(repo, digest) is not None:
            return "exists"
        location: str | None = None
        min_chunk = 0
        sources = [s for s in dict.fromkeys(mount_from) if s and s != repo]
        for i, src in enumerate(sources):
            query = urllib.parse.urlencode({"mount": digest, "from": src})
            try:
                resp = self._http.send(
                    "POST",
                    f"/v2/{repo}/blobs/uploads/?{query}",
                    scopes=[repository_scope(repo, "pull,push"), repository_scope(src, "pull")],
                    headers={"Content-Length": "0"},
                    what=f"{what} (mount from {src})",
                )
            except (AuthError, NotFoundError) as exc:
                log.info("%s: mount from %s refused (%s)", what, src, exc.message)
                continue
            try:
                if resp.status_code == 201:
                    return "mounted"
                if resp.status_code == 202:
                    try:
                        loc = self._location(resp, what)
                    except Interrupted as exc:
                        log.info("%s: mount from %s: %s", what, src, exc.reason)
                        continue
                    if i == len(sources) - 1:
                        location, min_chunk = loc, _min_chunk(resp)
                    else:
                        self._cancel_upload(repo, loc, what)
            finally:
                resp.close()
        return self._upload(repo, digest, size, opener, location, min_chunk, on_bytes, what)

    def _location(self, resp: requests.Response, what: str) -> str:
        """The upload URL an answer names. A missing ``Location`` or one naming another host
        than the registry's (an answer cut inside its headers: ``http.client`` takes the EOF
        for their end) is :class:`Interrupted`: the step is retried, nothing is sent there."""
        loc = resp.headers.get("Location")
        if not loc:
            raise Interrupted(
                f"HTTP {resp.status_code} without a Location header (answer cut inside its headers?)"
            )
        url = self._http.location(resp, what)  # (not a usable http(s) URL: exit 3)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or _netloc(parts.scheme, parts.netloc) != _netloc(
            self._http.scheme, self._http.host
        ):
            raise Interrupted(
                f"refused the upload location on host {parts.netloc!r}: not registry {self._http.host} "
                "(a Location header cut short?)"
            )
        return url

    def _start_upload(self, repo: str, what: str) -> tuple[str, int]:
        """POST a new upload session: its URL and minimum part size (Interrupted: retry)."""
        resp = self._http.send(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scopes=[repository_scope(repo, "pull,push")],
            headers={"Content-Length": "0"},
            retry=False,
            what=what,
        )
        try:
            if resp.status_code != 202:
                raise self._http.raise_status(resp, what)
            return self._location(resp, what), _min_chunk(resp)
        finally:
            resp.close()

    def _upload_status(self, repo: str, location: str, what: str) -> tuple[int, str] | None:
        """GET the upload URL: (next offset, location), or None when the session is gone or
        its answer says nothing usable (then a new session starts)."""
        try:
            resp = self._http.send(
                "GET", location, scopes=[repository_scope(repo, "pull,push")], retry=False, what=what
            )
        except Interrupted as exc:
            log.info("%s: upload session status unknown (%s)", what, exc.reason)
            return None
        try:
            if resp.status_code != 204 and resp.status_code != 200:
                log.info("%s: upload session not resumable (HTTP %d)", what, resp.status_code)
                return None
            if not resp.headers.get("Range"):
                log.info("%s: upload session status without a Range header", what)
                return None
            offset = _range_end(resp.headers.get("Range"))
            try:
                loc = self._location(resp, what) if resp.headers.get("Location") else location
            except Interrupted:
                return None
            return offset, loc
        finally:
            resp.close()

    def _cancel_upload(self, repo: str, location: str, what: str) -> None:
        try:
            resp = self._http.send(
                "DELETE", location, scopes=[repository_scope(repo, "pull,push")], what=what
            )
            resp.close()
        except StellaOciError:
            pass

    def _upload(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: BlobOpener,
        location: str | None,
        min_chunk: int,
        on_bytes: Callable[[int], None] | None,
        what: str,
    ) -> str:
        """The upload loop. ``location`` None: start a session first. Every fault of any step
        (POST, PUT, PATCH, a session the registry forgot) is retried under one budget."""
        return _UploadRun(self, repo, digest, size, opener, location, min_chunk, on_bytes, what).run()


class _UploadRun:
    """One blob upload: a monolithic PUT, or PATCH parts then the final PUT; after an
    interruption the blob, the session and its offset are checked again, within one budget."""

    OCTET = "application/octet-stream"

    def __init__(
        self,
        uploader: BlobUploader,
        repo: str,
        digest: str,
        size: int,
        opener: BlobOpener,
        location: str | None,
        min_chunk: int,
        on_bytes: Callable[[int], None] | None,
        what: str,
    ) -> None:
        self.up = uploader
        self.http = uploader._http
        self.repo = repo
        self.digest = digest
        self.size = size
        self.opener = opener
        self.location = location
        self.on_bytes = on_bytes
        self.what = what
        self.scopes = [repository_scope(repo, "pull,push")]
        self.too_large = False
        """The registry (or a proxy in front of it) answered ``413`` to the whole blob in one
        request: from then on it goes in parts."""
        self._set_chunk(min_chunk)
        self.offset = 0
        self.high_water = 0
        self.budget = RetryBudget(self.http.options.retry)

    def _set_chunk(self, min_chunk: int) -> None:
        """The strategy for a new session: one monolithic PUT, unless chunks are asked for
        (``chunk_size`` given, the registry's ``OCI-Chunk-Min-Length``, an earlier ``413``)
        and the blob is larger than one part (docs/transport.md, "Uploads")."""
        explicit = self.http.options.chunk_size
        self.chunk = max(explicit or DEFAULT_PART, min_chunk, 1)
        self.chunked = explicit is not None or min_chunk > 0 or self.too_large
        self.monolithic = not self.chunked or self.size <= self.chunk

    def run(self) -> str:
        while True:
            try:
                if self.location is None:
                    self.location, min_chunk = self.up._start_upload(self.repo, self.what)
                    self._set_chunk(min_chunk)
                    self.offset = 0
                if self.monolithic:
                    return self._put(self.location, self.size, self.body(0, self.size))
                if self.offset < self.size:
                    self._patch(self.location)
                    continue
                return self._put(self.location, 0, None)
            except Interrupted as exc:
                if self._recover(exc):
                    return "uploaded"

    def _progress(self, start: int) -> Callable[[int], None]:
        pos = [start]

        def progress(n: int) -> None:
            pos[0] += n
            if pos[0] > self.high_water:
                if self.on_bytes is not None:
                    self.on_bytes(pos[0] - self.high_water)
                self.high_water = pos[0]

        return progress

    def body(self, start: int, length: int) -> Callable[[ExitStack], Any]:
        def make(stack: ExitStack) -> Any:
            if length == 0:
                return b""
            return _BodyStream(
                stack.enter_context(self.opener(start)),
                length,
                self._progress(start),
                self.what,
                final=start + length >= self.size,
            )

        return make

    def _put(self, location: str, length: int, body: Callable[[ExitStack], Any] | None) -> str:
        """The closing PUT ``?digest=``: the whole blob (monolithic) or nothing (after PATCHes)."""
        resp = self.http.send(
            "PUT",
            _with_query(location, digest=self.digest),
            scopes=self.scopes,
            headers={"Content-Type": self.OCTET, "Content-Length": str(length)},
            body_factory=body,
            data=None if body is not None else b"",
            retry=False,
            what=self.what,
        )
        if resp.status_code in (201, 204):
            resp.close()
            return "uploaded"
        if resp.status_code == 413 and length > 0 and not self.chunked and self.size > self.chunk:
            # A request body limit (a fronting proxy's, a registry's): go on in parts of
            # DEFAULT_PART, in this session if the registry still has it (it refused before
            # storing anything), else in a new one; --chunk-size sets a smaller part.
            resp.close()
            self.too_large = self.chunked = True
            self.monolithic = False
            raise Interrupted(
                f"HTTP 413 to the whole blob ({self.size} bytes) in one request: "
                f"uploading it in parts of {self.chunk} bytes"
            )
        _session_lost(resp)
        raise self.http.raise_status(resp, self.what)

    def _patch(self, location: str) -> None:
        """Send the next part; on 202 move to the offset the registry reports."""
        end = min(self.size, self.offset + self.chunk)
        resp = self.http.send(
            "PATCH",
            location,
            scopes=self.scopes,
            headers={
                "Content-Type": self.OCTET,
                "Content-Length": str(end - self.offset),
                "Content-Range": f"{self.offset}-{end - 1}",
            },
            body_factory=self.body(self.offset, end - self.offset),
            retry=False,
            what=self.what,
        )
        if resp.status_code != 202:
            if resp.status_code == 416:
                resp.close()
                raise Interrupted("HTTP 416 (offset mismatch)")
            _session_lost(resp)
            raise self.http.raise_status(resp, self.what)
        try:
            self.location = self.up._location(resp, self.what)
        finally:
            resp.close()
        reported = resp.headers.get("Range")
        self.offset = _range_end(reported) if reported else end
        if self.offset != end:
            log.info("%s: registry reports %d bytes after a PATCH up to %d", self.what, self.offset, end)
        self.budget = RetryBudget(self.http.options.retry)  # progress made: fresh budget

    def _recover(self, exc: Interrupted) -> bool:
        """After an interruption: wait within the budget, then True when the registry has the
        blob now; else resume the session at the registry's offset, or start a new one."""
        delay = self.budget.next_delay(exc.retry_after)
        if delay is None:
            raise TransientError(
                f"{self.what}: upload interrupted at byte {self.offset} of {self.size} ({exc.reason}); "
                f"gave up after {self.budget.tries} tries in "
                f"{time.monotonic() - self.budget.started:.1f} s",
                hint="retry later: blobs already in the registry are skipped",
            ) from None
        log.info("%s: upload interrupted (%s); checking the session in %.2f s", self.what, exc.reason, delay)
        self.budget.sleep(delay)
        if self.up._blob_size(self.repo, self.digest) is not None:
            return True
        status = None
        if self.location is not None and not isinstance(exc, SessionLost):
            with contextlib.suppress(NotFoundError, RegistryError):
                status = self.up._upload_status(self.repo, self.location, self.what)
        if status is None:
            self.location = None  # a new session at the top of the loop
            self.offset = 0
        else:
            self.offset, self.location = status
            # from an offset, in parts: a registry that kept part of a body takes chunks
            self.monolithic = self.offset == 0 and (not self.chunked or self.size <= self.chunk)
            log.info("%s: resuming upload at byte %d", self.what, self.offset)
        return False


class SessionLost(Interrupted):
    """The registry no longer knows the upload session (404 ``BLOB_UPLOAD_UNKNOWN`` /
    ``BLOB_UPLOAD_INVALID`` after a cut request, or an upload URL cut short): start anew."""


_SESSION_CODES = (b"BLOB_UPLOAD_UNKNOWN", b"BLOB_UPLOAD_INVALID")


def _session_lost(resp: requests.Response) -> None:
    """Raise :class:`SessionLost` for an answer saying the upload session is gone."""
    if resp.status_code == 404 or (
        resp.status_code == 400 and any(c in small_body(resp, 65536) for c in _SESSION_CODES)
    ):
        body = small_body(resp, 65536)
        code = next((c.decode() for c in _SESSION_CODES if c in body), "not found")
        resp.close()
        raise SessionLost(f"HTTP {resp.status_code} {code}: the registry forgot the upload session")


def _netloc(scheme: str, netloc: str) -> str:
    """``host[:port]`` lower-cased, without the scheme's default port."""
    netloc = netloc.rsplit("@", 1)[-1].lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc


def _min_chunk(resp: requests.Response) -> int:
    value = resp.headers.get("OCI-Chunk-Min-Length", "")
    return int(value) if value.isdigit() else 0


def _range_end(value: str | None) -> int:
    """``Range: 0-1023`` -> 1024 bytes received (``0-0`` is read as nothing received)."""
    if not value:
        return 0
    m = re.match(r"(?:bytes=)?(\d+)-(\d+)", value.strip())
    if not m:
        return 0
    end = int(m.group(2))
    return 0 if end == 0 else end + 1


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = parts.query
    extra = urllib.parse.urlencode(params)
    query = f"{query}&{extra}" if query else extra
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
