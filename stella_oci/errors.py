"""Every failure stella-oci reports, each with the process exit code it maps to.

The CLI prints ``str(error)`` (or, with ``--format json``, ``error.to_json()``) and exits
with ``error.exit_code``; Python callers catch :class:`StellaOciError` and read the same
attribute. Messages name the file, field or reference concerned and, where there is one,
the fix. They never contain a secret: code that builds a message from an HTTP exchange
must go through :func:`stella_oci.transport.redact` first.
"""

from __future__ import annotations

import errno
from typing import Any, ClassVar


class StellaOciError(Exception):
    """Base of all errors raised on purpose by stella-oci."""

    exit_code: ClassVar[int] = 1
    kind: ClassVar[str] = "internal"

    def __init__(self, message: str, *, hint: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    #: ``details`` members that ``--format json`` prints beside ``error``, at the top level
    #: (the air-gap records: CONTRACT section 7).
    TOP_LEVEL = ("staleness", "provenance")

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.exit_code, "kind": self.kind, "message": self.message}
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


class StalenessError(StellaOciError):
    """Exit 7: air-gap staleness violation in STRICT mode."""

    exit_code = 7
    kind = "stale"


class TransientError(StellaOciError):
    """Exit 10: network failure, 5xx or 429 that outlasted the retries."""

    exit_code = 10
    kind = "transient"


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
