"""``stella-oci time-anchor sign`` / ``verify``: write a signed time anchor, and check one the way
pull, verify, copy and load do (docs/airgap.md, "Signed time")."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from stella_oci.airgap.models import AnchorType, TimeAnchor, load_time_anchor
from stella_oci.airgap.timeanchor import resolve_clock, sign_time_anchor
from stella_oci.errors import InvalidInputError
from stella_oci.results import ClockInfo, ResultModel, TimeAnchorDoc
from stella_oci.signing.sign import load_signer


class TimeAnchorSignResult(ResultModel):
    output: str
    """The DSSE envelope written."""
    digest: str
    """``sha256:`` of the envelope bytes (the ``signatureDigest`` of the verified anchor)."""
    key_id: str
    """Trust-root key id of the signing key's public key."""
    anchor: TimeAnchorDoc
    """The TimeAnchor signed (the payload; ``verified`` is never signed)."""


class TimeAnchorVerifyResult(ResultModel):
    clock: ClockInfo
    anchor: TimeAnchorDoc
    """The TimeAnchor as pull, copy and load would record it (``verified`` set by stella-oci)."""


def sign_anchor(
    key: Path,
    output: Path,
    *,
    anchor_file: Path | None = None,
    timestamp: datetime | None = None,
    anchor_type: AnchorType = "MANUAL",
    source: str | None = None,
    uncertainty: int | None = None,
) -> TimeAnchorSignResult:
    """Sign a TimeAnchor with ``key`` (PEM private key; encrypted: the password in
    ``$STELLA_OCI_SIGN_KEY_PASSWORD``) into ``output`` (a new file).

    The anchor is ``anchor_file`` (a plain TimeAnchor JSON) or built from ``timestamp`` (default:
    this host's clock now: sign on a host whose clock you trust), ``anchor_type``, ``source``
    and ``uncertainty`` (ms).
    """
    if anchor_file is not None:
        if timestamp is not None or source is not None or uncertainty is not None:
            raise InvalidInputError(
                "time-anchor sign: give --anchor FILE or --timestamp/--source/--uncertainty, not both"
            )
        anchor = load_time_anchor(anchor_file)
    else:
        when = timestamp or datetime.now(timezone.utc).replace(microsecond=0)
        anchor = TimeAnchor(anchorType=anchor_type, timestamp=when, source=source, uncertainty=uncertainty)
    anchor = anchor.model_copy(update={"verified": None, "signatureDigest": None})
    signer = load_signer(key)
    data = sign_time_anchor(anchor, signer)
    try:
        with open(output, "xb") as fh:
            fh.write(data)
    except FileExistsError as exc:
        raise InvalidInputError(f"time-anchor sign: {output} already exists", hint="choose a new -o FILE") from exc
    return TimeAnchorSignResult(
        output=str(output),
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        key_id=signer.key_id,
        anchor=TimeAnchorDoc.model_validate(anchor.to_json()),
    )


def verify_anchor(anchor_file: Path, trust_root: Path | None, *, require: bool = True) -> TimeAnchorVerifyResult:
    """Check ``anchor_file`` as ``--time-anchor`` with ``--time-anchor-trust-root`` would be
    checked; ``require`` (default) makes an unverified anchor exit 7, as ``--require-time-anchor``."""
    clock = resolve_clock(
        anchor_file,
        trust_root,
        now=datetime.now(timezone.utc).replace(microsecond=0),
        require="time-anchor verify" if require else None,
    )
    return TimeAnchorVerifyResult(
        clock=ClockInfo.model_validate(clock.to_json()),
        anchor=TimeAnchorDoc.model_validate(clock.anchor.to_json()),
    )
