"""Every failure stella-oci reports, each with the process exit code it maps to.

The CLI prints ``str(error)`` (or, with ``--format json``, ``error.to_json()``) and exits
with ``error.exit_code``; Python callers catch :class:`StellaOciError` and read the same
attribute. Messages name the file, field or reference concerned and, where there is one,
the fix. They never contain a secret: code that builds a message from an HTTP exchange
must go through :func:`stella_oci.transport.redact` first.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeVar

T = TypeVar("T")

Side = Literal["source", "destination"]
"""Which end of a transfer failed: the artifact read (``source``) or the place written to."""


@dataclass(frozen=True)
class RegistryAnswer:
    """What a registry answered when it refused: its host, the HTTP status (None when there was
    no answer, e.g. a TLS handshake that failed) and the distribution error codes of the body
    (``MANIFEST_INVALID``, ``DENIED``, ...)."""

    host: str
    status: int | None = None
    codes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"host": self.host}
        if self.status is not None:
            doc["status"] = self.status
        if self.codes:
            doc["codes"] = list(self.codes)
        return doc


class StellaOciError(Exception):
    """Base of all errors raised on purpose by stella-oci.

    ``side`` says which end of a transfer failed (``"source"`` or ``"destination"``; None when
    the question does not apply, e.g. a bad option); ``registry`` is the registry's answer
    when one caused the error. The CLI turns both into the message prefix and the hint.
    """

    exit_code: ClassVar[int] = 1
    kind: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
        side: Side | None = None,
        registry: RegistryAnswer | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})
        self.side: Side | None = side
        self.registry = registry

    def __str__(self) -> str:
        text = f"{self.side}: {self.message}" if self.side else self.message
        if self.hint:
            return f"{text}\n  hint: {self.hint}"
        return text

    def on(self, side: Side) -> StellaOciError:
        """Mark the side that failed unless an inner layer already did; returns ``self``."""
        if self.side is None:
            self.side = side
        return self

    #: ``details`` members that ``--format json`` prints beside ``error``, at the top level
    #: (the air-gap records: CONTRACT section 7).
    TOP_LEVEL = ("staleness", "provenance", "clock")

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.exit_code, "kind": self.kind, "message": self.message}
        if self.side:
            err["side"] = self.side
        if self.registry:
            err["registry"] = self.registry.to_json()
        if self.hint:
            err["hint"] = self.hint
        details = {k: v for k, v in self.details.items() if k not in self.TOP_LEVEL}
        if details:
            err["details"] = details
        doc: dict[str, Any] = {"error": err}
        doc.update({k: v for k, v in self.details.items() if k in self.TOP_LEVEL})
        return doc


class InternalError(StellaOciError):
    """Exit 1: a bug or an unexpected condition."""

    exit_code = 1
    kind = "internal"


class InvalidInputError(StellaOciError):
    """Exit 2: schema violation, bad reference, unsafe path, unlisted file, bad usage."""

    exit_code = 2
    kind = "invalid-input"


class VerificationError(StellaOciError):
    """Exit 3: a digest, size, annotation, artifactType or signature does not match."""

    exit_code = 3
    kind = "verification-failed"


class RegistryError(VerificationError):
    """Exit 3: a registry answered outside the distribution protocol or refused a well-formed
    request (an HTTP 4xx other than 401/403/404/429, an unexpected status, a wrong
    ``Content-Range``). Never exit 2: the user's input was not at fault. ``registry`` holds
    the status and the registry's error codes."""


class NotFoundError(StellaOciError):
    """Exit 4: reference, tag, repository or blob missing."""

    exit_code = 4
    kind = "not-found"


class ManifestBlobsMissing(NotFoundError):
    """Exit 4: the registry refused a manifest because blobs it names are not (or no longer)
    there: ``MANIFEST_BLOB_UNKNOWN``, ``BLOB_UNKNOWN`` or ``DIGEST_INVALID`` on a manifest PUT.
    ``digests`` lists the blobs the registry named (may be empty); the copy engine re-checks
    the manifest's blobs, re-uploads what is missing and retries the PUT once."""

    def __init__(
        self,
        message: str,
        *,
        digests: list[str] | None = None,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, hint=hint, details=details)
        self.digests: list[str] = list(digests or [])


class OfflineError(StellaOciError):
    """Exit 5: ``--offline`` was given and a registry would have been contacted."""

    exit_code = 5
    kind = "offline-violation"


class AuthError(StellaOciError):
    """Exit 6: authentication or authorization refused."""

    exit_code = 6
    kind = "auth-refused"


TlsProblem = Literal["untrusted", "client-certificate", "not-https", "https-only", "hostname", "handshake"]


class TlsError(AuthError):
    """Exit 6: the TLS handshake with a registry failed. ``problem`` says how: its certificate
    is not trusted (``untrusted``), it wants a client certificate or refused ours
    (``client-certificate``), it does not speak HTTPS (``not-https``), or another handshake
    failure (``handshake``)."""

    def __init__(self, message: str, *, problem: TlsProblem, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.problem: TlsProblem = problem


class StalenessError(StellaOciError):
    """Exit 7: air-gap staleness violation in STRICT mode."""

    exit_code = 7
    kind = "stale"


class TransientError(StellaOciError):
    """Exit 10: network failure, 5xx or 429 that outlasted the retries."""

    exit_code = 10
    kind = "transient"


@contextmanager
def on_side(side: Side) -> Iterator[None]:
    """Mark any :class:`StellaOciError` raised inside as a failure of ``side`` (the innermost
    mark wins: a source read failing inside a destination upload stays ``source``)."""
    try:
        yield
    except StellaOciError as exc:
        exc.on(side)
        raise


class sided(AbstractContextManager[T]):
    """Wrap the context manager ``cm`` (e.g. a source's ``open_blob``) so that errors its own
    ``__enter__``/``__exit__`` raise are marked ``side``, while errors raised by the body of the
    ``with`` block (the consumer, e.g. the destination's upload) pass through unmarked."""

    def __init__(self, side: Side, cm: AbstractContextManager[T]) -> None:
        self._side: Side = side
        self._cm = cm

    def __enter__(self) -> T:
        with on_side(self._side):
            return self._cm.__enter__()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            return self._cm.__exit__(exc_type, exc, tb)
        except StellaOciError as raised:
            if raised is not exc:
                raised.on(self._side)
            raise


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected internal error",
    2: "invalid input or usage",
    3: "verification failed",
    4: "not found",
    5: "offline violation",
    6: "authentication or authorization refused",
    7: "air-gap staleness violation (STRICT)",
    10: "transient failure that outlasted the retries",
}


#: errno values that are the local file system's answer, not a bug: exit 2 with the cause.
LOCAL_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system or process limit",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a path component is not a directory",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMLINK: "too many links",
    errno.EXDEV: "crosses file systems",
    errno.EIO: "input/output error",
}
