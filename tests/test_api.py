"""The Python API (issue 12): tags and annotations as a caller writes them, every verb exported,
results typed all the way down, and a library pull() that records an import only when asked."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

import pydantic
import requests

import stella_oci
from stella_oci.airgap.ledger import Ledger
from stella_oci.output_schemas import COMMAND_MODELS
from tests.support.bundles import copy_example

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def tags_of(registry, repo: str) -> list[str]:
    return sorted(requests.get(f"{registry.url}/v2/{repo}/tags/list", timeout=10).json()["tags"])


def manifest_json(registry, repo: str, ref: str) -> dict:
    r = requests.get(
        f"{registry.url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    return json.loads(r.content)


def test_push_tags_string_and_annotations_mapping(registry, fresh_repo, tmp_path) -> None:
    bundle = copy_example("mirror-full", tmp_path / "b")
    result = stella_oci.push(bundle, f"{registry.host}/{fresh_repo}", tags="v1", annotations={"team": "ops"})
    assert result.tags == ["v1"]
    assert tags_of(registry, fresh_repo) == ["v1"]  # not "v" and "1"
    assert manifest_json(registry, fresh_repo, "v1")["annotations"]["team"] == "ops"
    again = stella_oci.push(bundle, f"{registry.host}/{fresh_repo}", tags=["a", "b"], annotations=["k=v"])
    assert again.tags == ["a", "b"]

    note = tmp_path / "note.txt"
    note.write_text("hi")
    attached = stella_oci.attach(
        f"{registry.host}/{fresh_repo}:v1", note, artifact_type="application/vnd.example+json",
        annotations={"com.example.k": "v"},
    )  # fmt: skip
    found = stella_oci.discover(f"{registry.host}/{fresh_repo}:v1", artifact_type="application/vnd.example+json")
    assert [(r.digest, r.annotations) for r in found.referrers] == [(attached.digest, {"com.example.k": "v"})]


def test_every_verb_is_exported() -> None:
    for name in ("push", "pull", "verify", "inspect", "copy", "attach", "discover", "tags", "resolve",
                 "tag", "delete", "manifest", "fetch", "login", "logout"):  # fmt: skip
        assert name in stella_oci.__all__ and callable(getattr(stella_oci, name)), name
    assert sorted(stella_oci.__all__) == sorted([*stella_oci._LAZY, "__version__"])


def _untyped(annotation: object, where: str, seen: set[type]) -> list[str]:
    """Places where ``Any`` (or a bare dict/list/object) is all a result says about a member."""
    if annotation is typing.Any or annotation is object:
        return [where]
    if isinstance(annotation, (typing.ForwardRef, str)):
        return [f"{where} (unresolved {annotation})"]
    if annotation in (dict, list):
        return [f"{where} (bare {annotation.__name__})"]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        bad: list[str] = []
        for name, info in annotation.model_fields.items():
            if info.exclude:
                continue
            bad += _untyped(info.annotation, f"{annotation.__name__}.{name}", seen)
        return bad
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return []
    if origin is not None or isinstance(annotation, types.UnionType):
        return [b for arg in typing.get_args(annotation) for b in _untyped(arg, where, seen)]
    return []


def test_results_are_typed_all_the_way_down() -> None:
    import importlib

    bad: list[str] = []
    seen: set[type] = set()
    for target in COMMAND_MODELS.values():
        module, name = target.split(":")
        bad += _untyped(getattr(importlib.import_module(module), name), name, seen)
    assert bad == []
    names = {m.__name__ for m in seen}  # the walk went down into the nested models
    assert {"StalenessResult", "ProvenanceRecord", "TimeAnchorDoc", "EnvelopeResult", "ReferrerInfo"} <= names


def test_library_pull_records_an_import_only_when_asked(registry, fresh_repo, tmp_path, ledger_path) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    stella_oci.push(copy_example("mirror-full", tmp_path / "b"), ref)

    plain = stella_oci.pull(ref, tmp_path / "one")
    assert plain.provenance is None
    assert not ledger_path.exists()  # $STELLA_OCI_LEDGER: the default ledger, untouched

    mine = tmp_path / "mine.sqlite3"
    asked = stella_oci.pull(ref, tmp_path / "two", airgap=stella_oci.AirgapOptions(ledger=mine))
    assert asked.provenance is not None and asked.provenance.provenanceType == "BUNDLE_PROVENANCE"
    with Ledger(mine) as db:
        assert [r.export_id for r in db.imports()] == ["exp-20261120-mirror-full-0001"]
    assert not ledger_path.exists()

    staleness = stella_oci.verify(
        ref,
        airgap=stella_oci.AirgapOptions(
            staleness_config=EXAMPLES / "airgap" / "staleness-strict.json",
            time_anchor=EXAMPLES / "airgap" / "time-anchor.json",
        ),
    ).staleness
    assert staleness is not None and staleness.passed is True and isinstance(staleness.stalenessSeconds, int)


def test_cli_pull_still_records_in_the_default_ledger(registry, fresh_repo, run_cli, tmp_path, ledger_path) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, _, err = run_cli("push", copy_example("mirror-full", tmp_path / "b"), ref)
    assert code == 0, err
    code, _, err = run_cli("pull", ref, "-o", tmp_path / "got")
    assert code == 0, err
    with Ledger(ledger_path) as db:
        assert len(db.imports()) == 1
