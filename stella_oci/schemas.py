"""JSON Schema validation of StellaOps documents, with messages a person can act on.

The schemas ship as package data (``stella_oci/data/<name>.schema.json``): the Export
Center manifest (``export-manifest``, v1alpha2) and the air-gap staleness records
(``ledger-airgap-staleness``). Validation uses Draft 2020-12 with format checking switched
on, so ``"generatedAt": "yesterday"`` is a violation, not a silently accepted string.

Violations are reported one per line, the most relevant first (at most 20, then a count of
the rest; validation stops after 1,000, and the count then says "at least")::

    export.json: /contents/0/digest: does not match the pattern ^sha256:[a-f0-9]{64}$
      (rule: pattern, value: "sha256:XYZ")

and the same facts travel in ``InvalidInputError.details["violations"]`` as
``{pointer, keyword, message, value}`` records for ``--format json``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from stella_oci.errors import InvalidInputError

if TYPE_CHECKING:  # jsonschema is imported when a document is validated, not at import
    import jsonschema
    from jsonschema import Draft202012Validator

SCHEMA_NAMES = ("export-manifest", "ledger-airgap-staleness")
VALUE_LIMIT = 80
MAX_REPORTED_VIOLATIONS = 20
"""Violations listed in a report; the rest are counted."""
MAX_COUNTED_VIOLATIONS = 1000
"""Validation stops after this many violations (the report then says "at least")."""


@cache
def _load_schema_text(name: str) -> str:
    if name not in SCHEMA_NAMES:
        raise InvalidInputError(
            f"unknown schema {name!r}; known schemas: {', '.join(SCHEMA_NAMES)}",
        )
    return resources.files("stella_oci").joinpath("data").joinpath(f"{name}.schema.json").read_text("utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``stella_oci/data/<name>.schema.json`` as a dict (a fresh copy each call,
    parsed from a cached text, so callers may not corrupt each other's copy)."""
    schema: dict[str, Any] = json.loads(_load_schema_text(name))
    return schema


@cache
def _validator(name: str, definition: str | None) -> Draft202012Validator:
    """The validator of a shipped schema (or one of its ``$defs``). The schemas are package data:
    that each is a valid Draft 2020-12 schema is asserted by tests/test_export_schema.py
    (``check_schema`` against the metaschema), not again by every process that validates a
    document (it cost more than the validation itself: issue 15, start-up)."""
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    checker = Draft202012Validator.FORMAT_CHECKER
    if definition is None:
        return Draft202012Validator(schema, format_checker=checker)
    defs = schema.get("$defs", {})
    if definition not in defs:
        raise InvalidInputError(
            f"schema {name!r} has no definition {definition!r}; it has: {', '.join(sorted(defs))}",
        )
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    base = schema.get("$id") or f"urn:stella-oci:schema:{name}"
    registry: Registry[Any] = Registry().with_resource(
        base, Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    dialect = schema.get("$schema", "https://json-schema.org/draft/2020-12/schema")
    root = {"$schema": dialect, "$ref": f"{base}#/$defs/{definition}"}
    return Draft202012Validator(root, registry=registry, format_checker=checker)


def json_pointer(parts: Any) -> str:
    """RFC 6901 pointer for a path of keys/indexes; ``/`` for the document root."""
    items = list(parts)
    if not items:
        return "/"
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in items)


def short_value(value: Any, limit: int = VALUE_LIMIT) -> str:
    """A compact JSON rendering of ``value``, cut to about ``limit`` characters."""
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


_SIMPLE_RULES = {
    "pattern": "does not match the pattern {rule}",
    "format": "is not a valid {rule}",
    "minimum": "must be >= {rule}",
    "maximum": "must be <= {rule}",
    "exclusiveMinimum": "must be > {rule}",
    "exclusiveMaximum": "must be < {rule}",
    "minLength": "must be at least {rule} characters long",
    "maxLength": "must be at most {rule} characters long",
    "minItems": "must have at least {rule} items",
    "maxItems": "must have at most {rule} items",
    "uniqueItems": "items must be unique",
}
"""Violations whose sentence only needs the rule's value."""


