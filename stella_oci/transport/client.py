"""The OCI distribution API over HTTP, for one registry host: :class:`RegistryClient`.

Holds the public client (manifests, blobs, tags, referrers) and its result types; requests
go through :class:`~stella_oci.transport.http.RegistrySession` (retries, auth, proxies, TLS,
status mapping in :mod:`~stella_oci.transport.http_errors`) and uploads through
:class:`~stella_oci.transport.uploads.BlobUploader`.

INTERFACE CONTRACT (used by ``stella_oci.targets.registry``; keep the signatures):
every method raises only :mod:`stella_oci.errors` exceptions:
  - 404 / MANIFEST_UNKNOWN / BLOB_UNKNOWN / NAME_UNKNOWN  -> NotFoundError (exit 4)
  - 401 after auth was tried, 403                        -> AuthError (exit 6)
  - connection errors, 408/429/5xx beyond the retries    -> TransientError (exit 10)
  - DIGEST_INVALID / SIZE_INVALID on upload              -> VerificationError (exit 3)
  - TLS verification failure (the server's identity)     -> AuthError (exit 6) naming the fix
                                                            (--ca-file, or --insecure)
  - offline mode                                          -> OfflineError (exit 5) before any socket
and never puts a password or token into a message.

Scheme: HTTPS, except with ``plain_http`` and for loopback hosts (``localhost``,
``127.0.0.0/8``, ``::1``) without ``ca_file``/``client_cert``, which get HTTP directly. When a
loopback registry answers HTTP with Go's "Client sent an HTTP request to an HTTPS server"
400, the client switches to HTTPS for that host (and so verifies its certificate).
See docs/transport.md for the auth flow, retries and the upload strategy.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

import requests

from stella_oci.cancel import Cancellation
from stella_oci.errors import (
    InvalidInputError,
    ManifestBlobsMissing,
    RegistryAnswer,
    RegistryError,
    TransientError,
    VerificationError,
)
from stella_oci.jsonio import try_load_json
from stella_oci.transport.auth import repository_scope
from stella_oci.transport.bodies import small_body
from stella_oci.transport.http import RegistrySession, is_loopback
from stella_oci.transport.http_errors import STREAM_ERRORS, Interrupted, short_reason
from stella_oci.transport.options import TransportOptions
from stella_oci.transport.retry import RetryBudget
from stella_oci.transport.uploads import BlobOpener, BlobUploader

__all__ = [
    "MAX_MANIFEST_BYTES",
    "BlobOpener",
    "ManifestHead",
    "ManifestResponse",
    "PutManifestResult",
    "RegistryClient",
    "is_loopback",
]

log = logging.getLogger("stella_oci.transport")

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
READ_CHUNK = 1024 * 1024
T = TypeVar("T")

_CUT_ERRORS: tuple[type[BaseException], ...] = (*STREAM_ERRORS, Interrupted)
_CUT_OR_JSON_ERRORS: tuple[type[BaseException], ...] = (*STREAM_ERRORS, ValueError)
_MISSING_BLOB_CODES = {"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "DIGEST_INVALID"}
_DIGEST_IN_TEXT = re.compile(r"sha256:[0-9a-f]{64}")


class _CutAnswer(Interrupted):
    """An answer that arrived cut short: in its headers (no length, no body) or its body."""


class _CutHeaderFilter(logging.Filter):
    """urllib3 logs a WARNING with a traceback ("Failed to parse headers") for an answer cut
    inside a header line; the client retries such an answer itself, so the record is demoted
    to DEBUG without its traceback (shown with --verbose only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and str(record.msg).startswith("Failed to parse headers"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text = None, None
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


for _name in ("urllib3.connection", "urllib3.connectionpool"):
    _urllib3_log = logging.getLogger(_name)
    if not any(isinstance(f, _CutHeaderFilter) for f in _urllib3_log.filters):
        _urllib3_log.addFilter(_CutHeaderFilter())


def _cut_in_headers(resp: requests.Response) -> bool:
    """An answer that should carry a body but has neither ``Content-Length`` nor chunked
    encoding: Python's http.client took an EOF inside the headers for their end."""
    if resp.headers.get("Content-Length", "").strip().isdigit():
        return False
    return "chunked" not in resp.headers.get("Transfer-Encoding", "").lower()


FRESH_BUDGET_PROGRESS = 1024 * 1024
"""Bytes a cut download must have moved since the last cut to get a fresh retry budget."""


@dataclass(frozen=True)
class ManifestResponse:
    data: bytes
    media_type: str
    """Content-Type the registry answered with."""
    digest_header: str | None
    """Docker-Content-Digest, when the registry sent one."""


@dataclass(frozen=True)
class ManifestHead:
    media_type: str
    digest_header: str | None
    size: int


@dataclass(frozen=True)
class PutManifestResult:
    digest_header: str | None
    subject_header: str | None
    """The OCI-Subject response header (the registry processed ``subject``: referrers API)."""


class RegistryClient:
    """All the distribution API calls stella-oci makes to one registry host."""

    def __init__(self, host: str, options: TransportOptions) -> None:
        if "://" in host:
            host = host.split("://", 1)[1]
        self.host = host.rstrip("/")
        self.options = options
        self._http = RegistrySession(self.host, options)
        self._uploader = BlobUploader(self._http, self.blob_size)

    # ------------------------------------------------------------------ plumbing

    @property
    def scheme(self) -> str:
        """``http`` or ``https`` (a loopback registry that speaks HTTPS only switches to it)."""
        return self._http.scheme

    @scheme.setter
    def scheme(self, value: str) -> None:
        self._http.scheme = value

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` (whose requests go out with ``retry=False``) until it returns,
        retrying every :class:`Interrupted` (connection cut, 408/429/5xx, an answer cut in its
        headers or body) under one :class:`RetryBudget`; then :class:`TransientError`."""
        budget = RetryBudget(self.options.retry)
        while True:
            try:
                return attempt()
            except Interrupted as exc:
                delay = budget.next_delay(exc.retry_after)
                if delay is None:
                    if isinstance(exc, _CutAnswer):
                        problem = f"the answer of registry {self.host} was cut short ({exc.reason})"
                    elif re.fullmatch(r"HTTP \d{3}", exc.reason):
                        problem = f"registry {self.host} answered {exc.reason}"
                    else:
                        problem = f"cannot reach registry {self.host} ({exc.reason})"
                    raise TransientError(
                        f"{what}: {problem}; gave up after {budget.tries} "
                        f"{'try' if budget.tries == 1 else 'tries'} in "
                        f"{time.monotonic() - budget.started:.1f} s",
                        hint="check the registry address and that it is running and reachable; retry "
                        "later, or allow more with --retries / --retry-max-time",
                    ) from None
                log.info("%s: %s; retrying in %.2f s", what, exc.reason, delay)
                budget.sleep(delay)

    def _read_capped(self, resp: requests.Response, what: str, name: str) -> bytes:
        """The whole body, at most 4 MiB (VerificationError beyond); a cut is Interrupted."""
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
            raise VerificationError(
                f"{what}: the registry announces {declared} bytes, over the 4 MiB {name} limit"
            )
        buf = bytearray()
        try:
            for chunk in resp.raw.stream(64 * 1024, decode_content=True):
                buf += chunk
                if len(buf) > MAX_MANIFEST_BYTES:
                    raise VerificationError(f"{what}: {name} larger than the 4 MiB limit")
        except STREAM_ERRORS as exc:
            raise _CutAnswer(f"connection lost while reading ({short_reason(exc)})") from None
        return bytes(buf)

    # ------------------------------------------------------------------ API

    def get_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestResponse:
        """GET a manifest by tag or digest; refuses bodies over 4 MiB (VerificationError). An
        answer cut in its headers or body is retried (TransientError after the budget)."""
        what = self._manifest_what(repo, reference)

        def attempt() -> ManifestResponse:
            resp = self._http.send(
                "GET",
                f"/v2/{repo}/manifests/{reference}",
                scopes=[repository_scope(repo, "pull")],
                headers={"Accept": ", ".join(accept)},
                stream=True,
                retry=False,
                what=what,
            )
            try:
                if resp.status_code != 200:
                    raise self._http.raise_status(resp, what)
                data = self._read_capped(resp, what, "manifest")
                if not data and _cut_in_headers(resp):
                    raise _CutAnswer("HTTP 200 without a body or length (answer cut inside its headers?)")
                media_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
                return ManifestResponse(data, media_type, resp.headers.get("Docker-Content-Digest"))
            finally:
                resp.close()

        return self._retrying(what, attempt)

    def _manifest_what(self, repo: str, reference: str) -> str:
        """``manifest HOST/REPO:TAG`` or ``manifest HOST/REPO@DIGEST``, for messages."""
        return f"manifest {self.host}/{repo}{'@' if ':' in reference else ':'}{reference}"

    def head_manifest(
        self, repo: str, reference: str, accept: Sequence[str], *, push: bool = False
    ) -> ManifestHead:
        """HEAD a manifest. ``push``: the caller is about to push to ``repo`` (its existence
        check), so the token is asked for ``pull,push`` at once and serves the uploads too."""
        what = self._manifest_what(repo, reference)
        actions = "pull,push" if push else "pull"

        def attempt() -> ManifestHead:
            resp = self._http.send(
                "HEAD",
                f"/v2/{repo}/manifests/{reference}",
                scopes=[repository_scope(repo, actions)],
                headers={"Accept": ", ".join(accept)},
                retry=False,
                what=what,
            )
            try:
                if resp.status_code != 200:
                    raise self._http.raise_status(resp, what)
                size = resp.headers.get("Content-Length", "")
                if not size.isdigit():
                    raise _CutAnswer("HTTP 200 without Content-Length (answer cut inside its headers?)")
                return ManifestHead(
                    media_type=resp.headers.get("Content-Type", "").split(";", 1)[0].strip(),
                    digest_header=_whole_digest(resp.headers.get("Docker-Content-Digest")),
                    size=int(size),
                )
            finally:
                resp.close()

        return self._retrying(what, attempt)

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> PutManifestResult:
        what = self._manifest_what(repo, reference)
        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidInputError(f"{what}: {len(data)} bytes, over the 4 MiB that registries must accept")
        resp = self._http.send(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[repository_scope(repo, "pull,push")],
            headers={"Content-Type": media_type},
            data=data,
            what=what,
        )
        try:
            if resp.status_code not in (200, 201, 202):
                _raise_blobs_missing(resp, what, self.host)
                raise self._http.raise_status(resp, what)
            return PutManifestResult(
                _whole_digest(resp.headers.get("Docker-Content-Digest")),
                _whole_digest(resp.headers.get("OCI-Subject")),
            )
        finally:
            resp.close()

    def blob_size(self, repo: str, digest: str) -> int | None:
        """HEAD the blob: its size, or None when the registry does not have it in ``repo``."""
        what = f"blob {self.host}/{repo}@{digest}"

        def attempt() -> int | None:
            resp = self._http.send(
                "HEAD",
                f"/v2/{repo}/blobs/{digest}",
                scopes=[repository_scope(repo, "pull")],
                retry=False,
                what=what,
            )
            try:
                if resp.status_code == 404:
                    return None
                if resp.status_code != 200:
                    raise self._http.raise_status(resp, what)
                size = resp.headers.get("Content-Length", "")
                if not size.isdigit():
                    raise _CutAnswer("HTTP 200 without Content-Length (answer cut inside its headers?)")
                return int(size)
            finally:
                resp.close()

        return self._retrying(what, attempt)

    def _blob_get(self, repo: str, digest: str, pos: int, what: str) -> tuple[requests.Response, int]:
        """GET the blob from ``pos``; returns the response and how many leading bytes to skip."""
        headers = {"Accept-Encoding": "identity"}
        if pos:
            headers["Range"] = f"bytes={pos}-"
        resp = self._http.send(
            "GET",
            f"/v2/{repo}/blobs/{digest}",
            scopes=[repository_scope(repo, "pull")],
            headers=headers,
            stream=True,
            retry=False,
            what=what,
        )
        if resp.status_code in (200, 206) and _cut_in_headers(resp):
            resp.close()
            raise _CutAnswer(f"HTTP {resp.status_code} without a length (answer cut inside its headers?)")
        if resp.status_code == 206:
            crange = resp.headers.get("Content-Range", "")
            m = re.fullmatch(r"bytes (\d+)-\d+/(?:\d+|\*)", crange.strip())
            if crange and not m:
                resp.close()
                raise _CutAnswer(f"HTTP 206 with Content-Range {crange!r} (header cut short?)")
            if m and int(m.group(1)) != pos:
                resp.close()
                raise RegistryError(
                    f"{what}: asked for bytes from {pos}, the registry sent {crange!r}",
                    registry=RegistryAnswer(self.host, 206),
                )
            return resp, 0
        if resp.status_code == 200:
            return resp, pos  # Range ignored: skip what we already have
        if resp.status_code == 416 and pos:
            return resp, -1  # nothing left after pos
        raise self._http.raise_status(resp, what)

    def open_blob(
        self, repo: str, digest: str, offset: int = 0, *, cancel: Cancellation | None = None
    ) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob (from ``offset`` with a Range request). Retries/resumes itself on a
        cut connection. Does not verify the digest: callers read through the verifying reader
        (stella_oci/targets/verified.py). When ``cancel`` is set, a read blocked on the socket
        is interrupted (the socket is shut down) and :class:`~stella_oci.cancel.Cancelled` raised."""
        what = f"blob {self.host}/{repo}@{digest}"
        resp, skip = self._retrying(what, lambda: self._blob_get(repo, digest, offset, what))
        return self._blob_context(repo, digest, offset, resp, skip, what, cancel)

    @contextlib.contextmanager
    def _blob_context(
        self,
        repo: str,
        digest: str,
        offset: int,
        resp: requests.Response,
        skip: int,
        what: str,
        cancel: Cancellation | None,
    ) -> Iterator[Iterator[bytes]]:
        download = _BlobDownload(self, repo, digest, offset, resp, skip, what, cancel)
        try:
            with cancel.on_cancel(download.interrupt) if cancel is not None else contextlib.nullcontext():
                yield download.chunks()
        finally:
            download.close()

    # ------------------------------------------------------------------ uploads

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
        """Upload a blob unless present: "exists", "mounted" or "uploaded" (the strategy: HEAD
        probe, mounts, streamed PUT or chunked PATCH with resume, is :class:`BlobUploader`'s).
        ``probe=False`` skips the HEAD (a caller that expects the blob to be new)."""
        return self._uploader.upload_blob(
            repo, digest, size, opener, mount_from=mount_from, on_bytes=on_bytes, probe=probe
        )

    def get_referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> bytes | None:
        """GET /v2/<repo>/referrers/<digest>: the OCI index bytes, or None when the registry
        has no referrers API (so the caller falls back to the ``sha256-<hex>`` tag)."""
        what = f"referrers of {self.host}/{repo}@{digest}"
        path = f"/v2/{repo}/referrers/{digest}"
        if artifact_type:
            path += "?" + urllib.parse.urlencode({"artifactType": artifact_type})

        def attempt() -> bytes | None:
            resp = self._http.send(
                "GET",
                path,
                scopes=[repository_scope(repo, "pull")],
                headers={"Accept": "application/vnd.oci.image.index.v1+json"},
                stream=True,
                retry=False,
                what=what,
            )
            try:
                if resp.status_code in (200, 404):
                    data = self._read_capped(resp, what, "referrers index")
                    if resp.status_code == 200:
                        if not data and _cut_in_headers(resp):
                            raise _CutAnswer(
                                "HTTP 200 without a body or length (answer cut inside its headers?)"
                            )
                        return data
                    return data if _is_oci_index(data) else None
                if resp.status_code in (400, 405):
                    return None
                raise self._http.raise_status(resp, what)
            finally:
                resp.close()

        return self._retrying(what, attempt)


_WHOLE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


def _whole_digest(value: str | None) -> str | None:
    """A digest header's value when it is a whole digest; None when absent or cut short (an
    answer without a body cut inside its headers still looks whole to http.client)."""
    if value is None:
        return None
    value = value.strip()
    if _WHOLE_DIGEST.fullmatch(value):
        return value
    log.info("ignoring a digest header cut short or malformed: %r", value[:80])
    return None


def _raise_blobs_missing(resp: requests.Response, what: str, host: str) -> None:
    """Raise :class:`ManifestBlobsMissing` for a manifest PUT the registry refused because
    blobs it names are missing (``MANIFEST_BLOB_UNKNOWN``, ``BLOB_UNKNOWN``,
    ``DIGEST_INVALID``); other answers are left to the status mapping."""
    try:
        raw = small_body(resp, 64 * 1024)
    except _CUT_OR_JSON_ERRORS:
        return
    doc = try_load_json(raw)
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return
    codes = {str(e.get("code", "")) for e in errors if isinstance(e, dict)}
    if not codes & _MISSING_BLOB_CODES:
        return
    digests = sorted(set(_DIGEST_IN_TEXT.findall(raw.decode("utf-8", "replace"))))
    named = f": {', '.join(digests)}" if digests else ""
    resp.close()
    raise ManifestBlobsMissing(
        f"{what}: registry {host} refused the manifest because blobs it names are missing "
        f"(HTTP {resp.status_code} {', '.join(sorted(codes & _MISSING_BLOB_CODES))}){named}",
        digests=digests,
        hint="another push may have been storing the same blob: retry the push",
        details={"missing": digests},
    )


def _is_oci_index(data: bytes) -> bool:
    doc = try_load_json(data)
    return (
        isinstance(doc, dict)
        and (
            doc.get("mediaType") == "application/vnd.oci.image.index.v1+json"
            or isinstance(doc.get("manifests"), list)
        )
        and doc.get("schemaVersion") == 2
    )


def shutdown_socket(resp: requests.Response) -> None:
    """Shut down the socket under a streamed response, from any thread: a read blocked on it
    returns at once (closing it would not wake the reader)."""
    raw = resp.raw
    candidates = (
        getattr(getattr(raw, "_connection", None), "sock", None),
        # a response that closes its connection keeps the socket only in its file object
        getattr(getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None), "_sock", None),
    )
    for sock in candidates:
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            return


class _BlobDownload:
    """One blob download: the chunks from ``offset``, resumed with a Range request after a cut
    within the retry budget, stopped (not resumed) once ``cancel`` is set."""

    def __init__(
        self,
        client: RegistryClient,
        repo: str,
        digest: str,
        offset: int,
        resp: requests.Response,
        skip: int,
        what: str,
        cancel: Cancellation | None,
    ) -> None:
        self.client = client
        self.repo = repo
        self.digest = digest
        self.resp: requests.Response | None = resp
        self.pos = offset
        self.to_skip = skip
        self.what = what
        self.cancel = cancel
        self.budget = RetryBudget(client.options.retry)
        self.last_failure_pos = offset

    def interrupt(self) -> None:
        """From another thread: wake a read blocked on the socket."""
        current = self.resp
        if current is not None:
            shutdown_socket(current)

    def close(self) -> None:
        if self.resp is not None:
            self.resp.close()

    def chunks(self) -> Iterator[bytes]:
        while self.to_skip >= 0:
            try:
                if self.resp is None:
                    self.resp, self.to_skip = self.client._blob_get(self.repo, self.digest, self.pos, self.what)
                    continue
                yield from self._read(self.resp)
                return
            except _CUT_ERRORS as exc:
                self._after_cut(exc)

    def _read(self, resp: requests.Response) -> Iterator[bytes]:
        for chunk in resp.raw.stream(READ_CHUNK, decode_content=False):
            if self.to_skip:  # a registry that ignored Range: drop what we had
                keep = chunk[self.to_skip :]
                self.to_skip = max(0, self.to_skip - len(chunk))
                chunk = keep
            if chunk:
                self.pos += len(chunk)
                yield chunk

    def _after_cut(self, exc: BaseException) -> None:
        """Close the cut response and wait before resuming; raise when cancelled or out of budget."""
        if self.resp is not None:
            self.resp.close()
            self.resp = None
        if self.cancel is not None:
            self.cancel.check(self.what)  # cut by our own interrupt: stop, do not resume
        reason = exc.reason if isinstance(exc, Interrupted) else short_reason(exc)
        if self.pos - self.last_failure_pos >= FRESH_BUDGET_PROGRESS:
            # real progress made: a fresh budget (a peer that trickles a few bytes per try must
            # not earn endless retries)
            self.budget = RetryBudget(self.client.options.retry)
        self.last_failure_pos = self.pos
        delay = self.budget.next_delay(exc.retry_after if isinstance(exc, Interrupted) else None)
        if delay is None:
            raise TransientError(
                f"{self.what}: download cut at byte {self.pos} ({reason}); gave up after "
                f"{self.budget.tries} tries in {time.monotonic() - self.budget.started:.1f} s",
                hint="retry later; the download resumes where it stopped",
            ) from None
        log.info("%s: download cut at byte %d (%s); resuming in %.2f s", self.what, self.pos, reason, delay)
        self.budget.sleep(delay)
