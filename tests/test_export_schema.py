"""Schema validation messages, JSON loading, the canonical digest, and the example bundles."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from stella_oci.errors import InvalidInputError
from stella_oci.export.canonical import (
    digest_to_http,
    http_digest_header,
    manifest_digest,
    rerun_hash,
)
from stella_oci.export.models import validate_export_manifest
from stella_oci.jsonio import canonical_bytes as _canonical_bytes
from stella_oci.jsonio import load_json_file
from stella_oci.schemas import json_pointer, load_schema, validate_against


def canonical_bytes(obj: Any) -> bytes:
    return _canonical_bytes(obj, "export.json")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BUNDLES = ("mirror-full", "trivy-db")


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / name / "export.json").read_text("utf-8"))
    return doc


def violations(obj: Any, **kw: Any) -> tuple[InvalidInputError, list[dict[str, Any]]]:
    with pytest.raises(InvalidInputError) as info:
        if kw:
            validate_against(obj, kw.pop("schema", "export-manifest"), **kw)
        else:
            validate_export_manifest(obj)
    assert info.value.exit_code == 2
    return info.value, info.value.details["violations"]


# ---------------------------------------------------------------- schema loading


def test_load_schema_reads_package_data() -> None:
    s = load_schema("export-manifest")
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "contents" in s["properties"]
    assert "StalenessConfig" in load_schema("ledger-airgap-staleness")["$defs"]
    # a caller mutating its copy does not corrupt the next one
    s["properties"].clear()
    assert "contents" in load_schema("export-manifest")["properties"]


def test_unknown_schema_and_definition_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown schema"):
        load_schema("nope")
    with pytest.raises(InvalidInputError, match="no definition 'Nope'"):
        validate_against({}, "ledger-airgap-staleness", definition="Nope")


@pytest.mark.parametrize("name", BUNDLES)
def test_examples_validate(name: str) -> None:
    doc = example(name)
    assert validate_export_manifest(doc) is None
    del doc["exportId"]
    with pytest.raises(InvalidInputError, match="exportId"):
        validate_export_manifest(doc)


# ---------------------------------------------------------------- violation messages


def test_date_time_format_is_checked() -> None:
    doc = example("trivy-db")
    doc["generatedAt"] = "yesterday"
    err, vs = violations(doc)
    assert vs == [
        {
            "pointer": "/generatedAt",
            "keyword": "format",
            "message": vs[0]["message"],
            "value": '"yesterday"',
        }
    ]
    assert "date-time" in vs[0]["message"]
    assert "export.json: /generatedAt: is not a valid date-time" in str(err)
    assert '(rule: format, value: "yesterday")' in str(err)


def test_date_time_needs_an_offset() -> None:
    doc = example("trivy-db")
    doc["generatedAt"] = "2026-11-20T08:00:00"  # no Z / offset: not RFC 3339
    _, vs = violations(doc)
    assert [(v["pointer"], v["keyword"]) for v in vs] == [("/generatedAt", "format")]


def test_pattern_violation_names_pointer_and_value() -> None:
    doc = example("mirror-full")
    doc["contents"][0]["digest"] = "sha256:XYZ"
    err, vs = violations(doc)
    assert [(v["pointer"], v["keyword"], v["value"]) for v in vs] == [
        ("/contents/0/digest", "pattern", '"sha256:XYZ"')
    ]
    assert (
        "export.json: /contents/0/digest: does not match the pattern ^sha256:[a-f0-9]{64}$ "
        '(rule: pattern, value: "sha256:XYZ")'
    ) in str(err)


def test_additional_properties_names_the_member() -> None:
    doc = example("trivy-db")
    doc["contents"][1]["sha512"] = "abc"
    doc["colour"] = "blue"
    err, vs = violations(doc)
    assert [(v["pointer"], v["keyword"]) for v in vs] == [
        ("/", "additionalProperties"),
        ("/contents/1", "additionalProperties"),
    ]
    assert "'colour'" in vs[0]["message"]
    assert "'sha512'" in vs[1]["message"]
    assert "export.json: /: member(s) not allowed here: 'colour'" in str(err)


def test_required_lists_missing_members() -> None:
    doc = example("trivy-db")
    del doc["tenant"]
    del doc["contents"][0]["bytes"]
    err, vs = violations(doc)
    assert [(v["pointer"], v["keyword"]) for v in vs] == [("/", "required"), ("/contents/0", "required")]
    assert "'tenant'" in vs[0]["message"]
    assert "'bytes'" in vs[1]["message"]
    assert "export.json: /contents/0: missing required member 'bytes' (rule: required" in str(err)


def test_const_violation() -> None:
    doc = example("trivy-db")
    doc["schema"] = "https://stellaops.io/export-center/manifest/v1alpha1"
    err, vs = violations(doc)
    assert [(v["pointer"], v["keyword"]) for v in vs] == [("/schema", "const")]
    assert "export.json: /schema: must be exactly" in str(err)
    assert 'must be exactly "https://stellaops.io/export-center/manifest/v1alpha2"' in vs[0]["message"]


def test_every_violation_is_reported_sorted_and_values_truncated() -> None:
    doc = example("mirror-full")
    doc["profile"]["kind"] = "helm"
    doc["contents"][2]["bytes"] = -5
    doc["version"] = "2.0.0"
    doc["integrity"]["oci"]["annotations"]["io.stellaops.export.manifest-digest"] = "md5:" + "a" * 200
    err, vs = violations(doc, source="bundle/export.json")
    pointers = [v["pointer"] for v in vs]
    # best match first, then the rest sorted by pointer
    assert sorted(pointers[1:]) == pointers[1:]
    assert set(pointers) == {
        "/contents/2/bytes",
        "/integrity/oci/annotations/io.stellaops.export.manifest-digest",
        "/profile/kind",
        "/version",
    }
    long = next(v for v in vs if v["pointer"].startswith("/integrity"))
    assert len(long["value"]) <= 80 and long["value"].endswith("...")
    text = str(err)
    assert text.startswith(
        "bundle/export.json does not validate against the export-manifest schema (4 violations)"
    )
    for p in pointers:
        assert f"bundle/export.json: {p}: " in text


def test_pointer_escapes_slash_and_tilde() -> None:
    assert json_pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    assert json_pointer([]) == "/"
    doc = example("mirror-full")
    doc["integrity"]["oci"]["annotations"]["io.stellaops.export.run"] = 7
    _, vs = violations(doc)
    assert [v["pointer"] for v in vs] == ["/integrity/oci/annotations/io.stellaops.export.run"]
    assert vs[0]["keyword"] == "type" and vs[0]["value"] == "7"


def test_root_type_violation_has_root_pointer() -> None:
    _, vs = violations([1, 2])
    assert vs[0]["pointer"] == "/" and vs[0]["keyword"] == "type"


def test_definition_validation_uses_refs_and_formats() -> None:
    good = {
        "provenanceType": "BUNDLE_PROVENANCE",
        "bundleId": "5f0c8a9e-3b1d-4f6e-9a2b-7c8d9e0f1a2b",
        "importedAt": "2026-11-21T09:00:00Z",
        "sourceTimestamp": "2026-11-20T08:00:00Z",
    }
    validate_against(good, "ledger-airgap-staleness", definition="BundleProvenance")
    bad = dict(good, bundleId="not-a-uuid", importedAt="yesterday")
    _, vs = violations(bad, schema="ledger-airgap-staleness", definition="BundleProvenance", source="prov")
    assert {(v["pointer"], v["keyword"]) for v in vs} == {("/bundleId", "format"), ("/importedAt", "format")}
    _, vs = violations(
        {"predicateType": "not a uri"}, schema="ledger-airgap-staleness", definition="BundleAttestation"
    )
    assert [(v["pointer"], v["keyword"]) for v in vs] == [("/predicateType", "format")]
    # a $ref inside the definition resolves within the same schema
    cfg = {
        "configType": "STALENESS_CONFIG",
        "freshnessThresholdSeconds": 10,
        "notificationThresholds": [{"percentOfThreshold": 500, "severity": "info"}],
    }
    _, vs = violations(cfg, schema="ledger-airgap-staleness", definition="StalenessConfig")
    assert [(v["pointer"], v["keyword"]) for v in vs] == [
        ("/notificationThresholds/0/percentOfThreshold", "maximum")
    ]


def test_whole_ledger_schema_oneof() -> None:
    validate_against(
        {"configType": "STALENESS_CONFIG", "freshnessThresholdSeconds": 604800}, "ledger-airgap-staleness"
    )
    _, vs = violations({"configType": "X"}, schema="ledger-airgap-staleness")
    # best match first (the deepest, most specific failure), then the oneOf summary
    assert [(v["pointer"], v["keyword"]) for v in vs] == [("/configType", "const"), ("/", "oneOf")]


# ---------------------------------------------------------------- load_json_file


def test_load_json_file_parse_error_names_file_line_column(tmp_path: Path) -> None:
    p = tmp_path / "export.json"
    p.write_text('{\n  "a": 1,\n  "b": ,\n}\n')
    with pytest.raises(InvalidInputError) as info:
        load_json_file(p, "export manifest")
    msg = str(info.value)
    assert str(p) in msg and "line 3, column 8" in msg
    assert info.value.exit_code == 2
    assert info.value.details["line"] == 3


def test_load_json_file_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"export manifest .*nope\.json: no such file"):
        load_json_file(tmp_path / "nope.json", "export manifest")
    with pytest.raises(InvalidInputError, match="is a directory"):
        load_json_file(tmp_path, "export manifest")


def test_load_json_file_refuses_duplicates_nan_and_bad_utf8(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"a": 1, "a": 2}')
    with pytest.raises(InvalidInputError, match="duplicate member 'a'"):
        load_json_file(p, "doc")
    p.write_text('{"a": NaN}')
    with pytest.raises(InvalidInputError, match="NaN"):
        load_json_file(p, "doc")
    p.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        load_json_file(p, "doc")
    p.write_text('{"a": [1, "\u00e9"]}')
    assert load_json_file(p, "doc") == {"a": [1, "\u00e9"]}


# ---------------------------------------------------------------- canonical digest


def test_jcs_rfc8785_example_numbers_and_strings() -> None:
    # RFC 8785 section 3.2.2 sample input and output, byte for byte
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_bytes(json.loads(text)) == expected


def test_jcs_sorts_keys_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33
    obj = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(json.loads(canonical_bytes(obj)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, b"0"),
        (-0.0, b"0"),
        (1e21, b"1e+21"),
        (1e-7, b"1e-7"),
        (100.0, b"100"),
        (0.1, b"0.1"),
        (-1.5, b"-1.5"),
    ],
)
def test_jcs_number_serialization(value: float, text: bytes) -> None:
    assert canonical_bytes(value) == text


def test_canonicalization_errors_are_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="RFC 8785") as info:
        manifest_digest({"n": 2**60})
    assert info.value.exit_code == 2
    with pytest.raises(InvalidInputError):
        manifest_digest({"n": float("inf")})


@pytest.mark.parametrize("name", BUNDLES)
def test_manifest_digest_matches_an_independent_computation(name: str) -> None:
    doc = example(name)
    body = {k: v for k, v in doc.items() if k != "integrity"}
    # the examples hold only strings without control characters, non-negative ints and ASCII
    # keys, for which JCS equals compact sorted-key JSON
    independent = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert manifest_digest(doc) == "sha256:" + hashlib.sha256(independent).hexdigest()


def test_manifest_digest_ignores_integrity_order_and_whitespace_but_nothing_else() -> None:
    doc = example("mirror-full")
    before = copy.deepcopy(doc)
    d = manifest_digest(doc)
    assert doc == before, "manifest_digest must not mutate its input"
    assert d == doc["integrity"]["oci"]["annotations"]["io.stellaops.export.manifest-digest"]
    assert d == "sha256:651c0af8ea6dbbe362317a04263f874266924950aa7dae9b11be9805feff13c2"

    reordered = json.loads(json.dumps(doc, sort_keys=False), object_pairs_hook=lambda p: dict(reversed(p)))
    assert list(reordered) != list(doc)
    assert manifest_digest(reordered) == d
    no_integrity = {k: v for k, v in doc.items() if k != "integrity"}
    assert manifest_digest(no_integrity) == d
    other_integrity = copy.deepcopy(doc)
    other_integrity["integrity"]["httpHeaders"]["X-Stella-Signature"] = "dsse-b64=AAAA"
    assert manifest_digest(other_integrity) == d

    for mutate in (
        lambda x: x.__setitem__("tenant", "acme2"),
        lambda x: x["contents"][0].__setitem__("bytes", 613),
        lambda x: x["distribution"]["oci"].__setitem__("enabled", False),
        lambda x: x["selectors"]["tenants"].append("beta"),
    ):
        changed = copy.deepcopy(doc)
        mutate(changed)
        assert manifest_digest(changed) != d


def test_http_digest_header_is_base64_of_the_manifest_digest() -> None:
    doc = example("mirror-full")
    hexd = manifest_digest(doc).removeprefix("sha256:")
    expected = "sha-256=" + base64.b64encode(bytes.fromhex(hexd)).decode()
    assert http_digest_header(doc) == expected == doc["integrity"]["httpHeaders"]["Digest"]
    assert http_digest_header(doc) == "sha-256=ZRwK+Optu+NiMXoEJj+HQmaSSVCqfa6bEb6YBf7/E8I="
    with pytest.raises(InvalidInputError):
        digest_to_http("sha256:xyz")


def test_rerun_hash() -> None:
    a = "sha256:" + "a" * 64
    b = "sha256:" + "b" * 64
    expected = "sha256:" + hashlib.sha256(f"{a}\n{b}".encode()).hexdigest()
    assert rerun_hash([b, a]) == rerun_hash([a, b]) == expected
    for name in BUNDLES:
        doc = example(name)
        assert rerun_hash(c["digest"] for c in doc["contents"]) == doc["rerunHash"]


def test_rfc8785_library_agrees_with_canonical_bytes() -> None:
    doc = example("trivy-db")
    assert canonical_bytes(doc) == rfc8785.dumps(doc)


# ---------------------------------------------------------------- example bundles


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_make_examples_reproduces_the_checked_in_bundles(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for _ in range(2):  # twice into the same place: idempotent
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / "make_examples.py"), "--output", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    for name in BUNDLES:
        generated = _tree(out / name)
        checked_in = _tree(EXAMPLES / name)
        assert sorted(generated) == sorted(checked_in), name
        for rel in generated:
            assert generated[rel] == checked_in[rel], (
                f"examples/{name}/{rel} differs from make_examples.py output"
            )


@pytest.mark.parametrize("name", BUNDLES)
def test_example_files_match_their_manifest(name: str) -> None:
    root = EXAMPLES / name
    doc = example(name)
    listed = {c["path"] for c in doc["contents"]}
    for entry in doc["contents"]:
        data = (root / entry["path"]).read_bytes()
        assert entry["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    on_disk = set(_tree(root)) - {"export.json", "provenance.json"}
    on_disk = {p for p in on_disk if not p.endswith(".dsse.json") and not p.startswith("signatures/")}
    assert on_disk == listed
    assert sum(len(b) for b in _tree(root).values()) < 16 * 1024


def test_mirror_full_provenance_names_export_json_and_every_file() -> None:
    root = EXAMPLES / "mirror-full"
    stmt = json.loads((root / "provenance.json").read_text())
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
    assert subjects["export.json"] == hashlib.sha256((root / "export.json").read_bytes()).hexdigest()
    for entry in example("mirror-full")["contents"]:
        assert "sha256:" + subjects[entry["path"]] == entry["digest"]


def test_shipped_schemas_are_valid_draft_2020_12() -> None:
    """The metaschema check of the shipped schemas lives here, not in every process that
    validates a document (stella_oci.schemas._validator no longer runs check_schema: issue 15,
    start-up). A schema that is not valid Draft 2020-12 fails this test, naming the file."""
    import jsonschema

    from stella_oci.schemas import SCHEMA_NAMES

    data = ROOT / "stella_oci" / "data"
    shipped = sorted(data.glob("*.schema.json"))
    assert {f"{n}.schema.json" for n in SCHEMA_NAMES} <= {p.name for p in shipped}
    for path in shipped:
        schema = json.loads(path.read_text("utf-8"))
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            pytest.fail(f"{path.name}: not a valid Draft 2020-12 schema: {exc.message} at {exc.json_path}")


# ------------------------------------------------------------------ the generated fast check
def test_generated_export_manifest_check_is_current() -> None:
    """stella_oci/_export_manifest_check.py is what ``python -m stella_oci.schemas_codegen``
    writes from the shipped schema (a schema change without regenerating fails here)."""
    from stella_oci import schemas_codegen

    assert schemas_codegen.TARGET.read_text("utf-8") == schemas_codegen.render(), (
        "stale: run python -m stella_oci.schemas_codegen"
    )
    assert schemas_codegen.schema_problems(load_schema("export-manifest")) == []
    # the problem finder finds what the generated code would not enforce
    assert schemas_codegen.schema_problems(
        {"properties": {"a": {"$ref": "#/$defs/x", "maxLength": 2}, "b": {"enum": [1]}, "c": {"format": "uri"}},
         "unevaluatedProperties": False}
    ) == [
        "/properties/a: $ref with siblings ['maxLength']",
        "/properties/a/maxLength: keyword 'maxLength'",
        "/properties/b/enum: non-string values (True == 1 in Python)",
        "/properties/c/format: format 'uri'",
        "/unevaluatedProperties: keyword 'unevaluatedProperties'",
    ]  # fmt: skip


def _rich_manifest() -> dict[str, Any]:
    """The mirror example with every optional member of the schema set."""
    doc = example("mirror-full")
    doc["runId"] = "run-000001"
    doc["profile"]["revision"] = "r2"
    doc["rerunHash"] = "sha256:" + "1" * 64
    doc["selectors"] = {
        "tenants": ["acme", "*.corp"],
        "products": ["pkg:npm/left-pad"],
        "timeWindow": "30d",
        "severities": ["high", "critical"],
        "ecosystems": ["npm", "pypi"],
    }
    doc["delta"] = {"baseExportId": "exp-000000", "baseManifestDigest": "sha256:" + "2" * 64,
                    "tombstones": ["a/b"], "added": ["c"], "removed": ["d"]}  # fmt: skip
    doc["distribution"]["object"] = {"enabled": False, "bucket": "b", "prefix": "p/"}
    doc["encryption"] = {"mode": "age", "recipients": [{"keyId": "k", "fingerprint": "f", "wrappedKey": "w"}],
                         "strict": True}  # fmt: skip
    doc["approval"] = {"required": True, "reason": "r", "approvedBy": "me", "ticket": "T-1"}
    doc["quotas"] = {"maxActiveRuns": 2, "maxQueuedRuns": 10, "backpressureMode": "defer", "cpuThrottlePercent": 50}
    return doc


_MUTANTS: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 2.5, 4000, "", "x", "acme", "abc-123456", "r1", "30d",
    "2026-11-20T08:00:00Z", "2026-13-45T25:61:00Z", "2026-11-20t08:00:00z", "2026-11-20T08:00:00+0100",
    "2026-02-30T08:00:00Z", "2026-11-20T08:00:00Z\n", "sha256:" + "a" * 64, "sha256:" + "a" * 64 + "\n",
    "https://stellaops.io/export-center/manifest/v1alpha2", "mirror", "full", "npm", [], ["x", "x"], ["npm", "npm"],
    {}, {"x": 1},
]  # fmt: skip


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutations(doc: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for path in _paths(doc):
        if not path:
            found += [m for m in _MUTANTS if not isinstance(m, dict)]
            continue
        for value in [*_MUTANTS, "DELETE", "EXTRA", "DUPLICATE"]:
            mutant = copy.deepcopy(doc)
            parent = mutant
            for part in path[:-1]:
                parent = parent[part]
            last = path[-1]
            if value == "DELETE":
                del parent[last]
            elif value == "EXTRA":
                if not isinstance(parent[last], dict):
                    continue
                parent[last]["zzUnknown"] = 1
            elif value == "DUPLICATE":
                if not isinstance(parent[last], list) or not parent[last]:
                    continue
                parent[last].append(copy.deepcopy(parent[last][0]))
            else:
                parent[last] = copy.deepcopy(value)
            found.append(mutant)
    return found


def test_generated_check_accepts_only_what_jsonschema_accepts() -> None:
    """The fast check may refuse more than jsonschema (validate_against then asks jsonschema),
    never less: on every mutation of three documents (every value replaced by each of
    _MUTANTS, every member deleted, an unknown member added to every object, every array's
    first item duplicated) it accepts only documents jsonschema finds no violation in."""
    from stella_oci.schemas import _fast_accepts, _validator

    full = _validator("export-manifest", None)
    docs = [example("mirror-full"), example("trivy-db"), _rich_manifest()]
    for doc in docs:
        assert not list(full.iter_errors(doc)) and _fast_accepts(doc)
    accepted = refused = 0
    for doc in docs:
        for mutant in _mutations(doc):
            fast = _fast_accepts(mutant)
            valid = next(iter(full.iter_errors(mutant)), None) is None
            assert valid or not fast, f"the fast check accepts what jsonschema refuses: {json.dumps(mutant)[:3000]}"
            accepted += fast
            refused += not valid
    assert accepted > 300 and refused > 2000, (accepted, refused)  # both sides really exercised


def test_a_refused_document_is_reported_by_jsonschema_as_before() -> None:
    """With the fast check in front, a refusal still lists jsonschema's violations (pointer,
    rule, value), all of them, not the fast check's first one."""
    doc = example("mirror-full")
    doc["generatedAt"] = "2026-13-45T25:61:00Z"
    doc["contents"][0]["digest"] = "sha256:XYZ"
    with pytest.raises(InvalidInputError) as info:
        validate_export_manifest(doc, source="b/export.json")
    vs = info.value.details["violations"]
    assert {(v["pointer"], v["keyword"]) for v in vs} == {("/generatedAt", "format"), ("/contents/0/digest", "pattern")}
    assert "b/export.json: /generatedAt: is not a valid date-time" in str(info.value)
