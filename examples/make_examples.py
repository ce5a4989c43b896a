#!/usr/bin/env python3
"""Regenerate the example export bundles, deterministically.

    python examples/make_examples.py [--output DIR]

writes ``DIR/mirror-full/``, ``DIR/trivy-db/`` and ``DIR/trivy-java-db/`` (DIR defaults to this
script's folder), replacing those folders entirely. Every byte is a function of this script: no clock,
no randomness, no host value. Running it twice leaves the tree unchanged, and the
checked-in bundles equal its output (``tests/test_export_schema.py`` checks that).

What is computed, not written by hand: every ``contents[]`` digest and size, ``rerunHash``,
the ``io.stellaops.export.manifest-digest`` (RFC 8785 form of export.json without
``integrity``), the ``Digest`` HTTP header derived from it, and provenance.json's subjects
(which include the final export.json's sha256, so provenance.json is written last).

Signatures are real, made with the EXAMPLE-ONLY Ed25519 key (:data:`SIGNING_KEY`; its private
half is published, so they prove nothing outside these examples): ``X-Stella-Signature`` in
export.json ``integrity.httpHeaders`` (an envelope over a Statement naming the manifest digest,
:func:`tests.support.signing.x_stella_signature`), and, once export.json and provenance.json
are final, ``export.json.dsse.json`` and ``provenance.dsse.json``
(:func:`tests.support.signing.sign_example_bundle`). Ed25519 signatures are deterministic,
so the output stays byte-stable. Verify with
``stella-oci verify examples/mirror-full --trust-root examples/keys --require-signature``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import struct
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Any

from stella_oci.export.models import ExportManifest

model_of = ExportManifest.from_json_obj

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stella_oci.export.annotations import (  # noqa: E402
    ANN_PROVENANCE_REF,
    RESERVED_PREFIX,
    check_annotations,
    compute_annotations,
)
from stella_oci.export.canonical import digest_to_http, manifest_digest, rerun_hash  # noqa: E402
from stella_oci.export.models import SCHEMA_URI, ExportManifest  # noqa: E402
from stella_oci.signing.trust import TrustRoot  # noqa: E402
from stella_oci.signing.verify import verify_bundle_signatures  # noqa: E402
from tests.support.signing import sign_example_bundle, x_stella_signature  # noqa: E402

GENERATED_AT = "2026-11-20T08:00:00Z"
#: The key the examples are signed with (EXAMPLE ONLY: its private half is public).
SIGNING_KEY = Path(__file__).resolve().parent / "keys" / "EXAMPLE-ONLY-ed25519.key"
BUNDLES = ("mirror-full", "trivy-db", "trivy-java-db")


def dump_json(obj: Any) -> bytes:
    """How every JSON file here is written: sorted keys, 2-space indent, UTF-8, final newline."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_digest(label: str) -> str:
    """A stable, obviously synthetic digest for references to things outside the bundle."""
    return "sha256:" + sha256_hex(b"stella-oci example: " + label.encode("utf-8"))


