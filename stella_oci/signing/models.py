"""What signature verification reports (pydantic models, no cryptography): the ``signatures``
member of a pull / verify result. JSON keys are camelCase; Python attributes snake_case."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

PROVENANCE_JSON = "provenance.json"

#: Serialize under camelCase names (the JSON output convention, docs/output.md).
_CAMEL = ConfigDict(
    alias_generator=AliasGenerator(serialization_alias=to_camel), use_attribute_docstrings=True, defer_build=True
)


class VerifiedEnvelope(BaseModel):
    """An envelope whose signature verified with a trusted key."""

    model_config = ConfigDict(
        frozen=True, alias_generator=AliasGenerator(serialization_alias=to_camel), defer_build=True
    )

    source: str
    payload_type: str
    payload: bytes
    key_id: str
    """Stable id (hex SHA-256 of the DER SubjectPublicKeyInfo) of the key that verified."""
    key_name: str
    """The trust-root file the key came from."""
    signature_index: int
    """Which entry of ``signatures`` verified."""


class EnvelopeResult(BaseModel):
    """What was found out about one envelope."""

    model_config = _CAMEL

    name: str
    payload_type: str
    key_id: str | None = None
    """The trusted key that verified the signature; None when unverified."""
    key_name: str | None = None
    keyid_hints: list[str] = Field(default_factory=list)
    """The ``keyid`` values the envelope's signatures carry (unauthenticated)."""
    verified: bool
    binds_to_export: bool
    binding: str
    """How the payload binds to export.json."""
    status: Literal["verified", "unverified"]


class ProvenanceResult(BaseModel):
    model_config = _CAMEL

    name: str = PROVENANCE_JSON
    enveloped: bool
    """True when provenance.json is a DSSE envelope around the Statement."""
    predicate_type: str | None = None
    export_json_subject: str
    subjects_checked: list[str] = Field(default_factory=list)
    """Subjects (other than export.json) whose digests were compared with export.json contents."""
    envelope: EnvelopeResult | None = None


class SigstoreBundleResult(BaseModel):
    """A Sigstore bundle that verified offline against a Sigstore trusted root (or, without one,
    was found and left unverified)."""

    model_config = _CAMEL

    name: str
    kind: Literal["messageSignature", "dsse", "unknown"]
    """What the bundle carries: a message signature (``cosign sign-blob``) or a DSSE envelope."""
    identity: str | None = None
    """The certificate identity (SAN) that was required and matched."""
    issuer: str | None = None
    """The OIDC issuer that was required and matched."""
    log_index: int | None = None
    """The transparency-log index whose inclusion proof was checked."""
    integrated_time: int | None = None
    """When the log recorded the entry (Unix seconds), the time the certificate was checked at."""
    binding: str | None = None
    """How the signed bytes bind to the export."""
    verified: bool
    status: Literal["verified", "unverified"]


class SignatureReport(BaseModel):
    """All signature checks of one export (returned only when every performed check passed)."""

    model_config = _CAMEL

    export_json_sha256: str
    trust_root: list[str] = Field(default_factory=list)
    """Key ids of the trust root; empty when none was given (envelopes then ``unverified``)."""
    required: bool
    envelopes: list[EnvelopeResult] = Field(default_factory=list)
    provenance: ProvenanceResult | None = None
    digest_header: str | None = None
    """The ``integrity.httpHeaders.Digest`` value that was checked, when present."""
    stella_signature: EnvelopeResult | None = None
    """The envelope of ``integrity.httpHeaders.X-Stella-Signature``, when present."""
    sigstore_bundles: list[SigstoreBundleResult] = Field(default_factory=list)
    """Sigstore bundles (cosign --bundle / --new-bundle-format), layers or referrers."""

    @property
    def verified_count(self) -> int:
        found = [
            *self.envelopes,
            self.stella_signature,
            self.provenance.envelope if self.provenance else None,
        ]
        return sum(1 for e in found if e is not None and e.verified) + sum(
            1 for b in self.sigstore_bundles if b.verified
        )
