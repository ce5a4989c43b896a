"""Mapping HTTP answers and connection failures to :mod:`stella_oci.errors` exceptions.

Holds the distribution error-body parsing (``_error_codes``), the status -> exception table
(:func:`status_error`), TLS failure messages (:func:`tls_error`), the one-line reason for a
cut connection (:func:`short_reason`) and :class:`Interrupted`, the retryable failure of one
exchange that the upload loop handles itself.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import requests
import urllib3.exceptions

from stella_oci.errors import (
    AuthError,
    InternalError,
    InvalidInputError,
    NotFoundError,
    StellaOciError,
    TransientError,
    VerificationError,
)
from stella_oci.transport.redact import redact
from stella_oci.transport.retry import RETRY_STATUSES

_NOT_FOUND_CODES = {"MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"}
_VERIFY_CODES = {"DIGEST_INVALID", "SIZE_INVALID"}
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    OSError,
)
"""What reading a response body may raise when the connection is cut."""


class Interrupted(Exception):
    """A single exchange failed in a way the caller may retry (connection cut, 5xx, 429)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def short_reason(exc: BaseException) -> str:
    """A one-line reason for a connection failure, without requests' pool noise."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if m:
        return m.group(1).strip()
    for needle in (
        "timed out",
        "Connection aborted",
        "Connection reset",
        "IncompleteRead",
        "Broken pipe",
        "RemoteDisconnected",
        "Connection broken",
    ):
        if needle.lower() in text.lower():
            return needle.lower()
    return type(exc).__name__


def tls_error(url: str, exc: BaseException) -> StellaOciError:
    """The AuthError for a failed TLS handshake with ``url``'s host, naming the fix."""
    text = redact(exc)
    where = urllib.parse.urlsplit(url).netloc
    if "certificate" in text.lower() or "CERTIFICATE_VERIFY_FAILED" in text:
        return AuthError(
            f"TLS verification of registry {where} failed: its certificate is not trusted "
            f"({_tls_reason(text)})",
            hint="give the registry's CA certificate with --ca-file FILE, or skip verification with "
            "--insecure (only for test registries)",
        )
    if "wrong version number" in text.lower() or "record layer" in text.lower():
        return AuthError(
            f"TLS handshake with registry {where} failed: it does not seem to speak HTTPS",
            hint="use --plain-http for registries served over plain HTTP",
        )
    return AuthError(
        f"TLS handshake with registry {where} failed ({_tls_reason(text)})",
        hint="check --ca-file, --client-cert/--client-key, or use --insecure for test registries",
    )


def status_error(resp: requests.Response, what: str, host: str) -> StellaOciError:
    """The exception for an unexpected answer from registry ``host`` (call sites ``raise`` it)."""
    status = resp.status_code
    codes, detail = _error_codes(resp)
    resp.close()
    if status == 404 or codes & _NOT_FOUND_CODES:
        return NotFoundError(f"{what}: not found in registry {host} (HTTP {status}{detail})")
    if codes & _VERIFY_CODES:
        return VerificationError(f"{what}: registry {host} rejected the content (HTTP {status}{detail})")
    if status in RETRY_STATUSES:
        return TransientError(f"{what}: registry {host} answered HTTP {status}{detail}")
    if status in (401, 403):
        return AuthError(f"{what}: registry {host} refused access (HTTP {status}{detail})")
    if status == 405:
        return InvalidInputError(
            f"{what}: registry {host} does not allow this operation (HTTP 405{detail})",
            hint="the registry may be read-only or have deletes disabled",
        )
    if 400 <= status < 500:
        return InvalidInputError(f"{what}: registry {host} refused the request (HTTP {status}{detail})")
    return InternalError(f"{what}: unexpected answer HTTP {status} from registry {host}{detail}")


def _tls_reason(text: str) -> str:
    m = re.search(r"certificate verify failed: ([^()'\"]+)", text)
    if m:
        return "certificate verify failed: " + m.group(1).strip()
    m = re.search(r"\[SSL: [A-Z_]+\] ([^()'\"]+)", text)
    return m.group(1).strip() if m else "TLS error"


def _error_codes(resp: requests.Response) -> tuple[set[str], str]:
    """The distribution error codes of a response body and a short ``: CODE: message`` detail."""
    try:
        raw = resp.content[: 64 * 1024]
    except STREAM_ERRORS:
        return set(), ""
    codes: set[str] = set()
    parts: list[str] = []
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list):
        for err in doc["errors"]:
            if isinstance(err, dict):
                code = str(err.get("code", ""))
                codes.add(code)
                parts.append(f"{code}: {err.get('message', '')}".strip(": "))
    elif raw:
        text = raw.decode("utf-8", "replace").strip().splitlines()
        if text and not text[0].lstrip().startswith("<"):
            parts.append(text[0][:200])
    detail = f": {'; '.join(parts)}" if parts else ""
    return codes, redact(detail)


def error_detail(resp: requests.Response) -> str:
    """The short ``: CODE: message`` detail of a response body (empty when there is none)."""
    return _error_codes(resp)[1]
