"""Signed time: which clock staleness and the import ledger measure against, and whether it is
verified (docs/airgap.md, "Signed time").

A time anchor is trusted only when it is verified here:

* a **DSSE envelope** (payloadType :data:`PAYLOAD_TYPE_TIME_ANCHOR`) whose payload is a
  TimeAnchor JSON, signed by a key of the ``--time-anchor-trust-root``. The trust root has the
  format of ``--trust-root`` (PEM file or directory, :class:`~stella_oci.signing.TrustRoot`) but
  every key must come in an X.509 certificate: its ``notBefore``/``notAfter`` are the key's
  validity window, and **the anchored time must lie inside the window of the key that signed
  it**. The anchored time, not this host's clock, decides "expired": the host clock is the very
  thing that is not trusted, and a root that expired before the time it claims to sign cannot
  vouch for it (nor can one not yet valid).
* an **RFC 3161 timestamp token** (DER TimeStampResp) verified with ``rfc3161-client`` against
  the TSA root certificate(s) given as ``--time-anchor-trust-root``, every certificate valid at
  the token's ``genTime`` (:func:`verify_rfc3161_anchor`).
* anything else (a plain TimeAnchor JSON file, the system clock) is **unverified**, whatever
  its ``verified`` member says: that member is set by stella-oci, never read from the file.

``requireTimeAnchor`` in the staleness config, or ``--require-time-anchor``, refuses (exit 7)
every clock that is not a verified anchor. Every result that used a clock says which one
(:meth:`Clock.to_json`, the ``clock`` member of pull / verify / copy / load output).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from stella_oci.airgap.models import TimeAnchor, format_rfc3339, time_anchor_from_json, to_utc
from stella_oci.errors import InvalidInputError, StalenessError, VerificationError
from stella_oci.jsonio import parse_json_bytes
from stella_oci.signing.dsse import (
    PAYLOAD_TYPE_TIME_ANCHOR,
    looks_like_envelope,
    parse_envelope,
)
from stella_oci.signing.sign import PrivateKey, Signer
from stella_oci.signing.trust import TrustRoot, key_id_of
from stella_oci.signing.verify import verify_envelope

#: A time anchor file (plain or an envelope) larger than this is refused (it is a few hundred bytes).
MAX_ANCHOR_BYTES = 1024 * 1024

ERR_TIME_ANCHOR_REQUIRED = "ERR_AIRGAP_TIME_ANCHOR_REQUIRED"

ClockSource = Literal["system-clock", "time-anchor"]

_CERT_HINT = (
    "give each time-anchor root key as an X.509 certificate, whose notBefore/notAfter are its "
    "validity window, e.g. openssl req -x509 -new -key KEY.pem -subj /CN=time-anchor "
    "-days 365 -out time-root.crt"
)


@dataclass(frozen=True)
class Clock:
    """The "now" an air-gap check measured against, and how far it can be trusted."""

    anchor: TimeAnchor
    """The anchor as recorded (provenance, ledger): ``verified`` set by stella-oci."""
    source: ClockSource
    file: str | None = None
    """The ``--time-anchor`` file, when one was given."""
    key_id: str | None = None
    """The trust-root key that verified a signed anchor."""
    key_name: str | None = None

    @property
    def verified(self) -> bool:
        return bool(self.anchor.verified)

    def describe(self) -> str:
        """A phrase for messages: which clock, verified or not."""
        when = format_rfc3339(self.anchor.timestamp)
        if self.source == "system-clock":
            return f"this host's system clock ({when}), which is unverified"
        if self.verified:
            return f"the signed time anchor {self.file} ({when}, verified with trust-root key {self.key_name})"
        return f"the unsigned time anchor {self.file} ({when}), which is unverified"

    def to_json(self) -> dict[str, Any]:
        """The ``clock`` member of a result."""
        doc: dict[str, Any] = {
            "source": self.source,
            "verified": self.verified,
            "timestamp": format_rfc3339(self.anchor.timestamp),
            "anchorType": self.anchor.anchorType,
        }
        if self.file is not None:
            doc["file"] = self.file
        if self.key_id is not None:
            doc["keyId"] = self.key_id
            doc["keyName"] = self.key_name
        return doc


def system_clock(now: datetime) -> Clock:
    """This host's clock, recorded as what it is: unverified."""
    from stella_oci.airgap.staleness import system_anchor

    return Clock(anchor=system_anchor(now), source="system-clock")


