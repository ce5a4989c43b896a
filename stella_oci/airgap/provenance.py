"""The BundleProvenance record written for every import (``$defs/BundleProvenance``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stella_oci.airgap.models import TimeAnchor, export_uuid, format_rfc3339, parse_rfc3339

# contentType / file suffix -> ExportRecord.format (the schema's enum).
_FORMAT_BY_HINT: tuple[tuple[str, str], ...] = (
    ("openvex", "openvex"),
    ("csaf", "csaf"),
    ("cyclonedx", "cyclonedx"),
    ("cdx", "cyclonedx"),
    ("spdx", "spdx"),
    ("ndjson", "ndjson"),
    ("jsonl", "ndjson"),
)


def _content_format(entry: dict[str, Any]) -> str | None:
    hint = f"{entry.get('contentType', '')} {entry.get('path', '')}".lower()
    for needle, fmt in _FORMAT_BY_HINT:
        if needle in hint:
            return fmt
    return None


def export_format(doc: dict[str, Any]) -> str:
    """ExportRecord ``format`` of an export: the one data format all its contents share
    (openvex, csaf, cyclonedx, spdx, ndjson, recognised from contentType or file name),
    else ``json`` (the export manifest itself)."""
    formats = {_content_format(entry) for entry in doc.get("contents", [])}
    if len(formats) == 1:
        (only,) = formats
        if only is not None:
            return only
    return "json"


def build_provenance(
    *,
    doc: dict[str, Any],
    manifest_digest: str | None,
    bundle_digest: str | None,
    anchor: TimeAnchor,
    imported_at: datetime,
    domain: str,
    staleness_seconds: int,
    source_environment: str | None = None,
    export_manifest_digest: str | None = None,
    reference: str | None = None,
    attestation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A BundleProvenance record for importing the export ``doc`` (a parsed export.json).

    ``manifest_digest`` is the OCI manifest digest (also the ExportRecord
    ``artifactDigest``); ``bundle_digest`` whatever digest the caller holds for the bundle
    contents (left out when ``None``). ``bundleId`` and ``exports[].exportId`` are
    :func:`~stella_oci.airgap.models.export_uuid` of the exportId; the original ids, the
    profile, tenant, reference, export manifest-digest annotation and delta base go into
    ``metadata`` (string values only, keys sorted).
    """
    export_id = str(doc["exportId"])
    generated_at = format_rfc3339(parse_rfc3339(str(doc["generatedAt"]), field="export.json generatedAt"))
    profile = doc.get("profile") or {}
    record: dict[str, Any] = {
        "provenanceType": "BUNDLE_PROVENANCE",
        "bundleId": export_uuid(export_id),
        "domainId": domain,
        "importedAt": format_rfc3339(imported_at),
        "sourceTimestamp": generated_at,
    }
    if source_environment:
        record["sourceEnvironment"] = source_environment
    if bundle_digest:
        record["bundleDigest"] = bundle_digest
    if manifest_digest:
        record["manifestDigest"] = manifest_digest
    record["stalenessSeconds"] = max(0, int(staleness_seconds))
    record["timeAnchor"] = anchor.to_json()
    if attestation:
        record["attestation"] = attestation
    if manifest_digest:
        export_record: dict[str, Any] = {
            "exportId": export_uuid(export_id),
            "key": str(profile.get("name") or export_id),
            "format": export_format(doc),
            "createdAt": generated_at,
            "artifactDigest": manifest_digest,
        }
        records = [e["records"] for e in doc.get("contents", []) if isinstance(e.get("records"), int)]
        if records:
            export_record["recordCount"] = sum(records)
        record["exports"] = [export_record]
    metadata: dict[str, str] = {"exportId": export_id}
    if doc.get("runId"):
        metadata["runId"] = str(doc["runId"])
    if doc.get("tenant"):
        metadata["tenant"] = str(doc["tenant"])
    if profile.get("kind") and profile.get("variant"):
        metadata["profile"] = f"{profile['kind']}:{profile['variant']}"
    if profile.get("name"):
        metadata["profileName"] = str(profile["name"])
    if export_manifest_digest:
        metadata["io.stellaops.export.manifest-digest"] = export_manifest_digest
    if reference:
        metadata["reference"] = reference
    delta = doc.get("delta")
    if isinstance(delta, dict):
        if delta.get("baseExportId"):
            metadata["baseExportId"] = str(delta["baseExportId"])
        if delta.get("baseManifestDigest"):
            metadata["baseManifestDigest"] = str(delta["baseManifestDigest"])
    record["metadata"] = dict(sorted(metadata.items()))
    return record
