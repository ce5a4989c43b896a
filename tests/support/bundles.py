"""Build export bundles for tests: real files, real digests, a schema-valid export.json."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"


def write_large_file(path: Path, size: int, seed: int = 0) -> str:
    """Write ``size`` pseudo-random bytes in 1 MiB pieces; return the sha256 digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    block = hashlib.sha256(f"seed-{seed}".encode()).digest() * (1024 * 1024 // 32)
    written = 0
    n = 0
    with open(path, "wb") as fh:
        while written < size:
            piece = block[: min(len(block), size - written)]
            # vary each MiB so that no two chunks are equal
            piece = n.to_bytes(8, "big") + piece[8:] if len(piece) >= 8 else piece
            fh.write(piece)
            h.update(piece)
            written += len(piece)
            n += 1
    return "sha256:" + h.hexdigest()


def file_entry(root: Path, rel: str, content_type: str | None = None) -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    with open(root / rel, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    entry: dict[str, Any] = {"path": rel, "digest": "sha256:" + h.hexdigest(), "bytes": size}
    if content_type:
        entry["contentType"] = content_type
    return entry


def make_bundle(
    root: Path,
    files: Mapping[str, bytes | int],
    *,
    export_id: str = "exp-test-000001",
    run_id: str | None = "run-test-000001",
    profile: tuple[str, str, str] = ("mirror", "full", "mirror-full"),
    provenance_ref: str | None = "sha256:" + "ab" * 32,
    extra: Mapping[str, Any] | None = None,
    content_types: Mapping[str, str] | None = None,
) -> Path:
    """Write ``files`` (bytes, or an int size for a generated large file) and an export.json listing them."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, int):
            write_large_file(p, content, seed=len(rel))
        else:
            p.write_bytes(content)
    doc: dict[str, Any] = {
        "schema": "https://stellaops.io/export-center/manifest/v1alpha2",
        "version": "1.1.0",
        "exportId": export_id,
        "profile": {"kind": profile[0], "variant": profile[1], "name": profile[2]},
        "tenant": "acme",
        "selectors": {"tenants": ["acme"]},
        "generatedAt": "2026-11-20T08:00:00Z",
        "contents": [file_entry(root, rel, (content_types or {}).get(rel)) for rel in sorted(files)],
    }
    if run_id:
        doc["runId"] = run_id
    if provenance_ref:
        doc["attestations"] = {
            "provenanceRef": provenance_ref,
            "dsseEnvelope": "provenance.dsse.json",
            "slsaLevel": "2",
            "log": {
                "kind": "rekor",
                "logId": "test-log",
                "logIndex": 1,
                "entryDigest": "sha256:" + "cd" * 32,
                "timestamp": "2026-11-20T08:00:00Z",
            },
        }
    if extra:
        doc.update(extra)
    write_export_json(root, doc)
    return root


def write_export_json(root: Path, doc: Mapping[str, Any]) -> None:
    (root / "export.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def read_export_json(root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((root / "export.json").read_text())
    return doc


def copy_example(name: str, dest: Path) -> Path:
    shutil.copytree(EXAMPLES / name, dest)
    return dest


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file below root, by POSIX relative path, with its bytes (small trees only)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tree_digests(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            out[p.relative_to(root).as_posix()] = h.hexdigest()
    return out