def load_time_anchor_trust_root(path: Path) -> TrustRoot:
    """``--time-anchor-trust-root``: a trust root (PEM file or directory) whose every key carries
    a validity window, i.e. comes in an X.509 certificate. Exit 2 otherwise."""
    root = TrustRoot.load(Path(path))
    bare = [k.name for k in root if not k.validity]
    if bare:
        raise InvalidInputError(
            f"time-anchor trust root {path}: {', '.join(bare)} "
            f"{'is a bare public key' if len(bare) == 1 else 'are bare public keys'} without a validity window",
            hint=_CERT_HINT,
        )
    return root


def sign_time_anchor(anchor: TimeAnchor, key: Signer | PrivateKey) -> bytes:
    """A DSSE envelope (JSON bytes) around ``anchor``, signed by ``key`` (a
    :class:`~stella_oci.signing.sign.Signer` from ``load_signer(path)``, or a private key).

    The payload is the anchor's TimeAnchor JSON without ``verified`` (a verifier decides that,
    not the signer). Verify it with :func:`verify_time_anchor`.
    """
    doc = anchor.to_json()
    doc.pop("verified", None)
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if not isinstance(key, Signer):
        key = Signer(key_id=key_id_of(key.public_key()), source="<memory>", key=key)
    return key.envelope(PAYLOAD_TYPE_TIME_ANCHOR, payload)


def verify_time_anchor(data: bytes, trust_root: TrustRoot, *, source: str) -> Clock:
    """Verify a signed time anchor (DSSE envelope bytes) against ``trust_root``.

    Exit 3 (:class:`VerificationError`, naming ``source``) when the envelope is not a time
    anchor, no signature verifies with a trusted key, or the anchored time lies outside the
    validity window of the key that signed it (an expired or not yet valid root).
    """
    where = f"time anchor {source}"
    envelope = parse_envelope(data, source=where)
    if envelope.payload_type != PAYLOAD_TYPE_TIME_ANCHOR:
        raise VerificationError(
            f"{where}: payloadType is {envelope.payload_type!r}, expected {PAYLOAD_TYPE_TIME_ANCHOR!r}",
            hint="sign the anchor with: stella-oci time-anchor sign",
        )
    verified = verify_envelope(data, trust_root, source=where)
    try:
        payload = parse_json_bytes(verified.payload, f"{where}: payload", max_bytes=MAX_ANCHOR_BYTES)
    except InvalidInputError as exc:
        raise VerificationError(exc.message) from None
    anchor = time_anchor_from_json(payload, f"{where}: payload")
    key = trust_root.get(verified.key_id)
    anchored = to_utc(anchor.timestamp)
    if key is None or not key.valid_at(anchored):
        windows = ", ".join(
            f"{format_rfc3339(a)} .. {format_rfc3339(b)}" for a, b in (key.validity if key else ())
        )
        expired = key is not None and all(end < anchored for _, end in key.validity)
        raise VerificationError(
            f"{where}: signed by trust-root key {verified.key_name} whose validity window ({windows}) does "
            f"not contain the anchored time {format_rfc3339(anchored)}: "
            + ("the root had expired by then" if expired else "the root was not valid then")
            + "; an anchor is trusted only inside its signing key's window",
            hint="sign a fresh anchor with a current time-anchor root key; an expired root is refused",
            details={"keyId": verified.key_id, "anchoredTime": format_rfc3339(anchored)},
        )
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    trusted = anchor.model_copy(update={"verified": True, "signatureDigest": digest})
    return Clock(
        anchor=trusted, source="time-anchor", file=source, key_id=verified.key_id, key_name=verified.key_name
    )


