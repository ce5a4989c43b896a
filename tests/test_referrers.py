"""Issue 5: attach / discover OCI 1.1 referrers.

* fallback path (referrers tag schema) against the real distribution registry (= registry:2),
  read back with raw HTTP and with skopeo;
* native path against tests/support/referrers_server.py, a proxy in front of the same binary
  that implements ``GET /v2/<name>/referrers/<digest>`` and answers ``OCI-Subject``;
* OCI layouts and archives;
* push's ``--attach-signatures`` helper, :func:`attach_bundle_signatures`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from stella_oci import api
from stella_oci.errors import InvalidInputError, NotFoundError, OfflineError
from stella_oci.export.bundle import open_bundle
from stella_oci.oci import mediatypes as mt
from stella_oci.oci.reference import parse_reference
from stella_oci.transport.options import TransportOptions
from stella_oci.verbs.common import RunOptions, open_destination
from stella_oci.verbs.referrers import attach, attach_bundle_signatures, build_referrer_manifest, discover
from tests.support.bundles import copy_example
from tests.support.referrers_server import ReferrersProxy, start_referrers_proxy

NOTE = "application/vnd.example.note.v1"
SBOM = "application/vnd.cyclonedx+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fallback_tag(digest: str) -> str:
    return digest.replace(":", "-")


def get_fallback_index(base_url: str, repo: str, subject: str) -> tuple[int, bytes]:
    r = requests.get(
        f"{base_url}/v2/{repo}/manifests/{fallback_tag(subject)}",
        headers={"Accept": mt.OCI_INDEX},
        timeout=10,
    )
    return r.status_code, r.content


def raw_push_blob(base_url: str, repo: str, data: bytes) -> str:
    digest = sha256(data)
    r = requests.post(f"{base_url}/v2/{repo}/blobs/uploads/", timeout=10)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = base_url + loc
    sep = "&" if "?" in loc else "?"
    r = requests.put(
        f"{loc}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return digest


@pytest.fixture
def pushed(registry, fresh_repo, tmp_path) -> str:
    """The mirror-full example pushed to ``registry``; returns ``host/repo:v1``."""
    ref = f"{registry.host}/{fresh_repo}:v1"
    api.push(copy_example("mirror-full", tmp_path / "bundle"), ref)
    return ref


@pytest.fixture
def proxy(registry) -> Iterator[ReferrersProxy]:
    p = start_referrers_proxy(registry.host)
    try:
        yield p
    finally:
        p.stop()


def note(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------ fallback: registry:2
def test_attach_then_discover_on_registry2_uses_the_fallback_tag(
    registry, fresh_repo, pushed, tmp_path, skopeo
):
    subject = api.inspect(pushed).digest
    a = attach(
        pushed, note(tmp_path, "a.txt", "first"), artifact_type=NOTE, annotations=["com.example.k=one"]
    )
    assert a.via == "fallback-tag"
    assert a.fallback_tag == fallback_tag(subject)
    assert a.subject == subject

    # the referrer manifest as stored: subject, artifactType, empty config, one layer
    r = requests.get(
        f"{registry.url}/v2/{fresh_repo}/manifests/{a.digest}",
        headers={"Accept": mt.OCI_MANIFEST},
        timeout=10,
    )
    assert r.status_code == 200 and sha256(r.content) == a.digest
    m = r.json()
    assert m["subject"]["digest"] == subject and m["artifactType"] == NOTE
    assert m["config"]["digest"] == mt.EMPTY_DIGEST
    assert [(layer["digest"], layer["annotations"][mt.ANNOTATION_TITLE]) for layer in m["layers"]] == [
        (sha256(b"first"), "a.txt")
    ]
    assert m["annotations"] == {"com.example.k": "one"}

    # the fallback tag holds an OCI index listing it with artifactType and annotations
    status, data = get_fallback_index(registry.url, fresh_repo, subject)
    assert status == 200
    index = json.loads(data)
    assert index["mediaType"] == mt.OCI_INDEX and index["schemaVersion"] == 2
    assert index["manifests"] == [
        {
            "mediaType": mt.OCI_MANIFEST,
            "digest": a.digest,
            "size": len(r.content),
            "artifactType": NOTE,
            "annotations": {"com.example.k": "one"},
        }
    ]
    # an independent client reads the same index bytes
    assert skopeo(
        "inspect", "--raw", f"docker://{registry.host}/{fresh_repo}:{fallback_tag(subject)}"
    ).encode() in (
        data,
        data + b"\n",
    )

    d = discover(pushed)
    assert d.source == "fallback-tag" and d.subject == subject
    assert [(x.digest, x.artifact_type, x.annotations) for x in d.referrers] == [
        (a.digest, NOTE, {"com.example.k": "one"})
    ]


def test_second_attach_keeps_entries_including_another_clients(registry, fresh_repo, pushed, tmp_path):
    subject = api.inspect(pushed)
    first = attach(pushed, note(tmp_path, "a.txt", "first"), artifact_type=NOTE)

    # another client pushes its own referrer and adds it to the index by hand
    layer = raw_push_blob(registry.url, fresh_repo, b"foreign")
    raw_push_blob(registry.url, fresh_repo, mt.EMPTY_JSON)
    from stella_oci.oci.manifest import Descriptor

    data, desc = build_referrer_manifest(
        Descriptor(media_type=subject.media_type, digest=subject.digest, size=subject.size),
        SBOM,
        [Descriptor(media_type=SBOM, digest=layer, size=7)],
        {"com.example.client": "other"},
    )
    r = requests.put(
        f"{registry.url}/v2/{fresh_repo}/manifests/{desc.digest}",
        data=data,
        headers={"Content-Type": mt.OCI_MANIFEST},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    _, idx = get_fallback_index(registry.url, fresh_repo, subject.digest)
    index = json.loads(idx)
    foreign_entry = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": desc.digest,
        "size": desc.size,
        "artifactType": SBOM,
        "annotations": {"com.example.client": "other"},
        "com.example.unknown-field": "kept",  # a member we do not know must survive too
    }
    index["manifests"].append(foreign_entry)
    r = requests.put(
        f"{registry.url}/v2/{fresh_repo}/manifests/{fallback_tag(subject.digest)}",
        data=json.dumps(index).encode(),
        headers={"Content-Type": mt.OCI_INDEX},
        timeout=10,
    )
    assert r.status_code == 201, r.text

    second = attach(pushed, note(tmp_path, "b.txt", "second"), artifact_type=NOTE)
    again = attach(pushed, note(tmp_path, "a.txt", "first"), artifact_type=NOTE)  # same content: same digest
    assert again.digest == first.digest

    _, idx = get_fallback_index(registry.url, fresh_repo, subject.digest)
    entries = json.loads(idx)["manifests"]
    digests = [e["digest"] for e in entries]
    assert sorted(digests) == sorted({first.digest, second.digest, desc.digest})
    assert len(digests) == 3  # no duplicate for the re-attach
    kept = next(e for e in entries if e["digest"] == desc.digest)
    assert kept["annotations"] == {"com.example.client": "other"} and kept["artifactType"] == SBOM
    assert kept.get("com.example.unknown-field") == "kept"

    d = discover(pushed)
    assert sorted(x.digest for x in d.referrers) == sorted(digests)
    only = discover(pushed, artifact_type=SBOM)
    assert [x.digest for x in only.referrers] == [desc.digest]


# ------------------------------------------------------------------ native referrers API
def test_native_referrers_api_is_used_when_the_registry_has_it(registry, proxy, fresh_repo, tmp_path):
    ref = f"{proxy.host}/{fresh_repo}:v1"
    pushed = api.push(copy_example("mirror-full", tmp_path / "bundle"), ref)
    a = attach(ref, note(tmp_path, "a.txt", "first"), artifact_type=NOTE, annotations=["com.example.k=v"])
    b = attach(ref, note(tmp_path, "s.json", "{}"), artifact_type=SBOM)
    assert a.via == "referrers-api" and a.fallback_tag is None

    # the registry answered OCI-Subject, so no fallback tag was written
    assert not [p for m, p in proxy.requests if m == "PUT" and p.endswith(fallback_tag(pushed.digest))]
    status, _ = get_fallback_index(registry.url, fresh_repo, pushed.digest)
    assert status == 404
    assert (fresh_repo, pushed.digest) in proxy.referrers

    d = discover(ref)
    assert d.source == "referrers-api"
    assert sorted(x.digest for x in d.referrers) == sorted([a.digest, b.digest])
    assert next(x for x in d.referrers if x.digest == a.digest).annotations == {"com.example.k": "v"}
    assert [x.digest for x in discover(ref, artifact_type=SBOM).referrers] == [b.digest]
    assert ("GET", f"/v2/{fresh_repo}/referrers/{pushed.digest}") in proxy.requests


# ------------------------------------------------------------------ OCI layouts
@pytest.mark.parametrize("kind", ["oci", "oci-archive"])
def test_attach_discover_in_oci_layouts(tmp_path, kind):
    where = tmp_path / ("layout" if kind == "oci" else "exports.tar")
    ref = f"{kind}:{where}:v1"
    pushed = api.push(copy_example("mirror-full", tmp_path / "bundle"), ref)
    a = attach(ref, note(tmp_path, "a.txt", "first"), artifact_type=NOTE, annotations=["com.example.k=v"])
    assert a.via == "oci-layout" and a.subject == pushed.digest
    b = attach(ref, note(tmp_path, "b.txt", "second"), artifact_type=SBOM)
    d = discover(ref)
    assert d.source == "oci-layout"
    assert sorted(x.digest for x in d.referrers) == sorted([a.digest, b.digest])
    assert next(x for x in d.referrers if x.digest == a.digest).annotations == {"com.example.k": "v"}
    assert [x.digest for x in discover(ref, artifact_type=NOTE).referrers] == [a.digest]
    # the export itself still pulls and verifies
    assert api.verify(ref).digest == pushed.digest


# ------------------------------------------------------------------ push --attach-signatures helper
def test_attach_bundle_signatures_attaches_envelopes_and_provenance(registry, fresh_repo, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    ref = f"{registry.host}/{fresh_repo}:v1"
    pushed = api.push(bundle, ref)
    target = open_destination(parse_reference(ref), RunOptions())
    try:
        subject = target.resolve("v1")
        with open_bundle(bundle) as b:
            descs = attach_bundle_signatures(target, subject, b)
            descs_again = attach_bundle_signatures(target, subject, b)
    finally:
        target.close()
    assert [d.digest for d in descs] == [d.digest for d in descs_again]  # deterministic
    titles = {d.annotations[mt.ANNOTATION_TITLE]: d.artifact_type for d in descs if d.annotations}
    assert titles == {"provenance.json": IN_TOTO, "export.json.dsse.json": DSSE, "provenance.dsse.json": DSSE}

    d = discover(ref)
    assert sorted(x.digest for x in d.referrers) == sorted(x.digest for x in descs)  # no duplicates
    for x in d.referrers:
        assert x.annotations["io.stellaops.export.id"] == "exp-20261120-mirror-full-0001"
        r = requests.get(
            f"{registry.url}/v2/{fresh_repo}/manifests/{x.digest}",
            headers={"Accept": mt.OCI_MANIFEST},
            timeout=10,
        )
        layer = r.json()["layers"][0]
        data = (bundle / layer["annotations"][mt.ANNOTATION_TITLE]).read_bytes()
        assert layer["digest"] == sha256(data)  # the same blob as the export's layer
        assert r.json()["subject"]["digest"] == pushed.digest
    assert [x.digest for x in discover(ref, artifact_type=IN_TOTO).referrers] == [
        next(x.digest for x in descs if x.artifact_type == IN_TOTO)
    ]


# ------------------------------------------------------------------ errors
def test_attach_refusals(registry, fresh_repo, pushed, tmp_path):
    f = note(tmp_path, "a.txt", "x")
    with pytest.raises(InvalidInputError) as e:
        attach(pushed, f, artifact_type="not a media type")
    assert e.value.exit_code == 2 and "--artifact-type" in e.value.message
    with pytest.raises(InvalidInputError) as e:
        attach(pushed, tmp_path / "missing.txt", artifact_type=NOTE)
    assert e.value.exit_code == 2 and "missing.txt" in e.value.message
    with pytest.raises(InvalidInputError) as e:
        attach(pushed, f, artifact_type=NOTE, annotations=["io.stellaops.export.id=x"])
    assert e.value.exit_code == 2
    with pytest.raises(NotFoundError) as e4:
        attach(f"{registry.host}/{fresh_repo}:nope", f, artifact_type=NOTE)
    assert e4.value.exit_code == 4
    with pytest.raises(InvalidInputError):
        discover(f"{registry.host}/{fresh_repo}")  # no tag, no digest
    offline = RunOptions(transport=TransportOptions(offline=True))
    with pytest.raises(OfflineError) as e5:
        discover(pushed, run=offline)
    assert e5.value.exit_code == 5
    with pytest.raises(OfflineError):
        attach(pushed, f, artifact_type=NOTE, run=offline)
    # nothing was attached by the refused calls
    assert discover(pushed).referrers == []


# ------------------------------------------------------------------ CLI
def test_cli_commands_directly(pushed, tmp_path):
    """The click commands of stella_oci/cli/referrers.py, invoked without the main group."""
    from stella_oci.cli import referrers as cli

    runner = CliRunner()
    f = note(tmp_path, "a.txt", "hello")
    res = runner.invoke(
        cli.attach, [pushed, str(f), "--artifact-type", NOTE, "-a", "com.example.k=v", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (
        out["artifactType"] == NOTE
        and out["via"] == "fallback-tag"
        and out["layer"]["digest"] == sha256(b"hello")
    )
    res = runner.invoke(cli.discover, [pushed, "--format", "json"])
    assert res.exit_code == 0, res.output
    found = json.loads(res.stdout)
    assert [(r["digest"], r["artifactType"], r["annotations"]) for r in found["referrers"]] == [
        (out["digest"], NOTE, {"com.example.k": "v"})
    ]
    res = runner.invoke(cli.discover, [pushed, "--artifact-type", "bad type", "--format", "json"])
    assert res.exit_code == 2
    assert json.loads(res.stdout)["error"]["code"] == 2


def test_cli_attach_and_discover_subprocess(pushed, tmp_path, run_cli):
    """attach and discover through `python -m stella_oci` (their rows in stella_oci.cli.LAZY_COMMANDS)."""
    f = note(tmp_path, "a.txt", "hello")
    code, out, err = run_cli("attach", pushed, f, "--artifact-type", NOTE, "--format", "json")
    assert code == 0, err + out
    attached = json.loads(out)
    code, out, err = run_cli("discover", pushed, "--artifact-type", NOTE, "--format", "json")
    assert code == 0, err + out
    assert [r["digest"] for r in json.loads(out)["referrers"]] == [attached["digest"]]
    code, out, err = run_cli("discover", pushed)
    assert code == 0 and attached["digest"] in out and "referrers tag schema" in out
