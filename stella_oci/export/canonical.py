"""The canonical digests of an export manifest.

``manifest_digest`` is the value of the OCI annotation ``io.stellaops.export.manifest-digest``:
``sha256:`` + hex SHA-256 of the RFC 8785 (JSON Canonicalization Scheme) form of export.json
with its top-level ``integrity`` member removed. ``integrity`` is left out because it holds
this very value (and the HTTP ``Digest`` header derived from it); everything else, including
``attestations`` and ``distribution``, is covered. Whitespace, key order and escaping of
the file do not matter: JCS fixes all of them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any

from stella_oci.errors import InvalidInputError
from stella_oci.jsonio import canonical_bytes

DIGEST_PREFIX = "sha256:"


def manifest_digest(doc: dict[str, Any]) -> str:
    """``sha256:<hex>`` over the JCS form of ``doc`` without its top-level ``integrity``.

    ``doc`` is not modified.
    """
    if not isinstance(doc, dict):
        raise InvalidInputError(f"export.json: the top level must be a JSON object, not {type(doc).__name__}")
    stripped = {k: v for k, v in doc.items() if k != "integrity"}
    return DIGEST_PREFIX + hashlib.sha256(canonical_bytes(stripped, "export.json")).hexdigest()


def rerun_hash(digests: Iterable[str]) -> str:
    """The Export Center ``rerunHash``: SHA-256 over the sorted ``contents[*].digest`` values
    joined by ``\\n`` (no trailing newline), as ``sha256:<hex>``."""
    joined = "\n".join(sorted(digests))
    return DIGEST_PREFIX + hashlib.sha256(joined.encode("utf-8")).hexdigest()


def digest_to_http(digest: str) -> str:
    """``sha256:<hex>`` as an RFC 3230 ``Digest`` header value ``sha-256=<base64 of the 32 bytes>``."""
    if not digest.startswith(DIGEST_PREFIX) or len(digest) != len(DIGEST_PREFIX) + 64:
        raise InvalidInputError(f"{digest!r} is not a sha256:<64 hex> digest")
    try:
        raw = bytes.fromhex(digest[len(DIGEST_PREFIX) :])
    except ValueError as exc:
        raise InvalidInputError(f"{digest!r} is not a sha256:<64 hex> digest") from exc
    return "sha-256=" + base64.b64encode(raw).decode("ascii")


def http_digest_header(doc: dict[str, Any]) -> str:
    """The ``Digest`` HTTP header value for an export: ``sha-256=`` + base64 of the raw 32
    bytes of :func:`manifest_digest` (the same hash, another encoding)."""
    return digest_to_http(manifest_digest(doc))