def _pem_certificates(path: Path) -> list[Any]:
    """Every X.509 certificate in a PEM file, or in the ``*.pem``/``*.crt`` files of a directory."""
    from cryptography import x509

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".pem", ".crt")) if path.is_dir() else [path]
    certs: list[Any] = []
    for f in files:
        data = f.read_bytes()[: 4 * 1024 * 1024 + 1]
        if b"-----BEGIN CERTIFICATE-----" in data:
            try:
                certs.extend(x509.load_pem_x509_certificates(data))
            except ValueError as exc:
                raise InvalidInputError(f"time-anchor trust root {f}: cannot read a certificate ({exc})") from None
    if not certs:
        raise InvalidInputError(
            f"time-anchor trust root {path} holds no X.509 certificate, and an RFC 3161 token verifies only "
            "against the TSA's root certificate(s)",
            hint="give the TSA's root CA certificate (PEM) with --time-anchor-trust-root",
        )
    return certs


def verify_rfc3161_anchor(data: bytes, roots: Path, *, source: str) -> Clock:
    """Verify an RFC 3161 TimeStampResp (DER, ``openssl ts -reply`` / a TSA's answer) with
    ``rfc3161-client``: PKIStatus granted, the signature by a TSA certificate with the critical
    ``timeStamping`` EKU, chaining to a certificate of ``roots``, every certificate valid at the
    token's ``genTime`` (the anchored time: the same rule as a signed TimeAnchor). The time
    stamped message is not checked: a token stamps some data at ``genTime``, and here only
    ``genTime`` is used. Exit 3 when any check fails."""
    where = f"time anchor {source}"
    try:
        from rfc3161_client import VerifierBuilder, decode_timestamp_response
        from rfc3161_client.errors import VerificationError as TokenError
    except ImportError:  # pragma: no cover - rfc3161-client comes with the rfc3161 extra
        raise InvalidInputError(
            f"{where} is an RFC 3161 token, and rfc3161-client is not installed",
            hint="pip install 'stella-oci[rfc3161]'",
        ) from None
    try:
        response = decode_timestamp_response(data)
    except (ValueError, TypeError) as exc:
        raise VerificationError(f"{where}: not an RFC 3161 TimeStampResp ({exc})") from None
    builder = VerifierBuilder()
    certs = _pem_certificates(Path(roots))
    for cert in certs:
        builder = builder.add_root_certificate(cert)
    try:
        builder.build().verify(response, response.tst_info.message_imprint.message)
    except (TokenError, ValueError) as exc:
        raise VerificationError(
            f"{where}: the RFC 3161 token does not verify with the TSA root(s) of {roots} ({exc}); "
            "an expired TSA certificate, one not valid at the stamped time, or one from another TSA is refused",
            hint="give the TSA's root certificate with --time-anchor-trust-root, and a token that TSA issued",
        ) from None
    gen_time = response.tst_info.gen_time
    if gen_time.tzinfo is None:
        from datetime import timezone

        gen_time = gen_time.replace(tzinfo=timezone.utc)
    accuracy = response.tst_info.accuracy
    uncertainty = None
    if accuracy is not None:
        uncertainty = (accuracy.seconds or 0) * 1000 + (accuracy.millis or 0)
    anchor = TimeAnchor(
        anchorType="ATTESTATION_TSA",
        timestamp=gen_time,
        source=f"rfc3161:{source}",
        uncertainty=uncertainty,
        signatureDigest="sha256:" + hashlib.sha256(data).hexdigest(),
        verified=True,
    )
    names = ", ".join(c.subject.rfc4514_string() for c in certs)
    return Clock(anchor=anchor, source="time-anchor", file=source, key_name=f"TSA root {names}")


def _read_anchor(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_ANCHOR_BYTES + 1)
    except FileNotFoundError as exc:
        raise InvalidInputError(f"time anchor {path}: no such file", hint="check the --time-anchor path") from exc
    except IsADirectoryError as exc:
        raise InvalidInputError(f"time anchor {path}: is a directory, expected a JSON file") from exc
    except OSError as exc:
        raise InvalidInputError(f"time anchor {path}: cannot be read: {exc.strerror}") from exc
    if len(data) > MAX_ANCHOR_BYTES:
        raise InvalidInputError(f"time anchor {path}: larger than {MAX_ANCHOR_BYTES} bytes; not a time anchor")
    return data


