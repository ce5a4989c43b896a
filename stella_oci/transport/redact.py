"""Remove secrets from text before it reaches a message, a log line or an exception.

Two layers:

* patterns: ``Authorization:`` header values, ``Bearer``/``Basic`` credentials, JSON
  ``token``/``access_token``/``refresh_token``/``password``/``secret``/``identitytoken``
  fields, ``user:password@`` in URLs and secret-looking query parameters (``token``,
  ``access_token``, ``password``, ``X-Amz-Signature``, ``sig`` ...); log lines also lose
  every query value (:func:`redact_query`: an upload location's ``_state=`` and the like);
* literal values: every password and token this process has learned (credentials that were
  looked up, tokens that were fetched) is registered with :func:`register_secret` and
  replaced wherever it appears, whatever the surrounding text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization / Proxy-Authorization headers, in any rendering (dict repr, raw HTTP)
    (
        re.compile(
            r"(?i)((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic)\s+)?[^'\"\r\n,}]+"
        ),
        r"\1\2 " + MASK,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # JSON / form fields that carry secrets
    (
        re.compile(
            r"(?i)([\"']?(?:access_token|refresh_token|id_token|token|password|passwd|secret|"
            r"identitytoken|identity_token|registrytoken|auth)[\"']?\s*[:=]\s*[\"'])[^\"']*([\"'])"
        ),
        r"\1" + MASK + r"\2",
    ),
    # user:password@host in URLs
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@"), r"\1" + MASK + "@"),
    # secret query parameters (pre-signed storage URLs, token endpoints)
    (
        re.compile(
            r"(?i)([?&](?:access_token|refresh_token|token|password|passwd|secret|sig|signature|"
            r"x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|"
            r"se|sp|sv|skoid|sktid)=)[^&\s#'\"]*"
        ),
        r"\1" + MASK,
    ),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so :func:`redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: object, extra: Iterable[str | None] = ()) -> str:
    """``str(text)`` with every known secret and secret-looking value replaced by ``***``."""
    out = str(text)
    with _lock:
        literals = set(_secrets)
    literals.update(s for s in extra if s and len(s) >= 4)
    for secret in sorted(literals, key=len, reverse=True):
        out = out.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    return out


# every query value of a URL or request line (``?_state=...&digest=...``), for log lines
_QUERY_VALUE = re.compile(r"([?&][^=&?\s#'\"]+=)[^&\s#'\"]*")


def redact_query(text: str) -> str:
    """``text`` with the value of every URL query parameter replaced by ``***`` (names kept).

    For log lines: an upload ``Location`` (``?_state=...``) or a storage redirect is
    a bearer secret on some registries (whoever holds it may write the upload), whatever
    its parameters are called."""
    return _QUERY_VALUE.sub(r"\1" + MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record's message through :func:`redact` and
    :func:`redact_query` (no query value of any URL is logged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact_query(redact(message))
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_installed = False


def install_log_filter() -> None:
    """Redact the loggers that see HTTP traffic (ours and urllib3's request lines, which can
    carry pre-signed storage URLs and upload locations). Idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    for name in ("stella_oci", "stella_oci.transport", "urllib3.connectionpool", "urllib3.connection"):
        logging.getLogger(name).addFilter(RedactingFilter())