def write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def content_entry(
    rel: str, data: bytes, content_type: str | None = None, records: int | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": rel, "digest": "sha256:" + sha256_hex(data), "bytes": len(data)}
    if content_type is not None:
        entry["contentType"] = content_type
    if records is not None:
        entry["records"] = records
    return entry


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A minimal ustar archive: fixed owner, mode and mtime 0, no record padding."""
    out = io.BytesIO()
    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        out.write(info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict"))
        out.write(data)
        out.write(b"\0" * (-len(data) % 512))
    out.write(b"\0" * 1024)
    return out.getvalue()


def gzip_stored(data: bytes) -> bytes:
    """gzip with *stored* deflate blocks, built by hand so that no zlib version can change a byte."""
    out = io.BytesIO()
    out.write(
        b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + b"\x00\xff"
    )  # magic, deflate, no flags, mtime 0, OS unknown
    chunks = [data[i : i + 65535] for i in range(0, len(data), 65535)] or [b""]
    for i, chunk in enumerate(chunks):
        final = 1 if i == len(chunks) - 1 else 0
        out.write(bytes([final]) + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk)
    out.write(struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF))
    return out.getvalue()


def finish_integrity(doc: dict[str, Any], provenance_ref: str, extra: dict[str, str]) -> dict[str, Any]:
    """Add ``integrity`` to ``doc``: the io.stellaops.* annotations computed from it, plus ``extra``."""
    anns = compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=provenance_ref, user={})
    oci_anns = {k: v for k, v in anns.items() if k.startswith(RESERVED_PREFIX)}
    oci_anns.update(extra)
    doc = dict(doc)
    doc["integrity"] = {
        "httpHeaders": {
            "Digest": digest_to_http(anns["io.stellaops.export.manifest-digest"]),
            "X-Stella-Immutability": "true",
        },
        "oci": {"annotations": dict(sorted(oci_anns.items()))},
    }
    # integrity is outside the manifest digest, so the signature over it can go in last
    doc["integrity"]["httpHeaders"]["X-Stella-Signature"] = x_stella_signature(doc, SIGNING_KEY.read_bytes())
    assert manifest_digest(doc) == anns["io.stellaops.export.manifest-digest"]
    return doc


def build_mirror_full(out: Path) -> None:
    export_id = "exp-20261120-mirror-full-0001"
    run_id = "run-20261120-0800-7f3a9c"
    files: list[tuple[str, bytes, str | None, int | None]] = []

    osv = {
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": "lodash", "purl": "pkg:npm/lodash"},
                "ranges": [{"events": [{"introduced": "0"}, {"fixed": "4.17.21"}], "type": "SEMVER"}],
            }
        ],
        "aliases": ["CVE-2021-23337"],
        "id": "GHSA-35jh-r3h4-6jhm",
        "modified": "2026-11-19T12:00:00Z",
        "published": "2021-02-15T11:42:00Z",
        "schema_version": "1.6.0",
        "summary": "Command injection in lodash template",
    }
    files.append(("advisories/osv/GHSA-35jh-r3h4-6jhm.json", dump_json(osv), "application/json", None))
    vex = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://stellaops.example/vex/acme/2026-11-20",
        "author": "StellaOps Export Center (example)",
        "statements": [
            {
                "products": [{"@id": "pkg:npm/acme-portal@3.4.0"}],
                "status": "fixed",
                "vulnerability": {"name": "CVE-2021-23337"},
            }
        ],
        "timestamp": GENERATED_AT,
        "version": 1,
    }
    files.append(
        ("advisories/vex/acme-2026-11-20.openvex.json", dump_json(vex), "application/vnd.openvex+json", None)
    )
    packages = [
        {"ecosystem": "npm", "name": "lodash", "purl": "pkg:npm/lodash@4.17.21", "version": "4.17.21"},
        {"ecosystem": "npm", "name": "minimist", "purl": "pkg:npm/minimist@1.2.8", "version": "1.2.8"},
        {"ecosystem": "pypi", "name": "requests", "purl": "pkg:pypi/requests@2.32.3", "version": "2.32.3"},
    ]
    ndjson = b"".join(json.dumps(p, sort_keys=True, separators=(",", ":")).encode() + b"\n" for p in packages)
    files.append(("data/packages.ndjson", ndjson, "application/x-ndjson", len(packages)))
    sbom = {
        "bomFormat": "CycloneDX",
        "components": [
            {
                "bom-ref": p["purl"],
                "name": p["name"],
                "purl": p["purl"],
                "type": "library",
                "version": p["version"],
            }
            for p in packages
        ],
        "specVersion": "1.6",
        "version": 1,
    }
    files.append(("data/sbom/acme-portal.cdx.json", dump_json(sbom), "application/vnd.cyclonedx+json", None))
    index = {
        "advisories": 1,
        "exportId": export_id,
        "generatedAt": GENERATED_AT,
        "packages": len(packages),
        "vexStatements": 1,
    }
    files.append(("data/index.json", dump_json(index), None, None))  # no contentType: octet-stream layer

    for rel, data, _, _ in files:
        write(out, rel, data)
    contents = sorted(
        (content_entry(rel, data, ctype, records) for rel, data, ctype, records in files),
        key=lambda e: e["path"],
    )
    doc: dict[str, Any] = {
        "contents": contents,
        "distribution": {
            "http": {"enabled": True, "etag": f'"{export_id}"', "rangeRequests": True, "retentionDays": 30},
            "oci": {"enabled": True, "reference": "localhost:5000/stellaops/exports/mirror-full"},
        },
        "exportId": export_id,
        "generatedAt": GENERATED_AT,
        "profile": {"kind": "mirror", "name": "mirror-full", "revision": "r3", "variant": "full"},
        "rerunHash": rerun_hash(e["digest"] for e in contents),
        "runId": run_id,
        "schema": SCHEMA_URI,
        "selectors": {
            "ecosystems": ["npm", "pypi"],
            "products": ["pkg:npm/acme-portal@3.4.0"],
            "severities": ["critical", "high"],
            "tenants": ["acme"],
            "timeWindow": "30d",
        },
        "tenant": "acme",
        "version": "1.1.0",
    }
    # provenance.json names export.json's sha256, so export.json cannot hold provenance.json's
    # digest: the reference is the provenance layer's title instead.
    doc = finish_integrity(doc, "provenance.json", {"org.opencontainers.image.ref.name": export_id})
    export_bytes = dump_json(doc)
    write(out, "export.json", export_bytes)

    subjects = [{"digest": {"sha256": sha256_hex(export_bytes)}, "name": "export.json"}]
    subjects += [{"digest": {"sha256": sha256_hex(data)}, "name": rel} for rel, data, _, _ in files]
    subjects.sort(key=lambda s: s["name"])
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://stellaops.io/export-center/build/v1",
                "externalParameters": {
                    "exportId": export_id,
                    "profile": "mirror:full",
                    "selectors": doc["selectors"],
                    "tenant": "acme",
                },
                "resolvedDependencies": [],
            },
            "runDetails": {
                "builder": {"id": "https://stellaops.io/export-center/worker"},
                "metadata": {"finishedOn": GENERATED_AT, "invocationId": run_id, "startedOn": GENERATED_AT},
            },
        },
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": subjects,
    }
    write(out, "provenance.json", dump_json(statement))


def build_trivy_db(out: Path) -> None:
    """A ``trivy:db`` export: db.tar.gz (metadata.json + trivy.db, as Trivy unpacks it)."""
    build_trivy(out, variant="db", archive="db.tar.gz", db_file="trivy.db", schema=2,
                layer_type="application/vnd.aquasec.trivy.db.layer.v1.tar+gzip")


def build_trivy_java_db(out: Path) -> None:
    """A ``trivy:java-db`` export: javadb.tar.gz (metadata.json + trivy-java.db)."""
    build_trivy(out, variant="java-db", archive="javadb.tar.gz", db_file="trivy-java.db", schema=1,
                layer_type="application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip")


def build_trivy(out: Path, *, variant: str, archive: str, db_file: str, schema: int, layer_type: str) -> None:
    name = f"trivy-{variant}"
    export_id = f"exp-20261120-{name}-0001"
    metadata = {
        "DownloadedAt": GENERATED_AT,
        "NextUpdate": "2026-11-20T14:00:00Z",
        "UpdatedAt": GENERATED_AT,
        "Version": schema,
    }
    metadata_bytes = dump_json(metadata)
    fake_db = f"stella-oci example: not a real BoltDB, a stand-in for {db_file}\n".encode() * 8
    db = gzip_stored(tar_bytes([("metadata.json", metadata_bytes), (db_file, fake_db)]))
    files = [
        (archive, db, layer_type),
        ("metadata.json", metadata_bytes, "application/json"),
    ]
    for rel, data, _ in files:
        write(out, rel, data)
    contents = sorted(
        (content_entry(rel, data, ctype) for rel, data, ctype in files), key=lambda e: e["path"]
    )
    doc: dict[str, Any] = {
        "attestations": {
            "dsseEnvelope": fake_digest(f"{name} dsse envelope"),
            "log": {
                "entryDigest": fake_digest(f"{name} rekor entry"),
                "kind": "rekor",
                "logId": sha256_hex(b"stella-oci example: rekor log id"),
                "logIndex": 123456789,
                "timestamp": "2026-11-20T08:00:05Z",
            },
            "provenanceRef": f"localhost:5000/stellaops/attestations/{name}@"
            + fake_digest(f"{name} provenance"),
            "slsaLevel": "SLSA_BUILD_LEVEL_2",
        },
        "contents": contents,
        "distribution": {"oci": {"enabled": True, "reference": f"localhost:5000/stellaops/exports/{name}"}},
        "exportId": export_id,
        "generatedAt": GENERATED_AT,
        "profile": {"kind": "trivy", "name": name, "variant": variant},
        "rerunHash": rerun_hash(e["digest"] for e in contents),
        "schema": SCHEMA_URI,
        "selectors": {"severities": ["critical", "high", "medium", "low"], "tenants": ["acme"]},
        "tenant": "acme",
        "version": "1.1.0",
    }
    write(out, "export.json", dump_json(doc))


def check_bundle(root: Path) -> None:
    """Fail loudly if a generated bundle would not be pushed as is."""
    doc = json.loads((root / "export.json").read_bytes())
    ExportManifest.from_json_obj(doc, source=str(root / "export.json"))
    for entry in doc["contents"]:
        data = (root / entry["path"]).read_bytes()
        assert entry["digest"] == "sha256:" + sha256_hex(data) and entry["bytes"] == len(data), entry
    prov = root / "provenance.json"
    prov_digest = "sha256:" + sha256_hex(prov.read_bytes()) if prov.exists() else None
    anns = compute_annotations(model_of(doc), provenance_digest=prov_digest, provenance_ref=None, user={})
    check_annotations(anns, model_of(doc), provenance_digest=prov_digest)
    assert anns[ANN_PROVENANCE_REF]
    # the signatures verify with the public half of the example key, and bind to this export.json
    trust = TrustRoot.load(SIGNING_KEY.with_suffix(".pub"))
    report = verify_bundle_signatures(root, trust_root=trust, require=True)
    assert report.envelopes and all(e.verified and e.binds_to_export for e in report.envelopes), report


def generate(output: Path) -> None:
    builders = {"mirror-full": build_mirror_full, "trivy-db": build_trivy_db, "trivy-java-db": build_trivy_java_db}
    for name in BUNDLES:
        target = output / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        builders[name](target)
        sign_example_bundle(target, SIGNING_KEY)  # after export.json and provenance.json are final
        check_bundle(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).resolve().parent, help="where to write the bundles"
    )
    args = parser.parse_args(argv)
    generate(args.output)
    for name in BUNDLES:
        print(args.output / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
