"""Issue 9 "tests that bite": hostile export artifacts built against the real registry.

Each case publishes a manifest that a well-behaved stella-oci never writes (raw HTTP to the
real registry, blobs and manifest bytes of the test's choosing) and runs the CLI's ``pull``
and ``verify`` against it: both must exit 3, and the pull must leave nothing at ``--output``.
A baseline case, built by the same code without a mutation, must pass: the failures are the
mutation's doing, not the builder's. Each case guards one check (the comment names it); each
check was disabled once on purpose and the case went red (see the report of issue 9).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from stella_oci.export.annotations import (
    ARTIFACT_TYPE,
    DSSE_MEDIA_TYPE,
    EXPORT_MANIFEST_MEDIA_TYPE,
    compute_annotations,
)
from stella_oci.export.models import ExportManifest
from stella_oci.oci import mediatypes as mt
from tests.support.bundles import make_bundle, read_export_json, tree
from tests.support.tamper_proxy import Rule, TamperProxy, start_tamper_proxy

OCTET = "application/octet-stream"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(base_url: str, repo: str, data: bytes) -> str:
    digest = sha(data)
    r = requests.post(f"{base_url}/v2/{repo}/blobs/uploads/", timeout=10)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    loc = base_url + loc if loc.startswith("/") else loc
    sep = "&" if "?" in loc else "?"
    r = requests.put(f"{loc}{sep}digest={digest}", data=data, headers={"Content-Type": OCTET}, timeout=10)
    assert r.status_code == 201, r.text
    return digest


def put_manifest(base_url: str, repo: str, ref: str, data: bytes, media_type: str = mt.OCI_MANIFEST) -> requests.Response:
    return requests.put(
        f"{base_url}/v2/{repo}/manifests/{ref}", data=data, headers={"Content-Type": media_type}, timeout=10
    )


@dataclass
class Artifact:
    """An export artifact as plain JSON, to be mutated and published."""

    doc: dict[str, Any]
    files: dict[str, bytes]
    extra_layers: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(title, media type, bytes) after the contents layers."""
    content_types: dict[str, str] = field(default_factory=dict)

    def export_json(self) -> bytes:
        return (json.dumps(self.doc, indent=2, sort_keys=True) + "\n").encode()

    def manifest(self) -> dict[str, Any]:
        ej = self.export_json()
        layers = [layer(EXPORT_MANIFEST_MEDIA_TYPE, ej, "export.json")]
        for entry in sorted(self.doc["contents"], key=lambda e: e["path"]):
            data = self.files[entry["path"]]
            layers.append(layer(entry.get("contentType") or OCTET, data, entry["path"]))
        for title, media_type, data in self.extra_layers:
            layers.append(layer(media_type, data, title))
        return {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {
                "mediaType": mt.OCI_EMPTY,
                "digest": mt.EMPTY_DIGEST,
                "size": 2,
                "data": base64.b64encode(b"{}").decode(),
            },
            "layers": layers,
            "annotations": compute_annotations(
                ExportManifest.from_json_obj(self.doc), provenance_digest=None, provenance_ref=None, user={}
            ),
        }

    def blobs(self) -> list[bytes]:
        return [self.export_json(), b"{}", *self.files.values(), *(d for _, _, d in self.extra_layers)]


def layer(media_type: str, data: bytes, title: str) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": sha(data),
        "size": len(data),
        "annotations": {mt.ANNOTATION_TITLE: title},
    }


def base_artifact(tmp_path: Path) -> Artifact:
    files = {"data/a.json": b'{"a": 1}\n', "metadata.json": b'{"m": "original"}\n'}
    root = make_bundle(tmp_path / "src", files)
    return Artifact(doc=read_export_json(root), files=dict(files))


def publish(registry, repo: str, tag: str, art: Artifact, mutate: Callable[[dict[str, Any]], None] | None = None,
            more_blobs: tuple[bytes, ...] = ()) -> str:
    for blob in (*art.blobs(), *more_blobs):
        put_blob(registry.url, repo, blob)
    manifest = art.manifest()
    if mutate is not None:
        mutate(manifest)
    data = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    r = put_manifest(registry.url, repo, tag, data)
    assert r.status_code == 201, r.text
    return sha(data)


# --------------------------------------------------------------------------- the cases
FORGED = b'{"m": "forged"}\n'


