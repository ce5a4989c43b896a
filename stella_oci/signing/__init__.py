"""DSSE signatures over exports, verified offline against local trust roots only.

* :mod:`~stella_oci.signing.dsse`: the envelope format and the v1 PAE.
* :mod:`~stella_oci.signing.trust`: :class:`TrustRoot`, public keys from PEM files / directories.
* :mod:`~stella_oci.signing.verify`: :func:`verify_envelope`, :func:`verify_export_signatures`.
"""

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
