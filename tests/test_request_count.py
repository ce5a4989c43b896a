"""Issue 15: requests per new small blob, counted by a proxy in front of a real registry.

No timing: the counting proxy (benchmarks/latency_proxy.py at 0 RTT) parses every HTTP
request on the kept-alive streams. A push of many small files must send one ``POST`` and one
``PUT`` per new blob and no ``HEAD`` probe but the shared empty config's (docs/transport.md,
"Round trips"), one ``HEAD`` of the manifest, one manifest ``PUT`` straight under the tag, and reuse
its connections (no more connections than transfers in flight). A re-push of the same bundle
sends the manifest ``HEAD`` and the tag ``PUT``, and nothing for the blobs."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import run_module
from tests.support.bundles import make_bundle
from tests.support.registry import RunningRegistry, start_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from latency_proxy import LatencyProxy

FILES = 40


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    reg = start_registry(tmp_path / "reg")
    yield reg
    reg.stop()


def test_small_blobs_cost_one_post_one_put_and_reuse_connections(
    own_registry: RunningRegistry, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "b", {f"files/f{i:03d}.bin": 1000 + i for i in range(FILES)})
    up_host, up_port = own_registry.host.rsplit(":", 1)
    with LatencyProxy(up_host, int(up_port), rtt=0.0) as proxy:
        ref = f"127.0.0.1:{proxy.port}/count/small:v1"
        res = run_module("stella_oci", "push", bundle, ref, "-q")
        assert res.returncode == 0, res.stderr
        kinds = proxy.counts()
        sequence = list(proxy.requests)
        connections = proxy.connections
    # the blobs the manifest names, read from the registry directly (by tag and by digest)
    got = requests.get(
        f"http://{own_registry.host}/v2/count/small/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    manifest = got.json()
    manifest_digest = "sha256:" + hashlib.sha256(got.content).hexdigest()
    assert requests.head(
        f"http://{own_registry.host}/v2/count/small/manifests/{manifest_digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    ).status_code == 200
    blobs = {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}
    assert len(blobs) >= FILES + 1
    # the empty config is probed (every artifact shares it: it is there after the first push)
    # and, in this fresh repository, not there: POST + PUT for every blob
    assert kinds["POST upload"] == len(blobs), kinds
    assert kinds["PUT upload"] == len(blobs), kinds
    assert kinds["HEAD blob"] == 1, kinds
    assert kinds["PATCH upload"] == 0, kinds
    assert kinds["HEAD manifest"] == 1, kinds
    # the manifest straight under its tag: one PUT, after every blob, not PUT by digest + PUT by tag
    assert kinds["PUT manifest"] == 1, kinds
    assert sequence[0] == ("HEAD", f"/v2/count/small/manifests/{manifest_digest}"), sequence[:3]
    assert sequence[-1] == ("PUT", "/v2/count/small/manifests/v1"), sequence[-3:]
    per_blob = sum(v for k, v in kinds.items() if k.endswith(("upload", "blob"))) / len(blobs)
    assert per_blob <= 2 + 1 / len(blobs), kinds
    # connections are pooled: at most one per transfer in flight (16 for small blobs) plus
    # the first request's
    assert connections <= 17, connections
    assert json.dumps(manifest)  # the artifact is there

    # a second bundle with the same files (another export): the config is there now (HEAD,
    # nothing sent), the small files go again without a probe (POST + PUT each), and the
    # registry ends with every blob, read back directly
    other = make_bundle(
        tmp_path / "b2", {f"files/f{i:03d}.bin": 1000 + i for i in range(FILES)}, export_id="exp-test-000002"
    )
    with LatencyProxy(up_host, int(up_port), rtt=0.0) as proxy:
        res = run_module("stella_oci", "push", other, f"127.0.0.1:{proxy.port}/count/small:v2", "-q")
        assert res.returncode == 0, res.stderr
        kinds = proxy.counts()
    assert kinds["HEAD blob"] == 1 and kinds["POST upload"] == kinds["PUT upload"] == len(blobs) - 1, kinds

    # a re-push of the first bundle under another tag: the manifest is there, one HEAD finds
    # it, one PUT tags it, and no blob request at all
    with LatencyProxy(up_host, int(up_port), rtt=0.0) as proxy:
        res = run_module("stella_oci", "push", bundle, f"127.0.0.1:{proxy.port}/count/small:again", "-q")
        assert res.returncode == 0, res.stderr
        kinds = proxy.counts()
    assert kinds["HEAD manifest"] == 1 and kinds["PUT manifest"] == 1, kinds
    assert sum(v for k, v in kinds.items() if k.endswith(("upload", "blob"))) == 0, kinds
    for desc in [manifest["config"], *manifest["layers"]]:
        head = requests.head(f"http://{own_registry.host}/v2/count/small/blobs/{desc['digest']}", timeout=10)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == desc["size"], desc


def test_trivy_push_sends_each_blob_once(own_registry: RunningRegistry) -> None:
    """A Trivy DB push is two graphs (the DB artifact, then export.json and every file as its
    referrer) sharing the DB layer: each blob is uploaded once, not once per graph."""
    from collections import Counter

    from tests.support.bundles import EXAMPLES

    up_host, up_port = own_registry.host.rsplit(":", 1)
    with LatencyProxy(up_host, int(up_port), rtt=0.0) as proxy:
        res = run_module("stella_oci", "push", EXAMPLES / "trivy-db", f"127.0.0.1:{proxy.port}/count/trivy", "-q")
        assert res.returncode == 0, res.stderr
        kinds = proxy.counts()
        puts = Counter(
            path.split("digest=", 1)[1] for method, path in proxy.requests if method == "PUT" and "digest=" in path
        )
    assert puts and max(puts.values()) == 1, puts
    assert kinds["POST upload"] == kinds["PUT upload"] == len(puts), kinds


def test_manifest_put_by_tag_checks_the_digest_the_registry_answers(
    own_registry: RunningRegistry, tmp_path: Path
) -> None:
    """The manifest goes straight under its tag; the registry's Docker-Content-Digest must be
    ours (a lie: exit 3), and a registry that sends none (here: one cut short) is asked with a
    HEAD by digest whether it holds the manifest as ours."""
    from tests.support.tamper_proxy import Rule, start_tamper_proxy

    proxy = start_tamper_proxy(own_registry.host)
    proxy.keep_host = True
    try:
        lie = "sha256:" + hashlib.sha256(b"lie").hexdigest()
        proxy.rules.append(Rule(path_contains="/manifests/v1", method="PUT", set_header=("Docker-Content-Digest", lie)))
        res = run_module("stella_oci", "push", make_bundle(tmp_path / "b1", {"a.bin": 100}), f"{proxy.host}/tagput/a:v1", "-q")
        assert res.returncode == 3, res.stderr
        assert lie in res.stderr and "stored the manifest as" in res.stderr, res.stderr
        assert proxy.requests_to("/manifests/v1", "PUT") == 1

        proxy.rules[:] = [
            Rule(path_contains="/manifests/v2", method="PUT", set_header=("Docker-Content-Digest", "sha256:0123"))
        ]
        res = run_module("stella_oci", "push", make_bundle(tmp_path / "b2", {"a.bin": 200}), f"{proxy.host}/tagput/a:v2", "-q")
        assert res.returncode == 0, res.stderr
        digest = res.stdout.strip().rsplit("@", 1)[1]
        assert proxy.requests_to("/manifests/v2", "PUT") == 1
        assert proxy.requests_to(f"/manifests/{digest}", "HEAD") == 2  # absent before, present after
        assert proxy.requests_to(f"/manifests/{digest}", "PUT") == 0
    finally:
        proxy.stop()


def test_one_token_serves_a_whole_push(tmp_path: Path) -> None:
    """Against a token-auth registry (the ghcr.io / Harbor flow), a push of many small files
    asks the token service once: the manifest HEAD asks ``pull,push`` (the push needs it
    anyway), every later request of the push (uploads, the config probe, the manifest PUT)
    reuses that token, and the 16 transfers that start together do not each fetch one."""
    from tests.support.token_server import TokenServer, start_token_registry

    user, password = "robot$count", "count-pass-never-printed"
    server = TokenServer(users={user: password}).start()
    reg = start_token_registry(tmp_path / "treg", server)
    try:
        bundle = make_bundle(tmp_path / "b", {f"files/f{i:03d}.bin": 2000 + i for i in range(FILES)})
        env = {
            "STELLA_OCI_USERNAME": user,
            "STELLA_OCI_PASSWORD": password,
            "DOCKER_CONFIG": str(tmp_path / "no-docker-config"),
        }
        res = run_module("stella_oci", "push", bundle, f"{reg.host}/tok/count:v1", "-q", env=env)
        assert res.returncode == 0, res.stderr
        assert [i["scopes"] for i in server.issued] == [["repository:tok/count:pull,push"]], server.issued
        # a re-push under another tag: one HEAD (a 401 first: a new process), one PUT, one token
        res = run_module("stella_oci", "push", bundle, f"{reg.host}/tok/count:v2", "-q", env=env)
        assert res.returncode == 0, res.stderr
        assert len(server.issued) == 2, server.issued
    finally:
        reg.stop()
        server.stop()
