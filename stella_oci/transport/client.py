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
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import requests

from stella_oci.errors import InvalidInputError, TransientError, VerificationError
from stella_oci.transport.auth import repository_scope
from stella_oci.transport.http import RegistrySession, is_loopback
from stella_oci.transport.http_errors import STREAM_ERRORS, short_reason
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

    # ------------------------------------------------------------------ API

    def get_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestResponse:
        """GET a manifest by tag or digest; refuses bodies over 4 MiB (VerificationError)."""
        what = (
            f"manifest {self.host}/{repo}:{reference}"
            if ":" not in reference
            else f"manifest {self.host}/{repo}@{reference}"
        )
        resp = self._http.send(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[repository_scope(repo, "pull")],
            headers={"Accept": ", ".join(accept)},
            stream=True,
            what=what,
        )
        try:
            if resp.status_code != 200:
                raise self._http.raise_status(resp, what)
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
                raise VerificationError(
                    f"{what}: the registry announces {declared} bytes, over the 4 MiB manifest limit"
                )
            buf = bytearray()
            try:
                for chunk in resp.raw.stream(64 * 1024, decode_content=True):
                    buf += chunk
                    if len(buf) > MAX_MANIFEST_BYTES:
                        raise VerificationError(f"{what}: manifest larger than the 4 MiB limit")
            except STREAM_ERRORS as exc:
                raise TransientError(f"{what}: connection lost while reading ({short_reason(exc)})") from None
            media_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
            return ManifestResponse(bytes(buf), media_type, resp.headers.get("Docker-Content-Digest"))
        finally:
            resp.close()

    def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        what = f"manifest {self.host}/{repo}{'@' if ':' in reference else ':'}{reference}"
        resp = self._http.send(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[repository_scope(repo, "pull")],
            headers={"Accept": ", ".join(accept)},
            what=what,
        )
        try:
            if resp.status_code != 200:
                raise self._http.raise_status(resp, what)
            size = resp.headers.get("Content-Length", "")
            return ManifestHead(
                media_type=resp.headers.get("Content-Type", "").split(";", 1)[0].strip(),
                digest_header=resp.headers.get("Docker-Content-Digest"),
                size=int(size) if size.isdigit() else -1,
            )
        finally:
            resp.close()

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> PutManifestResult:
        what = f"manifest {self.host}/{repo}{'@' if ':' in reference else ':'}{reference}"
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
                raise self._http.raise_status(resp, what)
            return PutManifestResult(
                resp.headers.get("Docker-Content-Digest"), resp.headers.get("OCI-Subject")
            )
        finally:
            resp.close()

    def blob_size(self, repo: str, digest: str) -> int | None:
        """HEAD the blob: its size, or None when the registry does not have it in ``repo``."""
        what = f"blob {self.host}/{repo}@{digest}"
        resp = self._http.send(
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            scopes=[repository_scope(repo, "pull")],
            what=what,
        )
        try:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._http.raise_status(resp, what)
            size = resp.headers.get("Content-Length", "")
            return int(size) if size.isdigit() else 0
        finally:
            resp.close()

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
            what=what,
        )
        if resp.status_code == 206:
            crange = resp.headers.get("Content-Range", "")
            m = re.match(r"bytes (\d+)-", crange)
            if m and int(m.group(1)) != pos:
                resp.close()
                raise InvalidInputError(f"{what}: asked for bytes from {pos}, the registry sent {crange!r}")
            return resp, 0
        if resp.status_code == 200:
            return resp, pos  # Range ignored: skip what we already have
        if resp.status_code == 416 and pos:
            return resp, -1  # nothing left after pos
        raise self._http.raise_status(resp, what)

    def open_blob(self, repo: str, digest: str, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob (from ``offset`` with a Range request). Retries/resumes itself on a
        cut connection. Does not verify the digest: callers wrap it in VerifyingStream."""
        what = f"blob {self.host}/{repo}@{digest}"
        resp, skip = self._blob_get(repo, digest, offset, what)
        return self._blob_context(repo, digest, offset, resp, skip, what)

    @contextlib.contextmanager
    def _blob_context(
        self, repo: str, digest: str, offset: int, resp: requests.Response, skip: int, what: str
    ) -> Iterator[Iterator[bytes]]:
        state = {"resp": resp}

        def chunks() -> Iterator[bytes]:
            pos = offset
            to_skip = skip
            budget = RetryBudget(self.options.retry)
            last_failure_pos = offset
            while True:
                current = state["resp"]
                if to_skip < 0:
                    return
                try:
                    for chunk in current.raw.stream(READ_CHUNK, decode_content=False):
                        if not chunk:
                            continue
                        if to_skip:
                            if len(chunk) <= to_skip:
                                to_skip -= len(chunk)
                                continue
                            chunk = chunk[to_skip:]
                            to_skip = 0
                        pos += len(chunk)
                        yield chunk
                    return
                except STREAM_ERRORS as exc:
                    current.close()
                    reason = short_reason(exc)
                    if pos > last_failure_pos:
                        budget = RetryBudget(self.options.retry)  # progress made: fresh budget
                    last_failure_pos = pos
                    delay = budget.next_delay()
                    if delay is None:
                        raise TransientError(
                            f"{what}: download cut at byte {pos} ({reason}); gave up after "
                            f"{budget.tries} tries",
                            hint="retry later; the download resumes where it stopped",
                        ) from None
                    log.info("%s: download cut at byte %d (%s); resuming in %.2f s", what, pos, reason, delay)
                    budget.sleep(delay)
                    state["resp"], to_skip = self._blob_get(repo, digest, pos, what)

        try:
            yield chunks()
        finally:
            state["resp"].close()

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
    ) -> str:
        """Upload a blob unless present: "exists", "mounted" or "uploaded" (the strategy: mount
        probe, mounts, streamed PUT or chunked PATCH with resume, is :class:`BlobUploader`'s)."""
        return self._uploader.upload_blob(
            repo, digest, size, opener, mount_from=mount_from, on_bytes=on_bytes
        )

    def get_referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> bytes | None:
        """GET /v2/<repo>/referrers/<digest>: the OCI index bytes, or None when the registry
        has no referrers API (so the caller falls back to the ``sha256-<hex>`` tag)."""
        what = f"referrers of {self.host}/{repo}@{digest}"
        path = f"/v2/{repo}/referrers/{digest}"
        if artifact_type:
            path += "?" + urllib.parse.urlencode({"artifactType": artifact_type})
        resp = self._http.send(
            "GET",
            path,
            scopes=[repository_scope(repo, "pull")],
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
            stream=True,
            what=what,
        )
        try:
            if resp.status_code in (200, 404):
                buf = bytearray()
                for chunk in resp.raw.stream(64 * 1024, decode_content=True):
                    buf += chunk
                    if len(buf) > MAX_MANIFEST_BYTES:
                        raise VerificationError(f"{what}: referrers index larger than the 4 MiB limit")
                if resp.status_code == 200:
                    return bytes(buf)
                return bytes(buf) if _is_oci_index(bytes(buf)) else None
            if resp.status_code in (400, 405):
                return None
            raise self._http.raise_status(resp, what)
        finally:
            resp.close()


def _is_oci_index(data: bytes) -> bool:
    try:
        doc = json.loads(data)
    except ValueError:
        return False
    return (
        isinstance(doc, dict)
        and (
            doc.get("mediaType") == "application/vnd.oci.image.index.v1+json"
            or isinstance(doc.get("manifests"), list)
        )
        and doc.get("schemaVersion") == 2
    )
