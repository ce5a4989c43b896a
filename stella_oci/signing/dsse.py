"""DSSE envelopes: the v1 pre-authentication encoding, parsing and deterministic writing.

The envelope (https://github.com/secure-systems-lab/dsse, ``envelope.md``) is JSON::

    {"payloadType": "...", "payload": "<base64>", "signatures": [{"keyid": "...", "sig": "<base64>"}]}

Signatures are computed over ``PAE(UTF8(payloadType), payload)``::

    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

with ``LEN`` the ASCII decimal byte length, no leading zeros. Base64 fields may use the
standard or the URL-safe alphabet (the protocol says verifiers MUST accept either); padding
may be omitted. Anything else (other characters, a wrong length) is refused.

Nothing here checks a signature: that is :mod:`stella_oci.signing.verify`; signing is
:mod:`stella_oci.signing.sign`. Parsing problems
raise :class:`~stella_oci.errors.VerificationError` (exit 3) naming the source and the field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stella_oci.errors import VerificationError
from stella_oci.jsonio import load_json

#: payloadType of an in-toto Statement (v0.1 or v1).
PAYLOAD_TYPE_IN_TOTO = "application/vnd.in-toto+json"
#: payloadType of a DSSE envelope whose payload is the export.json bytes themselves.
PAYLOAD_TYPE_EXPORT_MANIFEST = "application/vnd.stellaops.export.manifest.v1+json"
#: payloadType of a DSSE envelope whose payload is a TimeAnchor JSON (``--time-anchor``).
PAYLOAD_TYPE_TIME_ANCHOR = "application/vnd.stellaops.time-anchor.v1+json"
#: Media type of a DSSE envelope travelling as an OCI layer or referrer.
DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"

#: An envelope larger than this is refused before parsing (signatures are small documents).
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
#: More signatures than this in one envelope are refused (each is tried against every key).
MAX_SIGNATURES = 64
#: Longer keyid hints are refused (they are unauthenticated and end up in messages).
MAX_KEYID_CHARS = 512

_B64_RE = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")  # fullmatch


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``."""
    ptype = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)


def b64decode_any(value: str, *, what: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; raise VerificationError naming ``what``."""
    text = value.strip()
    if not _B64_RE.fullmatch(text) or (("+" in text or "/" in text) and ("-" in text or "_" in text)):
        raise VerificationError(f"{what} is not valid base64 (characters outside the base64 alphabets)")
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise VerificationError(f"{what} is not valid base64 (impossible length {len(value.strip())})")
    text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"{what} is not valid base64 ({exc})") from exc


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as cosign and the DSSE reference implementation write it."""
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class EnvelopeSignature:
    """One entry of ``signatures``: an optional key id hint and the raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope (signatures not checked)."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)


def _fail(source: str, check: str, fix: str | None = None) -> VerificationError:
    return VerificationError(f"{source}: {check}", hint=fix)


def looks_like_envelope(doc: Any) -> bool:
    """True when a parsed JSON document has the shape of a DSSE envelope (used to tell a
    bare in-toto Statement from one wrapped in an envelope)."""
    return isinstance(doc, dict) and "payloadType" in doc and ("signatures" in doc or "payload" in doc)


def parse_envelope(data: bytes, *, source: str) -> Envelope:
    """Parse DSSE envelope JSON bytes; every failure names ``source`` and the failed check."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise _fail(
            source, f"not a DSSE envelope: {len(data)} bytes, more than the {MAX_ENVELOPE_BYTES} allowed"
        )
    try:
        doc = load_json(data, source, max_bytes=MAX_ENVELOPE_BYTES, error=VerificationError)
    except VerificationError as exc:
        raise _fail(source, f"not a DSSE envelope: not valid JSON ({exc.message})") from None
    return envelope_from_json(doc, source=source)


def envelope_from_json(doc: Any, *, source: str) -> Envelope:
    """Build an :class:`Envelope` from an already parsed JSON value."""
    if not isinstance(doc, dict):
        raise _fail(source, f"not a DSSE envelope: expected a JSON object, found {type(doc).__name__}")
    if "payloadType" not in doc:
        raise _fail(source, "not a DSSE envelope: missing payloadType")
    payload_type = doc["payloadType"]
    if not isinstance(payload_type, str) or not payload_type:
        raise _fail(source, "not a DSSE envelope: payloadType must be a non-empty string")
    if "payload" not in doc:
        raise _fail(source, "not a DSSE envelope: missing payload")
    if not isinstance(doc["payload"], str):
        raise _fail(source, "not a DSSE envelope: payload must be a base64 string")
    try:
        payload = b64decode_any(doc["payload"], what="payload")
    except VerificationError as exc:
        raise _fail(source, "payload is not valid base64: " + exc.message) from exc
    sigs_raw = doc.get("signatures")
    if sigs_raw is None:
        raise _fail(source, "not a DSSE envelope: missing signatures")
    if not isinstance(sigs_raw, list) or not sigs_raw:
        raise _fail(
            source,
            "not a DSSE envelope: signatures must be a non-empty list",
            "an unsigned envelope carries nothing to verify; sign it or remove it",
        )
    if len(sigs_raw) > MAX_SIGNATURES:
        raise _fail(source, f"not a DSSE envelope: {len(sigs_raw)} signatures, more than {MAX_SIGNATURES}")
    signatures = [_signature(entry, i, source) for i, entry in enumerate(sigs_raw)]
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(signatures))


def _signature(entry: Any, i: int, source: str) -> EnvelopeSignature:
    """``signatures[i]`` of an envelope: an object with an optional short ``keyid`` and a
    non-empty base64 ``sig``."""
    if not isinstance(entry, dict):
        raise _fail(source, f"not a DSSE envelope: signatures[{i}] must be an object")
    keyid = entry.get("keyid", "")
    if keyid is None:
        keyid = ""
    if not isinstance(keyid, str) or len(keyid) > MAX_KEYID_CHARS:
        raise _fail(
            source,
            f"not a DSSE envelope: signatures[{i}].keyid must be a string of at most "
            f"{MAX_KEYID_CHARS} characters",
        )
    sig_text = entry.get("sig")
    if not isinstance(sig_text, str) or not sig_text:
        raise _fail(source, f"not a DSSE envelope: signatures[{i}].sig missing or not a string")
    try:
        sig = b64decode_any(sig_text, what=f"signatures[{i}].sig")
    except VerificationError as exc:
        raise _fail(source, f"signature is not valid base64: {exc.message}") from exc
    if not sig:
        raise _fail(source, f"not a DSSE envelope: signatures[{i}].sig is empty")
    return EnvelopeSignature(keyid=keyid, sig=sig)


def encode_envelope(payload_type: str, payload: bytes, signatures: Sequence[EnvelopeSignature]) -> bytes:
    """Deterministic envelope JSON: sorted keys, compact separators, trailing newline."""
    doc = {
        "payload": b64encode(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": s.keyid, "sig": b64encode(s.sig)} for s in signatures],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