def forged_layer(m: dict[str, Any]) -> None:
    """CONTRACT 5.6: the metadata.json layer is another blob than export.json lists."""
    lay = next(x for x in m["layers"] if x["annotations"][mt.ANNOTATION_TITLE] == "metadata.json")
    lay["digest"], lay["size"] = sha(FORGED), len(FORGED)


def wrong_artifact_type(m: dict[str, Any]) -> None:
    """CONTRACT 5.2: artifactType must be the StellaOps export type."""
    m["artifactType"] = "application/vnd.example.other+json"


def wrong_config(m: dict[str, Any]) -> None:
    """CONTRACT 5.2: the config must be the OCI empty descriptor (same {} bytes, other type)."""
    m["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": mt.EMPTY_DIGEST, "size": 2}


def unlisted_layer(m: dict[str, Any]) -> None:
    """CONTRACT 5.7: a layer export.json does not list (not provenance, not an envelope)."""
    m["layers"].append(layer(OCTET, b"smuggled\n", "smuggled.bin"))


ENV_A = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}\n'
ENV_B = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30K","signatures":[]}\n'


def misordered_envelopes(m: dict[str, Any]) -> None:
    """CONTRACT 5.7: DSSE envelope layers come sorted by path."""
    m["layers"] += [layer(DSSE_MEDIA_TYPE, ENV_B, "b.dsse.json"), layer(DSSE_MEDIA_TYPE, ENV_A, "a.dsse.json")]


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], tuple[bytes, ...]]] = {
    "forged-layer": (forged_layer, (FORGED,)),
    "wrong-artifact-type": (wrong_artifact_type, ()),
    "wrong-config": (wrong_config, ()),
    "unlisted-layer": (unlisted_layer, (b"smuggled\n",)),
    "misordered-envelopes": (misordered_envelopes, (ENV_A, ENV_B)),
}


def assert_refused(run_cli, ref: str, tmp_path: Path, what: str, message: str | None = None) -> None:
    """pull and verify exit 3 (with ``message`` in the error, when given); nothing at --output."""
    out_dir = tmp_path / "out"
    code, out, err = run_cli("pull", ref, "-o", out_dir, "--format", "json")
    assert code == 3, f"{what}: pull exit {code}: {out}{err}"
    error = json.loads(out)["error"]
    assert error["kind"] == "verification-failed"
    assert message is None or message in error["message"], error
    assert not out_dir.exists(), f"{what}: pull left {out_dir}"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == [], "partial left beside --output"
    code, out, err = run_cli("verify", ref, "--format", "json")
    assert code == 3, f"{what}: verify exit {code}: {out}{err}"
    assert message is None or message in json.loads(out)["error"]["message"]


def test_baseline_artifact_passes(registry, fresh_repo, run_cli, tmp_path):
    """The builder makes a valid export: pull and verify succeed (so the cases below fail on
    their mutation alone)."""
    art = base_artifact(tmp_path)
    digest = publish(registry, fresh_repo, "v1", art)
    ref = f"{registry.host}/{fresh_repo}@{digest}"
    code, out, err = run_cli("pull", ref, "-o", tmp_path / "out", "--format", "json")
    assert code == 0, out + err
    assert tree(tmp_path / "out") == {"export.json": art.export_json(), **art.files}
    code, out, err = run_cli("verify", ref, "--format", "json")
    assert code == 0, out + err


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_manifest_is_refused(case, registry, fresh_repo, run_cli, tmp_path):
    mutate, more = CASES[case]
    digest = publish(registry, fresh_repo, "v1", base_artifact(tmp_path), mutate, more)
    assert_refused(run_cli, f"{registry.host}/{fresh_repo}@{digest}", tmp_path, case)


def test_duplicate_titles_are_refused(registry, fresh_repo, run_cli, tmp_path):
    """CONTRACT 5.7: two layers with one title (here a listed file named like an envelope and
    an envelope layer of that name: each passes its own rule, only the duplicate check sees it)."""
    art = base_artifact(tmp_path)
    art.files["x.dsse.json"] = ENV_A
    entry = {"path": "x.dsse.json", "digest": sha(ENV_A), "bytes": len(ENV_A), "contentType": DSSE_MEDIA_TYPE}
    art.doc["contents"] = sorted([*art.doc["contents"], entry], key=lambda e: e["path"])
    art.extra_layers.append(("x.dsse.json", DSSE_MEDIA_TYPE, ENV_B))
    digest = publish(registry, fresh_repo, "v1", art)
    # the path-set check (case twins, file-and-directory) would catch an exact duplicate too; the
    # duplicate check runs first and names it
    assert_refused(
        run_cli, f"{registry.host}/{fresh_repo}@{digest}", tmp_path, "duplicate-titles",
        message="layer titles appear more than once: ['x.dsse.json']",
    )


