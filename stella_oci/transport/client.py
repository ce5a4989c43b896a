"""The OCI distribution API over HTTP, for one registry host.

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from stella_oci.transport.options import TransportOptions

BlobOpener = Callable[[int], AbstractContextManager[Iterator[bytes]]]
"""Open a blob's bytes starting at the given offset, as an iterator of chunks."""


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
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def ping(self) -> None:
        """GET /v2/ (authenticating if challenged)."""
        raise NotImplementedError

    def get_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestResponse:
        """GET a manifest by tag or digest; refuses bodies over 4 MiB (VerificationError)."""
        raise NotImplementedError

    def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        raise NotImplementedError

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> PutManifestResult:
        raise NotImplementedError

    def delete_manifest(self, repo: str, digest: str) -> None:
        raise NotImplementedError

    def blob_size(self, repo: str, digest: str) -> int | None:
        """HEAD the blob: its size, or None when the registry does not have it in ``repo``."""
        raise NotImplementedError

    def open_blob(self, repo: str, digest: str, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob (from ``offset`` with a Range request). Retries/resumes itself on a
        cut connection. Does not verify the digest: callers wrap it in VerifyingStream."""
        raise NotImplementedError

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
        """Upload a blob unless present. Tries a cross-repository mount from each of
        ``mount_from`` first, then a streamed monolithic PUT (size <= chunk_size) or chunked
        PATCH uploads; resumes an interrupted upload from the registry's reported offset.
        ``on_bytes(n)`` is called as bytes are sent (for progress). Returns how the blob got
        there: "exists", "mounted" or "uploaded"."""
        raise NotImplementedError

    def list_tags(self, repo: str) -> list[str]:
        raise NotImplementedError

    def get_referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> bytes | None:
        """GET /v2/<repo>/referrers/<digest>: the OCI index bytes, or None when the registry
        has no referrers API (so the caller falls back to the ``sha256-<hex>`` tag)."""
        raise NotImplementedError
