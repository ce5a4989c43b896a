"""The StellaOps artifact checks (export/artifact.py) on manifests built in memory: one forged
manifest per rule, each refused with exit 3 and a message naming the layer. These run without
a registry in about a second, so ``scripts/mutation.sh`` uses them for export/artifact.py; the
same forgeries against a real registry are in tests/test_hostile_artifacts.py."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from stella_oci.errors import InvalidInputError, VerificationError
from stella_oci.export.annotations import (
    ARTIFACT_TYPE,
    DSSE_MEDIA_TYPE,
    EXPORT_MANIFEST_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
)
from stella_oci.export.artifact import (
    EMPTY_CONFIG,
    MAX_EXPORT_JSON_BYTES,
    BuiltArtifact,
    build_manifest,
    check_layers_against_export,
    check_manifest_shape,
    layer_descriptor,
    provenance_layer,
)
from stella_oci.export.bundle import Bundle, scan_directory
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import Descriptor, Manifest, encode

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WHERE = "reg/x@sha256:abc"
OTHER = "sha256:" + "7" * 64


@pytest.fixture(scope="module")
def mirror() -> tuple[Bundle, BuiltArtifact]:
    bundle = scan_directory(EXAMPLES / "mirror-full")
    return bundle, build_manifest(bundle, user_annotations={}, provenance_ref=None)


def with_layers(manifest: Manifest, layers: list[Descriptor]) -> Manifest:
    return manifest.model_copy(update={"layers": layers})


def retitled(desc: Descriptor, title: str) -> Descriptor:
    return desc.model_copy(update={"annotations": {**(desc.annotations or {}), mt.ANNOTATION_TITLE: title}})


def refused(manifest: Manifest, bundle: Bundle) -> str:
    with pytest.raises(VerificationError) as info:
        check_layers_against_export(manifest, bundle.manifest, WHERE)
    assert info.value.exit_code == 3
    return info.value.message


# ----------------------------------------------------------------------------- building


def test_build_manifest_layout(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    m = art.manifest
    assert (m.schema_version, m.media_type, m.artifact_type) == (2, mt.OCI_MANIFEST, ARTIFACT_TYPE)
    assert m.config == EMPTY_CONFIG
    assert EMPTY_CONFIG.data == base64.b64encode(b"{}").decode()
    assert (EMPTY_CONFIG.media_type, EMPTY_CONFIG.digest, EMPTY_CONFIG.size) == (
        mt.OCI_EMPTY,
        mt.EMPTY_DIGEST,
        2,
    )
    titles = [d.title for d in m.layers]
    assert titles[0] == "export.json" and m.layers[0].media_type == EXPORT_MANIFEST_MEDIA_TYPE
    assert titles[1 : 1 + len(bundle.manifest.contents)] == sorted(c.path for c in bundle.manifest.contents)
    assert titles[-3:] == ["provenance.json", "export.json.dsse.json", "provenance.dsse.json"]
    assert [d.media_type for d in m.layers[-3:]] == [IN_TOTO_MEDIA_TYPE, DSSE_MEDIA_TYPE, DSSE_MEDIA_TYPE]
    assert art.annotations == m.annotations and list(art.annotations) == sorted(art.annotations)
    data, desc = encode(m)
    assert (art.data, art.descriptor) == (data, desc)
    again = build_manifest(bundle, user_annotations={}, provenance_ref=None)
    assert again.data == art.data  # deterministic


def test_layer_descriptor_and_provenance_layer(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    d = layer_descriptor("a/b.json", "application/json", OTHER, 5)
    assert (d.media_type, d.digest, d.size, d.annotations) == (
        "application/json",
        OTHER,
        5,
        {mt.ANNOTATION_TITLE: "a/b.json"},
    )
    _, art = mirror
    prov = provenance_layer(art.manifest)
    assert prov is not None and prov.title == "provenance.json" and prov.media_type == IN_TOTO_MEDIA_TYPE
    not_in_toto = [retitled(x, "provenance.json") if x.title == "x" else x for x in art.manifest.layers]
    assert provenance_layer(with_layers(art.manifest, [*not_in_toto[:1]])) is None
    wrong_type = [
        x.model_copy(update={"media_type": "application/json"}) if x.title == "provenance.json" else x
        for x in art.manifest.layers
    ]
    assert provenance_layer(with_layers(art.manifest, wrong_type)) is None


def test_user_annotations_reach_the_manifest(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, _ = mirror
    art = build_manifest(bundle, user_annotations={"org.example.team": "ops"}, provenance_ref=None)
    assert art.manifest.annotations is not None and art.manifest.annotations["org.example.team"] == "ops"


def test_manifest_over_4_mib_is_refused_before_sending(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, _ = mirror
    with pytest.raises(InvalidInputError, match="more than the 4194304 bytes"):
        build_manifest(bundle, user_annotations={"org.example.big": "x" * mt.MAX_MANIFEST_BYTES}, provenance_ref=None)
    # just under the limit is fine
    art = build_manifest(bundle, user_annotations={"org.example.big": "x" * 1000}, provenance_ref=None)
    assert len(art.data) <= mt.MAX_MANIFEST_BYTES


# ----------------------------------------------------------------------------- shape (CONTRACT 5.2)


@pytest.mark.parametrize(
    ("update", "needle"),
    [
        ({"schema_version": 1}, "schemaVersion is 1, expected 2"),
        ({"media_type": mt.DOCKER_MANIFEST_V2}, "mediaType is"),
        ({"artifact_type": "application/vnd.example+json"}, "artifactType is 'application/vnd.example+json'"),
        ({"artifact_type": None}, "artifactType is None"),
        ({"config": EMPTY_CONFIG.model_copy(update={"digest": OTHER})}, "config is"),
        ({"config": EMPTY_CONFIG.model_copy(update={"media_type": "application/json"})}, "config is"),
        ({"config": EMPTY_CONFIG.model_copy(update={"size": 3})}, "config is"),
        ({"config": EMPTY_CONFIG.model_copy(update={"data": base64.b64encode(b"{ }").decode()})}, "config data"),
        ({"layers": []}, "no layers"),
    ],
)
def test_shape_refused(mirror: tuple[Bundle, BuiltArtifact], update: dict[str, Any], needle: str) -> None:
    _, art = mirror
    forged = art.manifest.model_copy(update=update)
    with pytest.raises(VerificationError) as info:
        check_manifest_shape(forged, WHERE)
    assert needle in info.value.message and info.value.message.startswith(WHERE)


def test_shape_accepts_config_without_data(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    _, art = mirror
    bare = art.manifest.model_copy(update={"config": EMPTY_CONFIG.model_copy(update={"data": None})})
    assert check_manifest_shape(bare, WHERE) == art.manifest.layers[0]


@pytest.mark.parametrize("which", ["title", "media_type"])
def test_first_layer_must_be_export_json(mirror: tuple[Bundle, BuiltArtifact], which: str) -> None:
    _, art = mirror
    first = art.manifest.layers[0]
    bad = retitled(first, "export.jsonx") if which == "title" else first.model_copy(update={"media_type": "application/json"})
    with pytest.raises(VerificationError, match="layer 0 is"):
        check_manifest_shape(with_layers(art.manifest, [bad, *art.manifest.layers[1:]]), WHERE)


# ----------------------------------------------------------------------------- layers (CONTRACT 5.6, 5.7)


def test_layers_accepted_and_returned(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    assert check_layers_against_export(art.manifest, bundle.manifest, WHERE) == art.manifest.layers[1:]


def test_without_optional_layers(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    n = 1 + len(bundle.manifest.contents)
    assert check_layers_against_export(with_layers(art.manifest, art.manifest.layers[:n]), bundle.manifest, WHERE)
    # envelopes without provenance.json are fine too
    no_prov = [d for d in art.manifest.layers if d.title != "provenance.json"]
    assert len(check_layers_against_export(with_layers(art.manifest, no_prov), bundle.manifest, WHERE)) == len(no_prov) - 1


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("digest", OTHER, OTHER),
        ("size", 1, "(1 bytes"),
        ("media_type", "application/octet-stream", "application/octet-stream"),
    ],
)
def test_content_layer_must_equal_its_entry(
    mirror: tuple[Bundle, BuiltArtifact], field: str, value: Any, needle: str
) -> None:
    bundle, art = mirror
    layers = list(art.manifest.layers)
    layers[2] = layers[2].model_copy(update={field: value})
    msg = refused(with_layers(art.manifest, layers), bundle)
    assert "layer 2 is" in msg and needle in msg and "export.json contents expects" in msg


def test_content_layer_title_must_equal_its_entry(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    layers = list(art.manifest.layers)
    layers[1] = retitled(layers[1], "zzz/other.json")
    msg = refused(with_layers(art.manifest, layers), bundle)
    assert "layer 1 is 'zzz/other.json'" in msg


def test_content_layer_with_its_own_content_type(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    typed = [c for c in bundle.manifest.contents if c.content_type]
    assert typed, "the example lists a contentType"
    entry = typed[0]
    layer = next(d for d in art.manifest.layers if d.title == entry.path)
    assert layer.media_type == entry.content_type


def test_missing_content_layer(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    n = len(bundle.manifest.contents)
    msg = refused(with_layers(art.manifest, art.manifest.layers[:n]), bundle)
    last = sorted(c.path for c in bundle.manifest.contents)[-1]
    assert f"export.json lists {last!r}, but the artifact has no layer for it" in msg


def test_layer_without_title(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    layers = list(art.manifest.layers)
    layers[3] = layers[3].model_copy(update={"annotations": None})
    assert f"layer 3 ({layers[3].digest}) has no {mt.ANNOTATION_TITLE}" in refused(with_layers(art.manifest, layers), bundle)


@pytest.mark.parametrize("title", ["../escape.json", "/abs.json", "a//b.json"])
def test_unsafe_layer_title(mirror: tuple[Bundle, BuiltArtifact], title: str) -> None:
    bundle, art = mirror
    layers = [*art.manifest.layers, layer_descriptor(title, DSSE_MEDIA_TYPE, OTHER, 1)]
    assert refused(with_layers(art.manifest, layers), bundle).startswith(f"{WHERE}: layer {len(layers) - 1} title")


def test_duplicate_titles(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    dup = art.manifest.layers[-1]
    msg = refused(with_layers(art.manifest, [*art.manifest.layers, dup]), bundle)
    assert f"layer titles appear more than once: [{dup.title!r}]" in msg


def test_case_twin_titles(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    twin = layer_descriptor("signatures/X.dsse.json", DSSE_MEDIA_TYPE, OTHER, 1)
    other = layer_descriptor("signatures/x.dsse.json", DSSE_MEDIA_TYPE, OTHER, 1)
    layers = [*art.manifest.layers, twin, other]
    msg = refused(with_layers(art.manifest, layers), bundle)
    n = len(layers)
    assert msg.startswith(f"{WHERE}: layer {n - 1} title: 'signatures/x.dsse.json' and 'signatures/X.dsse.json' ")
    assert f"({WHERE}: layer {n - 2} title) differ only in letter case" in msg


def test_unlisted_extra_layer(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    extra = layer_descriptor("zz-extra.json", "application/json", OTHER, 1)
    msg = refused(with_layers(art.manifest, [*art.manifest.layers, extra]), bundle)
    n = len(art.manifest.layers)
    assert f"layer {n} 'zz-extra.json' (application/json) is not listed in export.json" in msg


def test_provenance_must_come_first_after_contents(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    layers = list(art.manifest.layers)
    prov = next(d for d in layers if d.title == "provenance.json")
    layers.remove(prov)
    msg = refused(with_layers(art.manifest, [*layers, prov]), bundle)
    assert "'provenance.json'" in msg and "not listed in export.json" in msg


def test_provenance_with_another_media_type(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    layers = [
        d.model_copy(update={"media_type": "application/json"}) if d.title == "provenance.json" else d
        for d in art.manifest.layers
    ]
    assert "'provenance.json' (application/json) is not listed" in refused(with_layers(art.manifest, layers), bundle)


def test_envelope_with_another_media_type(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    layers = list(art.manifest.layers)
    layers[-1] = layers[-1].model_copy(update={"media_type": IN_TOTO_MEDIA_TYPE})
    assert "'provenance.dsse.json'" in refused(with_layers(art.manifest, layers), bundle)


def test_envelope_at_a_path_that_is_not_a_signature_path(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    stray = layer_descriptor("data/x.dsse.json", DSSE_MEDIA_TYPE, OTHER, 1)
    assert "'data/x.dsse.json'" in refused(with_layers(art.manifest, [*art.manifest.layers, stray]), bundle)


def test_envelopes_out_of_order(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, art = mirror
    layers = list(art.manifest.layers)
    layers[-1], layers[-2] = layers[-2], layers[-1]
    msg = refused(with_layers(art.manifest, layers), bundle)
    assert f"layer {len(layers) - 1} signature file 'export.json.dsse.json' is out of order" in msg
    # a later envelope sorting after the last one is accepted
    late = layer_descriptor("signatures/z.dsse.json", DSSE_MEDIA_TYPE, OTHER, 1)
    ok = check_layers_against_export(with_layers(art.manifest, [*art.manifest.layers, late]), bundle.manifest, WHERE)
    assert ok[-1] == late


def test_an_envelope_sorting_before_any_letter_x_is_first(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    """The order check starts from the empty string: an envelope named 'A.dsse.json' may be first."""
    bundle, art = mirror
    n = 1 + len(bundle.manifest.contents) + 1  # export.json, contents, provenance.json
    first = layer_descriptor("A.dsse.json", DSSE_MEDIA_TYPE, OTHER, 1)
    layers = [*art.manifest.layers[:n], first, *art.manifest.layers[n:]]
    assert check_layers_against_export(with_layers(art.manifest, layers), bundle.manifest, WHERE)[n - 1] == first


def test_built_artifact_is_frozen(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    import dataclasses

    _, art = mirror
    with pytest.raises(dataclasses.FrozenInstanceError):
        art.data = b"{}"  # type: ignore[misc]


def test_export_json_cap_is_the_documented_16_mib() -> None:
    doc = (EXAMPLES.parent / "docs" / "artifact-format.md").read_text(encoding="utf-8")
    assert "capped at **16 MiB**" in doc
    assert MAX_EXPORT_JSON_BYTES == 16 * 1024 * 1024 == 16_777_216


def test_manifest_of_exactly_4_mib_is_accepted(mirror: tuple[Bundle, BuiltArtifact]) -> None:
    bundle, _ = mirror
    small = build_manifest(bundle, user_annotations={"org.example.pad": "x"}, provenance_ref=None)
    pad = "x" * (1 + mt.MAX_MANIFEST_BYTES - len(small.data))
    exact = build_manifest(bundle, user_annotations={"org.example.pad": pad}, provenance_ref=None)
    assert len(exact.data) == mt.MAX_MANIFEST_BYTES
    with pytest.raises(InvalidInputError):
        build_manifest(bundle, user_annotations={"org.example.pad": pad + "x"}, provenance_ref=None)


def test_provenance_json_digest_is_the_last_resort_reference(tmp_path: Path) -> None:
    """A bundle whose export.json names no provenance reference gets provenance.json's digest."""
    from stella_oci.export.annotations import ANN_PROVENANCE_REF
    from tests.support.bundles import make_bundle

    root = make_bundle(tmp_path / "b", {"data/a.json": b"{}"}, provenance_ref=None)
    (root / "provenance.json").write_bytes(b'{"_type": "https://in-toto.io/Statement/v1"}')
    bundle = scan_directory(root)
    assert bundle.provenance is not None
    art = build_manifest(bundle, user_annotations={}, provenance_ref=None)
    assert art.annotations[ANN_PROVENANCE_REF] == bundle.provenance.digest
