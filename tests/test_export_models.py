"""The pydantic models of export.json: round trips, labels, strictness."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stella_oci.errors import InvalidInputError
from stella_oci.export.canonical import manifest_digest
from stella_oci.export.models import (
    Attestations,
    ContentEntry,
    Distribution,
    ExportManifest,
    HttpHeaders,
    OciIntegrity,
    Profile,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / name / "export.json").read_text("utf-8"))
    return doc


def full_document() -> dict[str, Any]:
    """A manifest using every object of the schema."""
    doc = example("mirror-full")
    doc["profile"] = {"kind": "mirror", "variant": "delta", "name": "mirror-delta", "revision": "r12"}
    doc["delta"] = {
        "baseExportId": "exp-20261119-mirror-full-0001",
        "baseManifestDigest": "sha256:" + "1" * 64,
        "tombstones": ["advisories/osv/GHSA-old.json"],
        "added": ["data/index.json"],
        "removed": ["advisories/osv/GHSA-old.json"],
    }
    doc["attestations"] = {
        "provenanceRef": "provenance.json",
        "dsseEnvelope": "provenance.dsse.json",
        "slsaLevel": "3",
        "log": {
            "kind": "hashedrekord",
            "logId": "c0d23d6ad406973f",
            "logIndex": 0,
            "entryDigest": "sha256:" + "2" * 64,
            "timestamp": "2026-11-20T08:00:01.250+01:00",
        },
    }
    doc["distribution"]["object"] = {"enabled": False, "bucket": "exports", "prefix": "acme/"}
    doc["encryption"] = {
        "mode": "age",
        "recipients": [{"keyId": "k1", "fingerprint": "SHA256:abc", "wrappedKey": "d3JhcHBlZA=="}],
        "strict": True,
    }
    doc["approval"] = {"required": True, "reason": "air gap", "approvedBy": "ops@acme", "ticket": "SEC-1"}
    doc["quotas"] = {
        "maxActiveRuns": 4,
        "maxQueuedRuns": 64,
        "backpressureMode": "defer",
        "cpuThrottlePercent": 80,
    }
    doc["selectors"]["timeWindow"] = "2026-10-01/2026-11-01"
    return doc


@pytest.mark.parametrize("name", ["mirror-full", "trivy-db"])
def test_examples_round_trip(name: str) -> None:
    doc = example(name)
    model = ExportManifest.from_json_obj(doc)
    assert model.to_json_obj() == doc
    # and the round trip preserves the canonical digest exactly
    assert manifest_digest(model.to_json_obj()) == manifest_digest(doc)
    again = ExportManifest.from_json_obj(model.to_json_obj())
    assert again == model


def test_every_object_round_trips() -> None:
    doc = full_document()
    model = ExportManifest.from_json_obj(doc)
    assert model.to_json_obj() == doc
    assert model.delta is not None and model.delta.base_export_id == "exp-20261119-mirror-full-0001"
    assert model.attestations is not None and model.attestations.log.log_index == 0
    assert model.distribution is not None and model.distribution.object_ is not None
    assert model.distribution.object_.bucket == "exports"
    assert model.encryption is not None and model.encryption.recipients is not None
    assert model.encryption.recipients[0].wrapped_key == "d3JhcHBlZA=="
    assert model.approval is not None and model.approval.approved_by == "ops@acme"
    assert model.quotas is not None and model.quotas.backpressure_mode == "defer"
    assert model.selectors.time_window == "2026-10-01/2026-11-01"
    assert model.integrity is not None
    assert model.integrity.http_headers.x_stella_immutability == "true"
    assert model.profile_label == "mirror:delta"


def test_labels_and_helpers() -> None:
    mirror = ExportManifest.from_json_obj(example("mirror-full"))
    trivy = ExportManifest.from_json_obj(example("trivy-db"))
    assert mirror.profile_label == "mirror:full"
    assert mirror.run_label == "run-20261120-0800-7f3a9c"
    assert trivy.profile_label == "trivy:db"
    assert trivy.run_id is None
    assert trivy.run_label == "exp-20261120-trivy-db-0001"
    assert trivy.generated_at == "2026-11-20T08:00:00Z"
    assert trivy.generated_at_datetime.isoformat() == "2026-11-20T08:00:00+00:00"
    entry = mirror.content("data/packages.ndjson")
    assert entry is not None and entry.records == 3 and entry.content_type == "application/x-ndjson"
    assert entry.size == entry.bytes == 268
    assert mirror.content("nope") is None
    assert mirror.distribution is not None and mirror.distribution.oci is not None
    assert mirror.distribution.oci.reference == "localhost:5000/stellaops/exports/mirror-full"


def test_from_json_obj_reports_schema_errors_with_pointers() -> None:
    doc = example("trivy-db")
    doc["contents"][0]["bytes"] = "3095"
    with pytest.raises(InvalidInputError) as info:
        ExportManifest.from_json_obj(doc, source="b/export.json")
    assert info.value.exit_code == 2
    assert "b/export.json: /contents/0/bytes: must be of type integer" in str(info.value)


def test_models_are_frozen_and_refuse_unknown_members() -> None:
    model = ExportManifest.from_json_obj(example("trivy-db"))
    with pytest.raises(ValidationError):
        model.tenant = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        Profile.model_validate({"kind": "json", "variant": "raw", "name": "x", "colour": "red"})
    with pytest.raises(ValidationError):
        Profile.model_validate({"kind": "helm", "variant": "raw", "name": "x"})


def test_populate_by_name_and_aliases() -> None:
    entry = ContentEntry(
        path="a/b.json", digest="sha256:" + "a" * 64, bytes=3, content_type="application/json"
    )
    assert entry.to_json_obj() == {
        "path": "a/b.json",
        "digest": "sha256:" + "a" * 64,
        "bytes": 3,
        "contentType": "application/json",
    }
    headers = HttpHeaders.model_validate({"Digest": "sha-256=AAAA", "X-Stella-Signature": "dsse-b64=x"})
    assert headers.to_json_obj() == {"Digest": "sha-256=AAAA", "X-Stella-Signature": "dsse-b64=x"}
    dist = Distribution.model_validate({"object": {"bucket": "b"}})
    assert dist.to_json_obj() == {"object": {"bucket": "b"}}
    with pytest.raises(ValidationError):
        ContentEntry(path="a", digest="md5:abc", bytes=1)


def test_oci_integrity_requires_the_stellaops_annotations() -> None:
    anns = dict(example("mirror-full")["integrity"]["oci"]["annotations"])
    OciIntegrity.model_validate({"annotations": anns})
    for key in (
        "io.stellaops.export.profile",
        "io.stellaops.export.run",
        "io.stellaops.export.manifest-digest",
        "io.stellaops.export.provenance-ref",
    ):
        broken = {k: v for k, v in anns.items() if k != key}
        with pytest.raises(ValidationError, match=key):
            OciIntegrity.model_validate({"annotations": broken})
    with pytest.raises(ValidationError, match="manifest-digest"):
        OciIntegrity.model_validate(
            {"annotations": dict(anns, **{"io.stellaops.export.manifest-digest": "x"})}
        )


def test_attestations_need_a_log() -> None:
    att = copy.deepcopy(example("trivy-db")["attestations"])
    Attestations.model_validate(att)
    del att["log"]
    with pytest.raises(ValidationError):
        Attestations.model_validate(att)
