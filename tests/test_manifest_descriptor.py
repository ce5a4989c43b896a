"""Issue 15: the OCI descriptor is small (a ``__slots__`` object, not a pydantic model) and a
manifest is parsed without a dict per layer beside the descriptors; what it accepts, refuses
and writes back is what the pydantic model did."""

from __future__ import annotations

import json
import pickle
import tracemalloc

import pytest

from stella_oci.errors import VerificationError
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.manifest import (
    Descriptor,
    Index,
    Manifest,
    encode,
    media_type_of,
    parse_index,
    parse_manifest,
)

D = "sha256:" + "a" * 64
LAYER = {"mediaType": "application/octet-stream", "digest": D, "size": 3, "annotations": {mt.ANNOTATION_TITLE: "f"}}
CONFIG = {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2}


def manifest_doc(n: int, **extra: object) -> dict[str, object]:
    layers = [{**LAYER, "digest": f"sha256:{i:064x}", "annotations": {mt.ANNOTATION_TITLE: f"files/f{i:05d}"}} for i in range(n)]
    return {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": CONFIG, "layers": layers, **extra}


def test_bytes_per_layer_descriptor_with_its_title():
    n = 2000
    paths = [f"files/f{i:05d}.bin" for i in range(n)]
    digests = [f"sha256:{i:064x}" for i in range(n)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [
        Descriptor(media_type="application/octet-stream", digest=digests[i], size=i + 1000, annotations={mt.ANNOTATION_TITLE: paths[i]})
        for i in range(n)
    ]
    per = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    assert kept[7].title == paths[7] and kept[7].to_dict()["annotations"] == {mt.ANNOTATION_TITLE: paths[7]}
    assert per < 200, f"{per:.0f} bytes per descriptor (the strings shared)"  # pydantic model: ~850


def test_parse_holds_no_dict_per_layer_beside_the_descriptors():
    data = json.dumps(manifest_doc(5000)).encode()
    parse_manifest(data)
    tracemalloc.start()
    m = parse_manifest(data)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(m.layers) == 5000 and m.layers[4999].title == "files/f04999"
    # the decoded text (one copy of the document) and little else: a dict per layer would add
    # ~2.5x the document (measured 3.0x with the dicts, 1.0x without)
    assert peak - kept < 1.5 * len(data), (peak - kept) / len(data)


def test_descriptor_api():
    a = Descriptor(media_type="x", digest=D, size=1, annotations={mt.ANNOTATION_TITLE: "t"})
    b = Descriptor.model_validate({"mediaType": "x", "digest": D, "size": 1, "annotations": {mt.ANNOTATION_TITLE: "t"}})
    assert a == b and hash(a) == hash(b) and a.title == "t" and a.short() == f"{D} (t)"
    assert a != a.model_copy(update={"size": 2}) and a.model_copy(update={"size": 2}).size == 2
    assert Descriptor(mediaType="x", digest=D, size=1) == Descriptor(media_type="x", digest=D, size=1)  # by alias
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError):
        a.size = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Descriptor(media_type="x", digest=D, size=-1)
    with pytest.raises(ValueError, match="is not of the form sha256"):
        Descriptor(media_type="x", digest="sha256:abc", size=1)
    odd = Descriptor.model_validate({"mediaType": "x", "digest": D, "size": "5", "urls": ["u"], "foo": {"k": 1}})
    assert odd.size == 5 and odd.to_dict() == {"mediaType": "x", "digest": D, "size": 5, "urls": ["u"], "foo": {"k": 1}}


def test_unknown_members_round_trip_even_when_they_look_like_descriptors():
    doc = manifest_doc(2, foo=LAYER, bar={"x": [LAYER]})
    doc["layers"][1] = {**LAYER, "extra": LAYER, "media_type": "n"}  # type: ignore[index]
    doc["config"] = {**CONFIG, "x": LAYER}
    m = parse_manifest(json.dumps(doc).encode())
    assert m.to_dict() == doc
    assert encode(m)[0] == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert isinstance(m, Manifest) and m.model_extra == {"foo": LAYER, "bar": {"x": [LAYER]}}
    idx = {"schemaVersion": 2, "manifests": [LAYER, {**LAYER, "platform": {"os": "linux", "x": LAYER}}], "layers": [LAYER]}
    parsed = parse_index(json.dumps(idx).encode())
    assert isinstance(parsed, Index) and parsed.to_dict() == idx
    assert media_type_of(json.dumps(LAYER).encode()) == LAYER["mediaType"]  # a document shaped as a descriptor


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({**LAYER, "size": -1}, "layers/1/size: Input should be greater than or equal to 0"),
        ({**LAYER, "digest": "sha256:ABC"}, "layers/1/digest: Value error, digest 'sha256:ABC' is not of the form"),
        ({**LAYER, "mediaType": 5}, "layers/1/mediaType: Input should be a valid string"),
        ({**LAYER, "annotations": {mt.ANNOTATION_TITLE: 1}}, f"layers/1/annotations/{mt.ANNOTATION_TITLE}: Input should be a valid string"),
        ([LAYER], "layers/1: Input should be a valid dictionary or instance of Descriptor"),
    ],
)
def test_hostile_layers_are_refused_as_before(layer, message):
    doc = manifest_doc(3)
    doc["layers"][1] = layer  # type: ignore[index]
    with pytest.raises(VerificationError) as exc:
        parse_manifest(json.dumps(doc).encode(), "m")
    assert exc.value.exit_code == 3 and str(exc.value).startswith(f"m: not an OCI image manifest: {message}")


def test_depth_limit_holds_for_a_descriptor_nested_deep():
    nested: object = LAYER  # its annotations are one level below it
    for _ in range(62):
        nested = {"a": nested}
    doc = manifest_doc(1, foo=nested)  # LAYER at depth 64, its annotations at 65
    with pytest.raises(VerificationError, match="nested more than 64 levels deep"):
        parse_manifest(json.dumps(doc).encode())
    with pytest.raises(VerificationError, match="nested more than 64 levels deep"):
        media_type_of(json.dumps(doc).encode())


def test_a_dump_is_a_copy_the_descriptor_does_not_change_through_it():
    d = Descriptor(
        media_type="application/json", digest="sha256:" + "ab" * 32, size=1,
        annotations={"a": "1", mt.ANNOTATION_TITLE: "t"}, artifact_type="x/y", urls=["https://u/"],
        platform={"os": "linux", "os.features": ["f"]},
    )
    for dump in (d.to_dict(), d.model_dump(), d.model_dump(by_alias=True, exclude_none=True)):
        dump["annotations"]["a"] = "EVIL"
        dump["urls"].append("https://evil/")
        dump["platform"]["os.features"].append("evil")
    assert d.annotations == {"a": "1", mt.ANNOTATION_TITLE: "t"}
    assert d.urls == ["https://u/"]
    assert d.platform == {"os": "linux", "os.features": ["f"]}
