"""io.stellaops.* annotations: computing them for a push, checking them on pull / verify."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.annotations import (
    ANN_CREATED,
    ANN_ID,
    ANN_MANIFEST_DIGEST,
    ANN_PROFILE,
    ANN_PROVENANCE_REF,
    ANN_RUN,
    ANN_TENANT,
    ARTIFACT_TYPE,
    DSSE_MEDIA_TYPE,
    EXPORT_MANIFEST_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
    RESERVED_PREFIX,
    check_annotations,
    compute_annotations,
    parse_user_annotations,
)
from stella_oci.export.canonical import manifest_digest
from stella_oci.export.models import ExportManifest
from stella_oci.oci.digest import file_digest

model_of = ExportManifest.from_json_obj

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MIRROR_PROV_DIGEST = file_digest(EXAMPLES / "mirror-full" / "provenance.json")[0]
TRIVY_REF = (
    "localhost:5000/stellaops/attestations/trivy-db@"
    "sha256:48bf69fb0e855b749337ffebbb859bf0b5774350be3a671f2cbcf5e6296a6aa3"
)


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / name / "export.json").read_text("utf-8"))
    return doc


def bare_trivy() -> dict[str, Any]:
    """trivy-db without attestations: no provenance reference of its own."""
    doc = example("trivy-db")
    del doc["attestations"]
    return doc


def test_constants() -> None:
    assert ARTIFACT_TYPE == "application/vnd.stellaops.export.v1+json"
    assert EXPORT_MANIFEST_MEDIA_TYPE == "application/vnd.stellaops.export.manifest.v1+json"
    assert IN_TOTO_MEDIA_TYPE == "application/vnd.in-toto+json"
    assert DSSE_MEDIA_TYPE == "application/vnd.dsse.envelope.v1+json"
    assert RESERVED_PREFIX == "io.stellaops."
    for key in (ANN_PROFILE, ANN_RUN, ANN_MANIFEST_DIGEST, ANN_PROVENANCE_REF, ANN_ID, ANN_TENANT):
        assert key.startswith("io.stellaops.export.")


# ---------------------------------------------------------------- compute_annotations


def test_mirror_full_annotations_exactly() -> None:
    anns = compute_annotations(
        model_of(example("mirror-full")), provenance_digest=MIRROR_PROV_DIGEST, provenance_ref=None, user={}
    )
    assert anns == {
        "io.stellaops.export.id": "exp-20261120-mirror-full-0001",
        "io.stellaops.export.manifest-digest": (
            "sha256:651c0af8ea6dbbe362317a04263f874266924950aa7dae9b11be9805feff13c2"
        ),
        "io.stellaops.export.profile": "mirror:full",
        "io.stellaops.export.provenance-ref": "provenance.json",
        "io.stellaops.export.run": "run-20261120-0800-7f3a9c",
        "io.stellaops.export.tenant": "acme",
        "org.opencontainers.image.created": "2026-11-20T08:00:00Z",
        # not io.stellaops.*: copied from integrity.oci.annotations unchanged
        "org.opencontainers.image.ref.name": "exp-20261120-mirror-full-0001",
    }
    assert list(anns) == sorted(anns)


def test_trivy_db_run_falls_back_to_export_id() -> None:
    anns = compute_annotations(model_of(example("trivy-db")), provenance_digest=None, provenance_ref=None, user={})
    assert anns[ANN_RUN] == anns[ANN_ID] == "exp-20261120-trivy-db-0001"
    assert anns[ANN_PROFILE] == "trivy:db"
    assert anns[ANN_CREATED] == "2026-11-20T08:00:00Z"


def test_provenance_ref_from_integrity_wins_over_everything() -> None:
    doc = example("mirror-full")
    doc_with_att = copy.deepcopy(doc)
    doc_with_att["attestations"] = example("trivy-db")["attestations"]
    # attestations changes the manifest digest: recompute integrity's value for this doc

    doc_with_att["integrity"]["oci"]["annotations"][ANN_MANIFEST_DIGEST] = manifest_digest(doc_with_att)
    anns = compute_annotations(
        model_of(doc_with_att), provenance_digest=MIRROR_PROV_DIGEST, provenance_ref="cli-ref", user={}
    )
    assert anns[ANN_PROVENANCE_REF] == "provenance.json"


def test_provenance_ref_from_attestations_second() -> None:
    anns = compute_annotations(
        model_of(example("trivy-db")), provenance_digest="sha256:" + "c" * 64, provenance_ref="cli-ref", user={}
    )
    assert anns[ANN_PROVENANCE_REF] == TRIVY_REF


def test_provenance_ref_from_provenance_json_third() -> None:
    anns = compute_annotations(
        model_of(bare_trivy()), provenance_digest="sha256:" + "c" * 64, provenance_ref="cli", user={}
    )
    assert anns[ANN_PROVENANCE_REF] == "sha256:" + "c" * 64
    # a bare hex digest is normalized
    anns = compute_annotations(model_of(bare_trivy()), provenance_digest="d" * 64, provenance_ref=None, user={})
    assert anns[ANN_PROVENANCE_REF] == "sha256:" + "d" * 64


def test_provenance_ref_from_option_last() -> None:
    anns = compute_annotations(
        model_of(bare_trivy()),
        provenance_digest=None,
        provenance_ref="registry.example/att@sha256:" + "e" * 64,
        user={},
    )
    assert anns[ANN_PROVENANCE_REF] == "registry.example/att@sha256:" + "e" * 64


def test_no_provenance_ref_is_exit_2_with_a_fix() -> None:
    with pytest.raises(InvalidInputError) as info:
        compute_annotations(model_of(bare_trivy()), provenance_digest=None, provenance_ref=None, user={})
    assert info.value.exit_code == 2
    assert ANN_PROVENANCE_REF in str(info.value)
    assert "--provenance-ref" in str(info.value) and "provenance.json" in str(info.value)


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        (ANN_PROFILE, "mirror:delta"),
        (ANN_RUN, "run-other-000000"),
        (ANN_MANIFEST_DIGEST, "sha256:" + "0" * 64),
        (ANN_ID, "exp-other-000000"),
        (ANN_TENANT, "globex"),
    ],
)
def test_integrity_value_mismatch_is_exit_2(key: str, bad: str) -> None:
    doc = example("mirror-full")
    good = doc["integrity"]["oci"]["annotations"][key]
    doc["integrity"]["oci"]["annotations"][key] = bad
    with pytest.raises(InvalidInputError) as info:
        compute_annotations(model_of(doc), provenance_digest=MIRROR_PROV_DIGEST, provenance_ref=None, user={})
    assert info.value.exit_code == 2
    msg = str(info.value)
    assert key in msg and bad in msg and good in msg
    assert info.value.details == {"annotation": key, "expected": good, "found": bad}


def test_edited_export_json_no_longer_matches_its_integrity_block() -> None:
    doc = example("mirror-full")
    doc["contents"][0]["bytes"] += 1
    with pytest.raises(InvalidInputError, match="manifest-digest") as info:
        compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=None, user={})
    assert info.value.exit_code == 2


def test_integrity_created_mismatch_and_unknown_reserved_key() -> None:
    doc = example("mirror-full")
    doc["integrity"]["oci"]["annotations"][ANN_CREATED] = "2020-01-01T00:00:00Z"
    with pytest.raises(InvalidInputError, match=ANN_CREATED):
        compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=None, user={})
    doc = example("mirror-full")
    doc["integrity"]["oci"]["annotations"]["io.stellaops.export.colour"] = "blue"
    with pytest.raises(InvalidInputError, match=r"io\.stellaops\.export\.colour"):
        compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=None, user={})


def test_user_annotations_merge_sorted_and_cannot_override() -> None:
    user = parse_user_annotations(
        ["org.opencontainers.image.source=https://git.example/acme", "a.b=1=2", "z="]
    )
    assert user == {"a.b": "1=2", "org.opencontainers.image.source": "https://git.example/acme", "z": ""}
    anns = compute_annotations(model_of(example("trivy-db")), provenance_digest=None, provenance_ref=None, user=user)
    assert anns["a.b"] == "1=2" and anns["z"] == ""
    assert list(anns) == sorted(anns)
    with pytest.raises(InvalidInputError) as info:
        compute_annotations(
            model_of(example("trivy-db")), provenance_digest=None, provenance_ref=None, user={ANN_TENANT: "x"}
        )
    assert info.value.exit_code == 2
    with pytest.raises(InvalidInputError, match=ANN_CREATED):
        compute_annotations(
            model_of(example("trivy-db")), provenance_digest=None, provenance_ref=None, user={ANN_CREATED: "now"}
        )
    # the same value as computed is harmless
    same = compute_annotations(
        model_of(example("trivy-db")),
        provenance_digest=None,
        provenance_ref=None,
        user={ANN_CREATED: "2026-11-20T08:00:00Z"},
    )
    assert same[ANN_CREATED] == "2026-11-20T08:00:00Z"


@pytest.mark.parametrize(
    ("item", "rule"),
    [
        ("io.stellaops.export.tenant=x", "reserved"),
        ("io.stellaops.anything=x", "reserved"),
        ("novalue", "KEY=VALUE"),
        ("=value", "KEY=VALUE"),
        ("has space=1", "must start with a letter or digit"),
    ],
)
def test_parse_user_annotations_refusals(item: str, rule: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_user_annotations([item])
    assert info.value.exit_code == 2
    assert item in str(info.value) and rule in str(info.value)


def test_parse_user_annotations_conflicting_duplicates() -> None:
    assert parse_user_annotations(["a=1", "a=1"]) == {"a": "1"}
    with pytest.raises(InvalidInputError, match="different values"):
        parse_user_annotations(["a=1", "a=2"])


# ---------------------------------------------------------------- check_annotations


@pytest.mark.parametrize("name", ["mirror-full", "trivy-db"])
def test_check_accepts_what_compute_produced(name: str) -> None:
    doc = example(name)
    prov = MIRROR_PROV_DIGEST if name == "mirror-full" else None
    anns = compute_annotations(model_of(doc), provenance_digest=prov, provenance_ref=None, user={"x.y": "1"})
    assert anns[ANN_ID] == doc["exportId"] and anns["x.y"] == "1"
    assert check_annotations(anns, model_of(doc), provenance_digest=prov) is None
    with pytest.raises(VerificationError):
        check_annotations({**anns, ANN_ID: anns[ANN_ID] + "x"}, model_of(doc), provenance_digest=prov)


def _mirror_annotations() -> tuple[dict[str, Any], dict[str, str]]:
    doc = example("mirror-full")
    anns = compute_annotations(model_of(doc), provenance_digest=MIRROR_PROV_DIGEST, provenance_ref=None, user={})
    return doc, anns


@pytest.mark.parametrize(
    "key",
    [
        ANN_PROFILE,
        ANN_RUN,
        ANN_MANIFEST_DIGEST,
        ANN_PROVENANCE_REF,
        ANN_ID,
        ANN_TENANT,
        ANN_CREATED,
        "org.opencontainers.image.ref.name",
    ],
)
def test_check_catches_each_altered_annotation(key: str) -> None:
    doc, anns = _mirror_annotations()
    altered = dict(anns)
    altered[key] = anns[key] + "x"
    with pytest.raises(VerificationError) as info:
        check_annotations(altered, model_of(doc), provenance_digest=MIRROR_PROV_DIGEST)
    assert info.value.exit_code == 3
    msg = str(info.value)
    assert key in msg and repr(anns[key]) in msg and repr(anns[key] + "x") in msg
    assert info.value.details["annotations"] == [
        {"annotation": key, "expected": anns[key], "found": anns[key] + "x"}
    ]


@pytest.mark.parametrize(
    "key", [ANN_PROFILE, ANN_RUN, ANN_MANIFEST_DIGEST, ANN_PROVENANCE_REF, ANN_ID, ANN_TENANT]
)
def test_check_catches_each_missing_annotation(key: str) -> None:
    doc, anns = _mirror_annotations()
    del anns[key]
    with pytest.raises(VerificationError, match=f"{key}: missing") as info:
        check_annotations(anns, model_of(doc), provenance_digest=MIRROR_PROV_DIGEST)
    assert info.value.exit_code == 3


def test_check_catches_an_altered_export_json() -> None:
    doc, anns = _mirror_annotations()
    doc["selectors"]["tenants"] = ["acme", "globex"]
    with pytest.raises(VerificationError, match=ANN_MANIFEST_DIGEST) as info:
        check_annotations(anns, model_of(doc), provenance_digest=MIRROR_PROV_DIGEST)
    assert info.value.exit_code == 3
    problems = {p["annotation"] for p in info.value.details["annotations"]}
    # the annotation differs from the recomputed digest, and so does export.json's own integrity value
    assert problems == {ANN_MANIFEST_DIGEST, f"export.json integrity.oci.annotations[{ANN_MANIFEST_DIGEST}]"}


def test_check_refuses_unknown_reserved_annotation() -> None:
    doc, anns = _mirror_annotations()
    anns["io.stellaops.export.extra"] = "1"
    with pytest.raises(VerificationError, match=r"io\.stellaops\.export\.extra"):
        check_annotations(anns, model_of(doc), provenance_digest=MIRROR_PROV_DIGEST)


def test_check_provenance_ref_without_a_reference_in_export_json() -> None:
    doc = bare_trivy()
    for ref in ("sha256:" + "c" * 64, "anything-given-by---provenance-ref"):
        anns = compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=ref, user={})
        check_annotations(anns, model_of(doc), provenance_digest="sha256:" + "c" * 64)
    anns[ANN_PROVENANCE_REF] = ""
    with pytest.raises(VerificationError) as info:
        check_annotations(anns, model_of(doc), provenance_digest=None)
    assert f"  {ANN_PROVENANCE_REF}: expected 'a non-empty value', found ''" in info.value.message


def test_check_provenance_ref_from_attestations_must_match() -> None:
    doc = example("trivy-db")
    anns = compute_annotations(model_of(doc), provenance_digest=None, provenance_ref=None, user={})
    anns[ANN_PROVENANCE_REF] = "sha256:" + "c" * 64
    with pytest.raises(VerificationError) as info:
        check_annotations(anns, model_of(doc), provenance_digest="sha256:" + "c" * 64)
    assert TRIVY_REF in str(info.value)


def test_check_message_lists_every_problem_one_per_line() -> None:
    """The message is the report a person reads: a count, then one line per problem."""
    doc, anns = _mirror_annotations()
    one = dict(anns)
    one[ANN_TENANT] = "globex"
    with pytest.raises(VerificationError) as info:
        check_annotations(one, model_of(doc), provenance_digest=MIRROR_PROV_DIGEST)
    assert info.value.message == (
        "manifest annotations do not match export.json (1 problem):\n"
        f"  {ANN_TENANT}: expected 'acme', found 'globex'"
    )
    three = dict(anns)
    del three[ANN_ID]
    three[ANN_TENANT] = "globex"
    three["io.stellaops.export.extra"] = "1"
    with pytest.raises(VerificationError) as info:
        check_annotations(three, model_of(doc), provenance_digest=MIRROR_PROV_DIGEST)
    assert info.value.message.splitlines() == [
        "manifest annotations do not match export.json (3 problems):",
        f"  {ANN_ID}: missing (expected {anns[ANN_ID]!r})",
        f"  {ANN_TENANT}: expected 'acme', found 'globex'",
        "  io.stellaops.export.extra: unknown annotation under the reserved prefix (found '1')",
    ]
