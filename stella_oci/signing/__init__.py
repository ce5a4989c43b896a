"""DSSE signatures over exports, verified offline against local trust roots only.

* :mod:`~stella_oci.signing.dsse`: the envelope format and the v1 PAE.
* :mod:`~stella_oci.signing.trust`: :class:`TrustRoot`, public keys from PEM files / directories.
* :mod:`~stella_oci.signing.verify`: :func:`verify_envelope`, :func:`verify_export_signatures`.

The names below are imported on first use: ``stella_oci.signing.models`` (the pydantic models
every result document uses) and ``stella_oci.signing.dsse`` must not load ``cryptography``
(``trust``, ``verify``) for a push that signs nothing (tests/test_startup.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stella_oci.lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "DSSE_ENVELOPE_MEDIA_TYPE": "stella_oci.signing.dsse",
    "PAYLOAD_TYPE_EXPORT_MANIFEST": "stella_oci.signing.dsse",
    "PAYLOAD_TYPE_IN_TOTO": "stella_oci.signing.dsse",
    "Envelope": "stella_oci.signing.dsse",
    "EnvelopeSignature": "stella_oci.signing.dsse",
    "pae": "stella_oci.signing.dsse",
    "parse_envelope": "stella_oci.signing.dsse",
    "EnvelopeResult": "stella_oci.signing.models",
    "ProvenanceResult": "stella_oci.signing.models",
    "SignatureReport": "stella_oci.signing.models",
    "VerifiedEnvelope": "stella_oci.signing.models",
    "TrustedKey": "stella_oci.signing.trust",
    "TrustRoot": "stella_oci.signing.trust",
    "key_id_of": "stella_oci.signing.trust",
    "verify_bundle_signatures": "stella_oci.signing.verify",
    "verify_envelope": "stella_oci.signing.verify",
    "verify_export_signatures": "stella_oci.signing.verify",
}

if TYPE_CHECKING:
    from stella_oci.signing.dsse import (
        DSSE_ENVELOPE_MEDIA_TYPE,
        PAYLOAD_TYPE_EXPORT_MANIFEST,
        PAYLOAD_TYPE_IN_TOTO,
        Envelope,
        EnvelopeSignature,
        pae,
        parse_envelope,
    )
    from stella_oci.signing.models import EnvelopeResult, ProvenanceResult, SignatureReport, VerifiedEnvelope
    from stella_oci.signing.trust import TrustedKey, TrustRoot, key_id_of
    from stella_oci.signing.verify import (
        verify_bundle_signatures,
        verify_envelope,
        verify_export_signatures,
    )


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())



__all__ = [
    "DSSE_ENVELOPE_MEDIA_TYPE",
    "PAYLOAD_TYPE_EXPORT_MANIFEST",
    "PAYLOAD_TYPE_IN_TOTO",
    "Envelope",
    "EnvelopeResult",
    "EnvelopeSignature",
    "ProvenanceResult",
    "SignatureReport",
    "TrustRoot",
    "TrustedKey",
    "VerifiedEnvelope",
    "key_id_of",
    "pae",
    "parse_envelope",
    "verify_bundle_signatures",
    "verify_envelope",
    "verify_export_signatures",
]
