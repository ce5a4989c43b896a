"""The test infrastructure itself: both registry fixtures answer, store blobs where ``blob_path``
says, and an independent client (skopeo) reads what was stored. No stella_oci code is involved."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.conftest import RunCli, Skopeo, repo_slug, run_module
from tests.support.registry import RegistryHandle

REGISTRIES = [
    pytest.param("registry", id="binary"),
    pytest.param("container_registry", id="container", marks=pytest.mark.container),
]


@pytest.fixture(params=REGISTRIES)
def any_registry(request: pytest.FixtureRequest) -> RegistryHandle:
    reg: RegistryHandle = request.getfixturevalue(request.param)
    return reg


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(reg: RegistryHandle, repo: str, data: bytes) -> str:
    """Monolithic upload (POST then PUT ?digest=) with plain requests; returns the digest."""
    digest = sha256(data)
    start = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = urljoin(f"{reg.url}/", start.headers["Location"])
    sep = "&" if "?" in location else "?"
    done = requests.put(
        f"{location}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    return digest


def test_v2_answers(any_registry: RegistryHandle) -> None:
    resp = requests.get(f"{any_registry.url}/v2/", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert re.fullmatch(r"127\.0\.0\.1:\d+|[^/:]+:\d+", any_registry.host)


def test_blob_put_lands_in_root(any_registry: RegistryHandle, fresh_repo: str) -> None:
    data = os.urandom(4096) + fresh_repo.encode()
    digest = put_blob(any_registry, fresh_repo, data)

    head = requests.head(f"{any_registry.url}/v2/{fresh_repo}/blobs/{digest}", timeout=5)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(data)

    stored = any_registry.blob_path(digest)
    assert stored.is_file(), f"{digest} not at {stored}"
    assert stored.read_bytes() == data
    assert stored.is_relative_to(any_registry.require_root())

    # Tampering through the storage dir is visible over HTTP: what tamper tests rely on.
    stored.write_bytes(b"X" + data[1:])
    got = requests.get(f"{any_registry.url}/v2/{fresh_repo}/blobs/{digest}", timeout=5)
    assert got.status_code == 200
    assert got.content[:1] == b"X"
    assert sha256(got.content) != digest


def write_oci_layout(root: Path, tag: str, payload: bytes) -> tuple[str, bytes, str]:
    """A one-layer OCI image layout written by hand.

    Returns (manifest digest, manifest bytes, layer digest)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = sha256(data)
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
        return digest

    config = b"{}"
    config_digest = blob(config)
    layer_digest = blob(payload)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.stellaops.test.v1",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": layer_digest,
                    "size": len(payload),
                    "annotations": {"org.opencontainers.image.title": "payload.bin"},
                }
            ],
            "annotations": {"io.stellaops.test": "fixtures"},
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    manifest_digest = blob(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return manifest_digest, manifest, layer_digest


def test_skopeo_reads_what_was_pushed(
    any_registry: RegistryHandle, fresh_repo: str, skopeo: Skopeo, tmp_path: Path
) -> None:
    payload = os.urandom(10_000)
    manifest_digest, manifest, layer_digest = write_oci_layout(tmp_path / "layout", "v1", payload)
    ref = f"docker://{any_registry.host}/{fresh_repo}:v1"

    skopeo("copy", f"oci:{tmp_path / 'layout'}:v1", ref)

    raw = skopeo("inspect", "--raw", ref)
    assert raw.encode() == manifest, "skopeo changed the manifest on copy"
    assert sha256(raw.encode()) == manifest_digest
    tags = json.loads(skopeo("list-tags", f"docker://{any_registry.host}/{fresh_repo}"))
    assert tags["Tags"] == ["v1"]

    # The registry answers with the same digest and stores the layer bytes where blob_path says.
    resp = requests.get(
        f"{any_registry.url}/v2/{fresh_repo}/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=5,
    )
    assert resp.headers["Docker-Content-Digest"] == manifest_digest
    assert any_registry.blob_path(layer_digest).read_bytes() == payload

    # And skopeo copies it back out, byte for byte.
    skopeo("copy", ref, f"oci:{tmp_path / 'back'}:v1")
    back = tmp_path / "back" / "blobs" / "sha256"
    assert (back / layer_digest.split(":", 1)[1]).read_bytes() == payload
    assert (back / manifest_digest.split(":", 1)[1]).read_bytes() == manifest


def test_fresh_repo_is_unique_and_valid(fresh_repo: str, request: pytest.FixtureRequest) -> None:
    other = request.getfixturevalue("fresh_repo")  # same fixture value within a test
    assert other == fresh_repo
    assert re.fullmatch(r"t/[a-z0-9]+(?:-[a-z0-9]+)*-[0-9a-f]{6}-\d+", fresh_repo), fresh_repo
    assert repo_slug("test_x[Case A/b]") == "test-x-case-a-b"
    assert repo_slug("___") == "test"


def test_run_module_closes_stdin_and_cleans_env(tmp_path: Path) -> None:
    (tmp_path / "echo_mod.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({'stdin': sys.stdin.read(), 'argv': sys.argv[1:],"
        " 'pw': os.environ.get('STELLA_OCI_PASSWORD'), 'x': os.environ.get('X')}))\n"
        "sys.exit(3)\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "X": "1"}
    os.environ["STELLA_OCI_PASSWORD"] = "hunter2"
    try:
        code, out, err = run_module("echo_mod", "a b", Path("c"), env=env, timeout=60)
    finally:
        del os.environ["STELLA_OCI_PASSWORD"]
    assert code == 3, err
    assert json.loads(out) == {"stdin": "", "argv": ["a b", "c"], "pw": None, "x": "1"}
    fed = run_module("echo_mod", input="secret-in", env=env, timeout=60)
    assert json.loads(fed.stdout)["stdin"] == "secret-in"


def test_run_cli_runs_the_package(run_cli: RunCli) -> None:
    result = run_cli("--help", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "push" in result.stdout


def test_request_head_parser_is_bounded_and_keeps_the_body_start() -> None:
    """tests/support/http_head.py, the one request-head parser of the socket proxies: a head
    that arrives in pieces, one that never ends (over the bound), one cut before its end."""
    import socket

    from tests.support.http_head import read_request_head

    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"PUT /v2/r/blobs/uploads/x?digest=sha256:0 HTTP/1.1\r\nHost: h\r\n")
        a.sendall(b"content-length: 5\r\nX-Odd:a:b\r\nno colon\r\n\r\nhel")
        head = read_request_head(b)
        assert head is not None
        assert (head.method, head.path, head.rest) == ("PUT", "/v2/r/blobs/uploads/x?digest=sha256:0", b"hel")
        assert head.headers == [("Host", "h"), ("content-length", "5"), ("X-Odd", "a:b")]
        assert head.content_length == 5 and head.header("CONTENT-LENGTH") == "5"
        assert head.forward(drop=("host",), add=("Host: up", "Connection: close")) == (
            b"PUT /v2/r/blobs/uploads/x?digest=sha256:0 HTTP/1.1\r\ncontent-length: 5\r\nX-Odd: a:b\r\n"
            b"Host: up\r\nConnection: close\r\n\r\n"
        )
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"GET / HTTP/1.1\r\nX: " + b"y" * 5000 + b"\r\n\r\n")
        assert read_request_head(b, limit=4096) is None, "a head over the bound is refused, even whole"
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
        a.shutdown(socket.SHUT_WR)
        assert read_request_head(b) is None, "closed before the head ended"
