"""Issue 14, acceptance 6: several ``--registry-mirror`` entries for one source are tried in
order on connection failure, 5xx and 404, and the output says which one served."""

from __future__ import annotations

import json
import socket

import pytest

from stella_oci.errors import InvalidInputError
from stella_oci.oci.mirrors import mirror_candidates, parse_mirror_args
from stella_oci.oci.reference import parse_reference
from tests.support.bundles import copy_example, tree
from tests.support.fault_proxy import Fault, FaultProxy


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def test_mirror_arguments_keep_their_order() -> None:
    m = parse_mirror_args(["ghcr.io=a.local:5000,b.local:5000", "ghcr.io=c.local:5000/x", "quay.io=q:5000"])
    assert m == {"ghcr.io": ["a.local:5000", "b.local:5000", "c.local:5000/x"], "quay.io": ["q:5000"]}
    found = mirror_candidates(parse_reference("ghcr.io/acme/exports:v1"), m)
    assert [str(r) for r in found] == ["a.local:5000/acme/exports:v1", "b.local:5000/acme/exports:v1",
                                       "c.local:5000/x/acme/exports:v1"]
    with pytest.raises(InvalidInputError):
        parse_mirror_args(["ghcr.io=a.local:5000,"])


@pytest.fixture
def pushed(registry, fresh_repo, run_cli, tmp_path):
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    code, out, err = run_cli("push", bundle, f"{registry.host}/up/{fresh_repo}:v1", "--format", "json")
    assert code == 0, err
    return bundle, json.loads(out)["digest"]


def test_first_mirror_down_second_serves(registry, fresh_repo, pushed, run_cli, tmp_path):
    bundle, digest = pushed
    down = f"127.0.0.1:{closed_port()}"
    source = "registry.invalid:5000"
    ref = f"{source}/{fresh_repo}:v1"
    mirrors = f"{source}={down}/up,{registry.host}/up"
    fast = ("--retries", "1", "--timeout", "5")
    code, out, err = run_cli("pull", ref, "-o", tmp_path / "got", "--registry-mirror", mirrors, *fast,
                             "--format", "json")
    assert code == 0, err + out
    doc = json.loads(out)
    assert doc["servedBy"] == f"{registry.host}/up/{fresh_repo}" and doc["digest"] == digest
    assert tree(tmp_path / "got") == tree(bundle)

    # text output says it too; the option repeated is the same list
    code, out, err = run_cli("verify", ref, "--registry-mirror", f"{source}={down}/up",
                             "--registry-mirror", f"{source}={registry.host}/up", *fast)
    assert code == 0, err
    assert f"served by mirror {registry.host}/up/{fresh_repo}" in out

    # 404 on the first (a mirror without the artifact): the second serves; copy says so too
    code, out, err = run_cli("copy", ref, f"oci:{tmp_path / 'layout'}:v1", "--registry-mirror",
                             f"{source}={registry.host}/empty,{registry.host}/up", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["servedBy"] == f"{registry.host}/up/{fresh_repo}"

    # one mirror only: no failover, still named
    code, out, err = run_cli("verify", ref, "--registry-mirror", f"{source}={registry.host}/up", "--format", "json")
    assert code == 0 and json.loads(out)["servedBy"] == f"{registry.host}/up/{fresh_repo}"

    # every mirror fails: the error names each one and what it answered
    code, out, err = run_cli("verify", ref, "--registry-mirror", f"{source}={down}/up,{registry.host}/empty",
                             *fast, "--format", "json")
    assert code == 4, out
    message = json.loads(out)["error"]["message"]
    assert down in message and f"{registry.host}/empty" in message


def test_5xx_on_the_first_mirror_fails_over(registry, fresh_repo, pushed, run_cli, tmp_path):
    _, digest = pushed
    proxy = FaultProxy(registry.host)
    proxy.faults.append(Fault("status", path="/manifests/", times=-1, status=503))
    try:
        source = "registry.invalid:5000"
        code, out, err = run_cli(
            "verify", f"{source}/{fresh_repo}:v1", "--registry-mirror",
            f"{source}={proxy.host}/up,{registry.host}/up", "--retries", "1", "--format", "json",
        )
    finally:
        proxy.stop()
    assert code == 0, err + out
    doc = json.loads(out)
    assert doc["servedBy"] == f"{registry.host}/up/{fresh_repo}" and doc["digest"] == digest