@pytest.fixture
def tamper(registry) -> Iterator[TamperProxy]:
    proxy = start_tamper_proxy(registry.host)
    yield proxy
    proxy.stop()


def test_lying_docker_content_digest_is_refused(registry, fresh_repo, run_cli, tmp_path, tamper):
    """The registry's Docker-Content-Digest must name the manifest bytes it sent."""
    art = base_artifact(tmp_path)
    publish(registry, fresh_repo, "v1", art)
    tamper.rules.append(
        Rule(path_contains=f"/v2/{fresh_repo}/manifests/", set_header=("Docker-Content-Digest", sha(b"lie")))
    )
    assert_refused(run_cli, f"{tamper.host}/{fresh_repo}:v1", tmp_path, "lying Docker-Content-Digest")
    assert tamper.rules[0].hits >= 2


def test_export_json_over_the_cap_is_refused_before_download(registry, fresh_repo, run_cli, tmp_path, tamper):
    """Acceptance 3a: an export.json layer that announces 2 GiB is refused (exit 3) before a
    byte of it is requested: the proxy sees no GET of that blob."""
    art = base_artifact(tmp_path)
    ej_digest = sha(art.export_json())

    def announce_2gib(m: dict[str, Any]) -> None:
        m["layers"][0]["size"] = 2 * 1024**3

    digest = publish(registry, fresh_repo, "v1", art, announce_2gib)
    ref = f"{tamper.host}/{fresh_repo}@{digest}"
    out_dir = tmp_path / "out"
    code, out, err = run_cli("pull", ref, "-o", out_dir, "--format", "json")
    assert code == 3, out + err
    message = json.loads(out)["error"]["message"]
    assert "2147483648" in message and "refused before download" in message, message
    assert not out_dir.exists()
    assert tamper.requests_to(f"/manifests/{digest}") >= 1  # the manifest was read through the proxy
    assert tamper.requests_to(f"/blobs/{ej_digest}") == 0, tamper.requests
    assert tamper.requests_to("/blobs/") == 0, tamper.requests
    code, out, err = run_cli("verify", ref, "--format", "json")
    assert code == 3, out + err
    assert tamper.requests_to("/blobs/") == 0, tamper.requests


# --------------------------------------------------------------------------- cancellation
def test_failing_blob_cancels_a_stalled_sibling_within_5_s(registry, fresh_repo, tmp_path, tamper):
    """Acceptance 3b: one blob's download stalls (the proxy sends 1 KiB, then nothing), another
    fails its digest; the pull fails with the digest error, and the stalled download is
    abandoned (its connection closed by the client) within 5 s of the failure, not after the
    60 s read timeout. Ordered by events: the bad blob is only sent once the stall began."""
    import threading

    from stella_oci import api
    from stella_oci.errors import VerificationError
    from stella_oci.transport import TransportOptions
    from stella_oci.verbs.common import RunOptions

    big = bytes(range(256)) * 4096  # 1 MiB
    bad = b'{"b": "will be corrupted"}\n'
    root = make_bundle(tmp_path / "src", {"big.bin": big, "bad.json": bad})
    pushed = api.push(root, f"{registry.host}/{fresh_repo}:v1")
    tamper.rules += [
        Rule(path_contains=f"/blobs/{sha(big)}", stall=True, stall_bytes=1024),
        Rule(path_contains=f"/blobs/{sha(bad)}", corrupt=True, wait_for=tamper.stall_started),
    ]
    out = tmp_path / "out"
    run = RunOptions(transport=TransportOptions(read_timeout=60.0), concurrency=3)
    with pytest.raises(VerificationError, match=sha(bad).split(":")[1][:12]):
        api.pull(f"{tamper.host}/{fresh_repo}@{pushed.digest}", out, run=run)
    assert tamper.stall_started.is_set(), "the stalled download never started"
    assert tamper.rules[1].sent_at is not None
    assert tamper.stall_gone.wait(5), "the stalled download was not abandoned"
    assert tamper.stall_gone_at is not None
    assert tamper.stall_gone_at - tamper.rules[1].sent_at < 5
    assert [t.name for t in threading.enumerate() if t.name.startswith("stella-oci-copy")] == []
    assert not out.exists()
