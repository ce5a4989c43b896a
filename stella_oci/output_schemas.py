"""The JSON Schemas of the ``--format json`` documents (docs/output.md), one per command.

The schemas are generated from the result models and shipped as package data
(``stella_oci/data/output/<command>.schema.json``); ``python -m stella_oci.output_schemas``
rewrites them, and tests/test_output.py fails when a shipped file differs from what the models
generate, and validates real outputs of every command against the shipped files.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "data" / "output"
BASE_ID = "https://stellaops.io/schemas/stella-oci/output/"

#: command -> "module:Model" of its ``--format json`` document.
COMMAND_MODELS: dict[str, str] = {
    "push": "stella_oci.results:PushResult",
    "pull": "stella_oci.results:VerifyResult",
    "verify": "stella_oci.results:VerifyResult",
    "inspect": "stella_oci.results:InspectResult",
    "copy": "stella_oci.results:CopyResult",
    "attach": "stella_oci.verbs.referrers:AttachResult",
    "discover": "stella_oci.verbs.referrers:DiscoverResult",
    "tags": "stella_oci.verbs.tags:TagsResult",
    "resolve": "stella_oci.verbs.resolve:ResolveResult",
    "manifest": "stella_oci.verbs.resolve:ManifestResult",
    "tag": "stella_oci.verbs.tag:TagResult",
    "delete": "stella_oci.verbs.delete:DeleteResult",
    "fetch": "stella_oci.verbs.fetch:FetchResult",
    "login": "stella_oci.verbs.login:LoginResult",
    "logout": "stella_oci.verbs.login:LogoutResult",
    "save": "stella_oci.verbs.save:SaveResult",
    "load": "stella_oci.verbs.load:LoadResult",
    "have": "stella_oci.verbs.have:HaveResult",
    "airgap-history": "stella_oci.airgap.ledger:HistoryResult",
    "time-anchor-sign": "stella_oci.verbs.timeanchor:TimeAnchorSignResult",
    "time-anchor-verify": "stella_oci.verbs.timeanchor:TimeAnchorVerifyResult",
}

#: ``{"error": {...}}``, what every command prints on failure with ``--format json``.
ERROR_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": BASE_ID + "error.schema.json",
    "title": "error",
    "description": "What every command prints on stdout when it fails with --format json.",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "kind", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The process exit code (docs/exit-codes.md)."},
                "kind": {"type": "string", "description": "e.g. invalid-input, verification, not-found."},
                "message": {"type": "string"},
                "hint": {"type": "string", "description": "What to do about it."},
                "details": {"type": "object"},
            },
        },
        "staleness": {"type": "object", "description": "On exit 7: the StalenessValidationResult."},
        "provenance": {"type": "object", "description": "On exit 7 of an import: the BundleProvenance."},
        "clock": {
            "type": "object",
            "description": "On exit 7: the clock measured against (source, verified, timestamp; docs/airgap.md).",
        },
    },
}


def schema_for(command: str) -> dict[str, Any]:
    """The JSON Schema of ``command``'s document, generated from its model."""
    if command == "error":
        return ERROR_SCHEMA
    module, name = COMMAND_MODELS[command].split(":")
    model = getattr(importlib.import_module(module), name)
    schema: dict[str, Any] = model.model_json_schema(by_alias=True, mode="serialization")
    head = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}{command}.schema.json",
        "title": f"stella-oci {command} --format json",
    }
    return {**head, **{k: v for k, v in schema.items() if k != "title"}}


def commands() -> list[str]:
    return [*COMMAND_MODELS, "error"]


def shipped(command: str) -> dict[str, Any]:
    """The shipped schema file of ``command``."""
    doc: dict[str, Any] = json.loads((SCHEMA_DIR / f"{command}.schema.json").read_text(encoding="utf-8"))
    return doc


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for command in commands():
        path = SCHEMA_DIR / f"{command}.schema.json"
        path.write_text(render(schema_for(command)), encoding="utf-8")
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
