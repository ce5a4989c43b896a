"""A fake, local Sigstore for tests: a Fulcio-like CA, a CT log, a Rekor-like transparency log,
the ``trusted_root.json`` naming them, and Sigstore bundles (v0.3 JSON) they vouch for.

Nothing here talks to a network. Everything is built with ``cryptography`` as the real services
build it, so the ``sigstore`` library's offline verifier accepts it unchanged:

* the CA: a self-signed ECDSA P-384 root; leaf certificates (ECDSA P-256 keys) with the SAN
  identity (e-mail or URI, critical, empty subject as Fulcio writes them), key usage
  digitalSignature, EKU codeSigning, the OIDC issuer in extension 1.3.6.1.4.1.57264.1.1 (raw
  string, "v1") and 1.3.6.1.4.1.57264.1.8 (DER UTF8String, "v2"), and one embedded precert SCT;
* the SCT (RFC 6962 section 3.2): signed by the CT log key over version, signature type,
  timestamp, entry type ``precert_entry``, the issuer key hash and the precertificate TBS (the
  leaf's TBS without the SCT list extension);
* the log: an RFC 6962 Merkle tree of a few leaves (the entry among filler entries), the
  inclusion proof, a checkpoint in the signed-note format signed by the log key (the 4-byte key
  hint before the signature), and the signed entry timestamp (SET) over the RFC 8785 JSON of
  body, integratedTime, logID and logIndex;
* entries: ``hashedrekord`` 0.0.1 for a message signature (``cosign sign-blob --bundle``) and
  ``dsse`` 0.0.1 for a DSSE envelope (``cosign attest-blob`` / ``cosign sign --new-bundle-format``).

FOR TESTS ONLY: its private keys live in memory and mean nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SCT_LIST_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
IN_TOTO = "application/vnd.in-toto+json"

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    return hashlib.sha256(_spki(key)).digest()


def _der_utf8(value: str) -> bytes:
    raw = value.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def _der_octets(value: bytes) -> bytes:
    n = len(value)
    if n < 128:
        return bytes([0x04, n]) + value
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(length)]) + length + value


# --- RFC 6962 Merkle tree ----------------------------------------------------------------------


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _node_hash(_root(leaves[:k]), _root(leaves[k:]))


def _proof(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n]), lowest level first."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if index < k:
        return [*_proof(index, leaves[:k]), _root(leaves[k:])]
    return [*_proof(index - k, leaves[k:]), _root(leaves[:k])]


# --- the services ------------------------------------------------------------------------------


@dataclass
class FakeLog:
    """A transparency log (Rekor-like) or CT log: an ECDSA P-256 key and its log id."""

    origin: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()

    @property
    def log_id(self) -> bytes:
        return _key_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def trusted_root_entry(self, base_url: str) -> dict[str, Any]:
        return {
            "baseUrl": base_url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": _b64(_spki(self.public_key)),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            "logId": {"keyId": _b64(self.log_id)},
        }


@dataclass
class SignedArtifact:
    """What :meth:`FakeSigstore.sign_artifact` / :meth:`FakeSigstore.sign_dsse` made."""

    bundle: dict[str, Any]
    certificate: x509.Certificate

    def to_json(self) -> bytes:
        return json.dumps(self.bundle, indent=2).encode() + b"\n"


class FakeSigstore:
    """A local Fulcio + CT log + Rekor, and the trusted root that trusts exactly them."""

    def __init__(self, *, name: str = "fake-sigstore.test", filler_entries: int = 4) -> None:
        self.name = name
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        ca_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stella-oci tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root (TEST ONLY)"),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(EPOCH - dt.timedelta(days=365))
            .not_valid_after(EPOCH + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(self.ca_key, hashes.SHA384())
        )
        self.ct = FakeLog(origin=f"ct.{name}")
        self.rekor = FakeLog(origin=f"rekor.{name} - 1234567890")
        self.filler_entries = filler_entries
        self._leaves: list[bytes] = [
            json.dumps({"filler": i, "log": name}).encode() for i in range(filler_entries)
        ]
        self._time = EPOCH + dt.timedelta(days=30)

    # -- the trusted root -----------------------------------------------------------------------

    def trusted_root(self) -> dict[str, Any]:
        return {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [self.rekor.trusted_root_entry(f"https://rekor.{self.name}")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "stella-oci tests", "commonName": f"{self.name} root"},
                    "uri": f"https://fulcio.{self.name}",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": _b64(self.ca_cert.public_bytes(serialization.Encoding.DER))}
                        ]
                    },
                    "validFor": {"start": "2020-01-01T00:00:00Z"},
                }
            ],
            "ctlogs": [self.ct.trusted_root_entry(f"https://ctfe.{self.name}")],
            "timestampAuthorities": [],
        }

    def write_trusted_root(self, path: Path) -> Path:
        path.write_text(json.dumps(self.trusted_root(), indent=2) + "\n")
        return path

    # -- Fulcio ---------------------------------------------------------------------------------

    def issue(
        self, identity: str, issuer: str, *, signing_key: ec.EllipticCurvePrivateKey
    ) -> x509.Certificate:
        """A short-lived code-signing certificate for ``identity`` (e-mail, or URI when it has
        ``://``), issued by ``issuer``, with an embedded precert SCT from the CT log."""
        not_before = self._time
        san: x509.GeneralName = (
            x509.UniformResourceIdentifier(identity) if "://" in identity else x509.RFC822Name(identity)
        )

        def builder() -> x509.CertificateBuilder:
            return (
                x509.CertificateBuilder()
                .subject_name(x509.Name([]))
                .issuer_name(self.ca_cert.subject)
                .public_key(signing_key.public_key())
                .serial_number(serial)
                .not_valid_before(not_before)
                .not_valid_after(not_before + dt.timedelta(minutes=10))
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=False,
                        crl_sign=False,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(signing_key.public_key()), critical=False
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                    critical=False,
                )
                .add_extension(x509.SubjectAlternativeName([san]), critical=True)
                .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V1, issuer.encode()), critical=False)
                .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V2, _der_utf8(issuer)), critical=False)
            )

        serial = x509.random_serial_number()
        precert = builder().sign(self.ca_key, hashes.SHA384())
        tbs = precert.tbs_certificate_bytes
        sct = self._sct(tbs, timestamp=not_before)
        sct_list = struct.pack("!H", len(sct)) + sct
        ext_value = _der_octets(struct.pack("!H", len(sct_list)) + sct_list)
        cert = (
            builder()
            .add_extension(x509.UnrecognizedExtension(SCT_LIST_OID, ext_value), critical=False)
            .sign(self.ca_key, hashes.SHA384())
        )
        assert cert.tbs_precertificate_bytes == tbs, (
            "the precert TBS must be the certificate without its SCTs"
        )
        return cert

    def _sct(self, tbs: bytes, *, timestamp: dt.datetime) -> bytes:
        ms = int(timestamp.timestamp() * 1000)
        issuer_key_hash = _key_id(self.ca_key.public_key())
        signed = struct.pack(
            f"!BBQH32s3s{len(tbs)}sH",
            0,  # v1
            0,  # certificate_timestamp
            ms,
            1,  # precert_entry
            issuer_key_hash,
            len(tbs).to_bytes(3, "big"),
            tbs,
            0,  # no extensions
        )
        sig = self.ct.sign(signed)
        return (
            struct.pack("!B32sQH", 0, self.ct.log_id, ms, 0)
            + struct.pack("!BBH", 4, 3, len(sig))  # sha256, ecdsa
            + sig
        )

    # -- Rekor ----------------------------------------------------------------------------------

    def _log(self, body: bytes, kind: str) -> dict[str, Any]:
        """Append ``body`` to the log; the bundle's tlog entry for it (inclusion proof,
        checkpoint, SET)."""
        self._leaves.append(body)
        index = len(self._leaves) - 1
        # a few more entries after ours, so the proof has both left and right siblings
        self._leaves.append(json.dumps({"filler": "after", "of": index}).encode())
        leaf_hashes = [_leaf_hash(leaf) for leaf in self._leaves]
        root = _root(leaf_hashes)
        size = len(leaf_hashes)
        note = f"{self.rekor.origin}\n{size}\n{_b64(root)}\n"
        note_sig = self.rekor.log_id[:4] + self.rekor.sign(note.encode())
        checkpoint = f"{note}\n\u2014 {self.rekor.origin.split(' ')[0]} {_b64(note_sig)}\n"
        integrated = int((self._time + dt.timedelta(minutes=1)).timestamp())
        set_payload = rfc8785.dumps(
            {
                "body": _b64(body),
                "integratedTime": integrated,
                "logID": self.rekor.log_id.hex(),
                "logIndex": index,
            }
        )
        return {
            "logIndex": str(index),
            "logId": {"keyId": _b64(self.rekor.log_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {"signedEntryTimestamp": _b64(self.rekor.sign(set_payload))},
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": _b64(root),
                "treeSize": str(size),
                "hashes": [_b64(h) for h in _proof(index, leaf_hashes)],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": _b64(body),
        }

    # -- signing --------------------------------------------------------------------------------

    def sign_artifact(self, data: bytes, *, identity: str, issuer: str) -> SignedArtifact:
        """``cosign sign-blob --bundle --new-bundle-format``: a message signature over ``data``
        with a fresh key, certified for ``identity`` / ``issuer``, logged as hashedrekord."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(identity, issuer, signing_key=key)
        digest = hashlib.sha256(data).digest()
        sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                    "signature": {"content": _b64(sig), "publicKey": {"content": _b64(cert_pem)}},
                },
            }
        )
        bundle = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self._log(body, "hashedrekord")],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
                "signature": _b64(sig),
            },
        }
        return SignedArtifact(bundle, cert)

    def sign_dsse(
        self, payload: bytes, *, identity: str, issuer: str, payload_type: str = IN_TOTO
    ) -> SignedArtifact:
        """``cosign attest-blob --new-bundle-format``: a DSSE envelope over ``payload``, logged as
        a dsse 0.0.1 entry."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(identity, issuer, signing_key=key)
        ptype = payload_type.encode()
        pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
        sig = key.sign(pae, ec.ECDSA(hashes.SHA256()))
        envelope = {"payload": _b64(payload), "payloadType": payload_type, "signatures": [{"sig": _b64(sig)}]}
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                    },
                    "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                    "signatures": [{"signature": _b64(sig), "verifier": _b64(cert_pem)}],
                },
            }
        )
        bundle = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self._log(body, "dsse")],
            },
            "dsseEnvelope": envelope,
        }
        return SignedArtifact(bundle, cert)


def in_toto_statement(
    subjects: dict[str, str], predicate_type: str = "https://slsa.dev/provenance/v1"
) -> bytes:
    """An in-toto v1 Statement naming ``subjects`` (name -> hex sha256)."""
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": n, "digest": {"sha256": d}} for n, d in subjects.items()],
            "predicateType": predicate_type,
            "predicate": {},
        },
        sort_keys=True,
    ).encode()
