"""Mapping HTTP answers and connection failures to :mod:`stella_oci.errors` exceptions.

Holds the distribution error-body parsing (``_error_codes``), the status -> exception table
(:func:`status_error`), TLS failure messages (:func:`tls_error`), the one-line reason for a
cut connection (:func:`short_reason`) and :class:`Interrupted`, the retryable failure of one
exchange that the upload loop handles itself.
"""

from __future__ import annotations

import re
import urllib.parse

import requests
import urllib3.exceptions

from stella_oci.errors import (
    AuthError,
    NotFoundError,
    RegistryAnswer,
    RegistryError,
    StellaOciError,
    TlsError,
    TransientError,
    VerificationError,
)
from stella_oci.jsonio import try_load_json
from stella_oci.transport.bodies import small_body
from stella_oci.transport.deadline import DeadlineExceeded
from stella_oci.transport.redact import redact
from stella_oci.transport.retry import RETRY_STATUSES

ERROR_BODY_LIMIT = 64 * 1024
"""What is read of an error answer's body (its distribution error codes and message)."""
_NOT_FOUND_CODES = {"MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"}
_VERIFY_CODES = {"DIGEST_INVALID", "SIZE_INVALID"}
#: TLS alerts a server sends when it wants a (different) client certificate.
_CLIENT_CERT_ALERTS = ("alert bad certificate", "alert certificate required", "alert unknown ca")
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
    limit = _deadline_reason(exc)
    if limit:
        return limit
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


def _deadline_reason(exc: BaseException, depth: int = 0) -> str | None:
    """The text of a :class:`~stella_oci.transport.deadline.DeadlineExceeded` somewhere in
    ``exc`` (urllib3 and requests wrap it in their own errors)."""
    if isinstance(exc, DeadlineExceeded):
        return str(exc)
    if depth > 6:
        return None
    inner = [a for a in exc.args if isinstance(a, BaseException)]
    inner += [e for e in (exc.__cause__, exc.__context__) if e is not None]
    for e in inner:
        found = _deadline_reason(e, depth + 1)
        if found:
            return found
    return None


def tls_error(url: str, exc: BaseException, ca_file: str | None = None) -> StellaOciError:
    """The :class:`TlsError` for a failed TLS handshake with ``url``'s host (the CLI names the
    options that fix it: :mod:`stella_oci.cli.hints`)."""
    text = redact(exc)
    where = urllib.parse.urlsplit(url).netloc
    answer = RegistryAnswer(where)
    lower = text.lower()
    mismatch = re.search(
        r"(hostname|ip address) mismatch, certificate is not valid for '([^']+)'", text, re.I
    )
    if mismatch:
        asked = urllib.parse.urlsplit(url).hostname or where
        return TlsError(
            f"TLS verification of registry {where} failed: its certificate is not valid for the name "
            f"{mismatch.group(2)!r} (the {mismatch.group(1).lower()} asked for); the certificate was issued "
            "for other names",
            hint=f"reach the registry by a name its certificate lists (not {asked!r}), or have its certificate "
            "reissued for that name; --insecure skips verification (test registries only)",
            problem="hostname",
            registry=answer,
        )
    if "certificate verify failed" in lower and ca_file:
        return TlsError(
            f"TLS verification of registry {where} failed: its certificate does not verify with the CA "
            f"certificates in --ca-file {ca_file} ({_tls_reason(text)})",
            hint=f"check that {ca_file} holds the CA that issued the registry's certificate (PEM; the root, "
            "or the intermediate with its root); --insecure skips verification (test registries only)",
            problem="untrusted",
            registry=answer,
        )
    if "certificate verify failed" in lower:
        return TlsError(
            f"TLS verification of registry {where} failed: its certificate is not trusted "
            f"({_tls_reason(text)})",
            problem="untrusted",
            registry=answer,
        )
    if any(alert in lower for alert in _CLIENT_CERT_ALERTS):
        return TlsError(
            f"TLS handshake with registry {where} failed: it refused the client certificate, or wants "
            f"one ({_tls_reason(text)})",
            problem="client-certificate",
            registry=answer,
        )
    if "wrong version number" in lower or "record layer" in lower:
        return TlsError(
            f"TLS handshake with registry {where} failed: it does not seem to speak HTTPS",
            problem="not-https",
            registry=answer,
        )
    return TlsError(
        f"TLS handshake with registry {where} failed ({_tls_reason(text)})",
        problem="handshake",
        registry=answer,
    )


def status_error(resp: requests.Response, what: str, host: str) -> StellaOciError:
    """The exception for an unexpected answer from registry ``host`` (call sites ``raise`` it).

    A registry that refuses a well-formed request or answers outside the protocol is a
    :class:`RegistryError` (exit 3), never an input error: the user's input was not at fault.
    """
    status = resp.status_code
    codes, detail = _error_codes(resp)
    resp.close()
    answer = RegistryAnswer(host, status, tuple(sorted(c for c in codes if c)))
    if status == 404 or codes & _NOT_FOUND_CODES:
        return NotFoundError(f"{what}: not found in registry {host} (HTTP {status}{detail})", registry=answer)
    if codes & _VERIFY_CODES:
        return VerificationError(
            f"{what}: registry {host} rejected the content (HTTP {status}{detail})", registry=answer
        )
    if status in RETRY_STATUSES:
        return TransientError(f"{what}: registry {host} answered HTTP {status}{detail}", registry=answer)
    if status in (401, 403):
        return AuthError(f"{what}: registry {host} refused access (HTTP {status}{detail})", registry=answer)
    if status == 405:
        return RegistryError(
            f"{what}: registry {host} does not allow this operation (HTTP 405{detail})", registry=answer
        )
    if 400 <= status < 500:
        return RegistryError(
            f"{what}: registry {host} refused the request (HTTP {status}{detail})", registry=answer
        )
    return RegistryError(
        f"{what}: unexpected answer HTTP {status} from registry {host}{detail}", registry=answer
    )


def _tls_reason(text: str) -> str:
    m = re.search(r"certificate verify failed: ([^()'\"]+)", text)
    if m:
        return "certificate verify failed: " + m.group(1).strip()
    m = re.search(r"\[SSL: [A-Z0-9_]+\] ([^()'\"]+)", text)
    return m.group(1).strip() if m else "TLS error"


def _error_codes(resp: requests.Response) -> tuple[set[str], str]:
    """The distribution error codes of a response body and a short ``: CODE: message`` detail."""
    try:
        raw = small_body(resp, ERROR_BODY_LIMIT)
    except STREAM_ERRORS:
        return set(), ""
    codes: set[str] = set()
    parts: list[str] = []
    doc = try_load_json(raw)
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