def _readable(error: jsonschema.ValidationError) -> str:
    """A sentence for one violation, without repeating the (possibly long) value."""
    kw = error.validator
    rule = error.validator_value
    inst = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kw == "required" and isinstance(inst, dict):
        missing = [k for k in rule if k not in inst]
        return "missing required member " + ", ".join(repr(k) for k in missing)
    if kw == "additionalProperties" and isinstance(inst, dict):
        known = set(schema.get("properties", {}))
        extra = sorted(k for k in inst if k not in known)
        allowed = ", ".join(sorted(known)) or "none"
        return f"member(s) not allowed here: {', '.join(repr(k) for k in extra)} (allowed: {allowed})"
    if kw == "format" and rule == "date-time":
        return f"is not a valid {rule} (for date-time use RFC 3339, e.g. 2026-11-20T08:00:00Z)"
    if kw == "type":
        return f"must be of type {rule if isinstance(rule, str) else ' or '.join(rule)}"
    if kw in ("const", "enum"):
        values = [rule] if kw == "const" else rule
        return ("must be exactly " if kw == "const" else "must be one of ") + ", ".join(json.dumps(v) for v in values)
    if kw in _SIMPLE_RULES:
        return _SIMPLE_RULES[kw].format(rule=rule)
    if kw in ("oneOf", "anyOf") and error.context:
        forms = "exactly one" if kw == "oneOf" else "at least one"
        reasons = sorted({_readable(sub) for sub in error.context})
        return f"must match {forms} of the allowed forms ({'; '.join(reasons)})"
    return str(error.message)


def _violation(error: jsonschema.ValidationError) -> dict[str, Any]:
    return {
        "pointer": json_pointer(error.absolute_path),
        "keyword": str(error.validator),
        "message": _readable(error),
        "value": short_value(error.instance),
    }


def _is_datetime(value: str) -> bool:
    """jsonschema's own ``date-time`` check (``jsonschema._format.is_datetime``)."""
    from rfc3339_validator import validate_rfc3339

    return bool(validate_rfc3339(value.upper()))


def _fast_accepts(obj: Any) -> bool:
    """True when the generated check of export.json (``stella_oci/_export_manifest_check.py``,
    written by ``python -m stella_oci.schemas_codegen``) accepts ``obj``: jsonschema would too,
    and its import (the larger part of a push's start-up) is skipped. False on any refusal or
    failure: jsonschema then validates and reports, exactly as without this check."""
    from stella_oci import _export_manifest_check

    check: Callable[..., object] = _export_manifest_check.validate  # generated code: untyped
    try:
        check(obj, custom_formats={"date-time": _is_datetime})
    except Exception:  # noqa: BLE001 - refusal or anything else: the full validation decides
        return False
    return True


def validate_against(
    obj: Any, schema: str, *, definition: str | None = None, source: str = "document"
) -> None:
    """Validate ``obj`` against schema ``schema`` (or its ``#/$defs/<definition>``).

    Raises :class:`InvalidInputError` (exit 2) listing the violations as
    ``<source>: <pointer>: <message> (rule: <keyword>, value: <value>)``: the most relevant
    one first, then the others sorted by pointer, at most :data:`MAX_REPORTED_VIOLATIONS` of
    them plus a count of the rest. Validation stops after :data:`MAX_COUNTED_VIOLATIONS`
    (the count then reads "at least"), so a document with a million violations costs no
    more time or memory than one with a thousand.
    """
    if definition is None and schema == "export-manifest" and _fast_accepts(obj):
        return
    validator = _validator(schema, definition)
    # iter_errors is lazy: stop pulling once the count is capped
    found = list(itertools.islice(validator.iter_errors(obj), MAX_COUNTED_VIOLATIONS + 1))
    if not found:
        return
    capped = len(found) > MAX_COUNTED_VIOLATIONS
    found = found[:MAX_COUNTED_VIOLATIONS]
    from jsonschema.exceptions import best_match

    best = best_match(found)

    def key(e: jsonschema.ValidationError) -> tuple[str, str, str]:
        return (json_pointer(e.absolute_path), str(e.validator), _readable(e))

    unique: dict[tuple[str, str, str], jsonschema.ValidationError] = {}
    for e in found:
        unique.setdefault(key(e), e)
    first_key = min(unique)
    if best is not None:  # best_match may pick a sub-error of an anyOf/oneOf
        first_key = key(best)
        unique.setdefault(first_key, best)
    keys = [first_key, *sorted(k for k in unique if k != first_key)]
    n = len(keys)
    shown = [_violation(unique[k]) for k in keys[:MAX_REPORTED_VIOLATIONS]]
    rest = n - len(shown)
    target = f"{schema}#/$defs/{definition}" if definition else schema
    lines = [
        f"{source}: {v['pointer']}: {v['message']} (rule: {v['keyword']}, value: {v['value']})"
        for v in shown
    ]
    count = f"at least {n} violations" if capped else f"{n} violation{'s' if n != 1 else ''}"
    if rest:
        more = f"at least {rest}" if capped else str(rest)
        lines.append(f"... and {more} more violation{'s' if rest != 1 or capped else ''} not listed")
        count += f", the first {len(shown)} listed"
    header = f"{source} does not validate against the {target} schema ({count}):"
    raise InvalidInputError(
        header + "\n" + "\n".join("  " + line for line in lines),
        hint=f"fix the listed members of {source}; the schema is stella_oci/data/{schema}.schema.json",
        details={
            "source": source,
            "schema": target,
            "violations": shown,
            "violationCount": n,
            "violationCountIsMinimum": capped,
        },
    )
