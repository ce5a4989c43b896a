"""The BundleProvenance record written for every import (``$defs/BundleProvenance``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stella_oci.airgap.models import TimeAnchor, export_uuid, format_rfc3339, parse_rfc3339
from stella_oci.export.models import ContentEntry, ExportManifest

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


def _content_format(entry: ContentEntry) -> str | None:
    hint = f"{entry.content_type or ''} {entry.path}".lower()
    for needle, fmt in _FORMAT_BY_HINT:
        if needle in hint:
            return fmt
    return None


def export_format(export: ExportManifest) -> str:
    """ExportRecord ``format`` of an export: the one data format all its contents share
    (openvex, csaf, cyclonedx, spdx, ndjson, recognised from contentType or file name),
    else ``json`` (the export manifest itself)."""
    formats = {_content_format(entry) for entry in export.contents}
    if len(formats) == 1:
        (only,) = formats
        if only is not None:
            return only
    return "json"


def build_provenance(
    *,
    export: ExportManifest,
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
    force_reason: str | None = None,
) -> dict[str, Any]:
    """A BundleProvenance record for importing ``export`` (export.json).

    ``manifest_digest`` is the OCI manifest digest (also the ExportRecord
    ``artifactDigest``); ``bundle_digest`` whatever digest the caller holds for the bundle
    contents (left out when ``None``). ``bundleId`` and ``exports[].exportId`` are
    :func:`~stella_oci.airgap.models.export_uuid` of the exportId; the original ids, the
    profile, tenant, reference, export manifest-digest annotation and delta base go into
    ``metadata`` (string values only, keys sorted), and ``forceReason`` when
    ``--force-activate`` let a rollback through.
    """
    export_id = export.export_id
    generated_at = format_rfc3339(parse_rfc3339(export.generated_at, field="export.json generatedAt"))
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
            "key": export.profile.name,
            "format": export_format(export),
            "createdAt": generated_at,
            "artifactDigest": manifest_digest,
        }
        records = [e.records for e in export.contents if e.records is not None]
        if records:
            export_record["recordCount"] = sum(records)
        record["exports"] = [export_record]
    record["metadata"] = _metadata(export, export_manifest_digest, reference)
    if force_reason:
        record["metadata"] = dict(sorted({**record["metadata"], "forceReason": force_reason}.items()))
    return record


def _metadata(export: ExportManifest, export_manifest_digest: str | None, reference: str | None) -> dict[str, str]:
    """BundleProvenance ``metadata``: the export's own ids and names, string values, keys sorted."""
    metadata: dict[str, str] = {
        "exportId": export.export_id,
        "tenant": export.tenant,
        "profile": export.profile_label,
        "profileName": export.profile.name,
    }
    if export.run_id:
        metadata["runId"] = export.run_id
    if export_manifest_digest:
        metadata["io.stellaops.export.manifest-digest"] = export_manifest_digest
    if reference:
        metadata["reference"] = reference
    if export.delta is not None:
        metadata["baseExportId"] = export.delta.base_export_id
        metadata["baseManifestDigest"] = export.delta.base_manifest_digest
    return dict(sorted(metadata.items()))