def _required(clock: Clock, reason: str) -> StalenessError:
    if clock.source == "system-clock":
        what = "no time anchor was given, and the fallback would be this host's unverified system clock"
    else:
        what = f"the time anchor {clock.file} is not signed, so it is unverified"
    return StalenessError(
        f"{ERR_TIME_ANCHOR_REQUIRED}: {reason} requires a verified time anchor, but {what}",
        hint="give a signed anchor with --time-anchor FILE (stella-oci time-anchor sign) and "
        "--time-anchor-trust-root ROOT",
        details={"clock": clock.to_json()},
    )


def resolve_clock(
    anchor_path: Path | None,
    trust_root_path: Path | None,
    *,
    now: datetime,
    require: str | None = None,
) -> Clock:
    """The clock of one command: ``--time-anchor``, verified with ``--time-anchor-trust-root``.

    * no anchor: the system clock (unverified); a trust root without an anchor is exit 2.
    * a DSSE envelope: verified (:func:`verify_time_anchor`, exit 3 when it fails); without a
      trust root exit 2 (a signed anchor nobody checks would be a trap).
    * DER bytes: an RFC 3161 token, verified (:func:`verify_rfc3161_anchor`); no trust root: exit 2.
    * a plain TimeAnchor file: unverified, its ``verified`` member overwritten with false; with
      a trust root given it is refused (exit 3): the caller asked for a signed anchor.

    ``require`` (why a verified anchor is required, e.g. ``"requireTimeAnchor in staleness.json"``)
    turns every unverified clock into exit 7 (:class:`StalenessError`).
    """
    if anchor_path is None:
        if trust_root_path is not None:
            raise InvalidInputError(
                f"--time-anchor-trust-root {trust_root_path} given without --time-anchor: nothing to verify",
                hint="add --time-anchor FILE (a signed time anchor), or leave --time-anchor-trust-root out",
            )
        clock = system_clock(now)
    else:
        data = _read_anchor(anchor_path)
        if data[:1] == b"\x30":  # DER: an RFC 3161 TimeStampResp
            if trust_root_path is None:
                raise InvalidInputError(
                    f"time anchor {anchor_path} is an RFC 3161 token but no --time-anchor-trust-root "
                    "was given to verify it with",
                    hint="add --time-anchor-trust-root TSA-ROOT.crt (the TSA's root certificate)",
                )
            clock = verify_rfc3161_anchor(data, trust_root_path, source=str(anchor_path))
            doc = None
        else:
            doc = parse_json_bytes(data, f"time anchor {anchor_path}", max_bytes=MAX_ANCHOR_BYTES)
        if doc is None:
            pass
        elif looks_like_envelope(doc):
            if trust_root_path is None:
                raise InvalidInputError(
                    f"time anchor {anchor_path} is signed (a DSSE envelope) but no --time-anchor-trust-root "
                    "was given to verify it with",
                    hint="add --time-anchor-trust-root ROOT (the time-anchor root certificates)",
                )
            clock = verify_time_anchor(data, load_time_anchor_trust_root(trust_root_path), source=str(anchor_path))
        else:
            anchor = time_anchor_from_json(doc, f"time anchor {anchor_path}")
            if trust_root_path is not None:
                raise VerificationError(
                    f"time anchor {anchor_path} is not signed (a plain TimeAnchor, not a DSSE envelope), "
                    f"so --time-anchor-trust-root {trust_root_path} cannot verify it",
                    hint="sign it with: stella-oci time-anchor sign --key KEY --anchor FILE -o FILE.dsse.json",
                )
            unverified = anchor.model_copy(update={"verified": False, "signatureDigest": None})
            clock = Clock(anchor=unverified, source="time-anchor", file=str(anchor_path))
    if require is not None and not clock.verified:
        raise _required(clock, require)
    return clock
