"""Issue 3 test 4, end to end: a 300 MB push and pull through a real proxy that cuts the
connection; the transfer resumes through the copy engine and the registry ends up holding
exactly the right blob, the pulled bundle exactly the right file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import stella_oci
from stella_oci.transport import RetryPolicy, TransportOptions
from stella_oci.verbs.common import RunOptions
from tests.support.bundles import make_bundle, tree_digests
from tests.support.fault_proxy import FaultProxy
from tests.support.registry import RunningRegistry, start_registry

MB = 1000 * 1000
FAST = RetryPolicy(attempts=6, base_delay=0.05, max_delay=1.0, total_seconds=30)


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    reg = start_registry(tmp_path / "reg")
    yield reg
    reg.stop()


@pytest.fixture
def proxy(own_registry: RunningRegistry) -> Iterator[FaultProxy]:
    p = FaultProxy(own_registry.host)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def big_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("big") / "bundle", {"db/trivy.db": 300 * MB, "metadata.json": b"{}"})


def run_opts() -> RunOptions:
    return RunOptions(transport=TransportOptions(retry=FAST))


def _blob(own_registry: RunningRegistry, bundle: Path) -> tuple[Path, str]:
    import json

    doc = json.loads((bundle / "export.json").read_text())
    entry = next(e for e in doc["contents"] if e["path"] == "db/trivy.db")
    return own_registry.blob_path(entry["digest"]), entry["digest"]


@pytest.mark.slow
def test_push_resumes_from_registry_offset_after_a_lost_chunk(own_registry, proxy, big_bundle, tmp_path):
    proxy.swallow_upload = 100 * MB  # a PATCH starting past 100 MB never reaches the registry
    res = stella_oci.push(big_bundle, f"{proxy.host}/resume/push:v1", run=run_opts())
    assert any(r.outcome == "swallowed" for r in proxy.requests)
    assert sum(1 for r in proxy.requests if r.method == "POST" and "/blobs/uploads/" in r.path) >= 1
    stored, digest = _blob(own_registry, big_bundle)
    assert stored.stat().st_size == 300 * MB
    assert tree_digests(stored.parent)["data"] == digest.split(":")[1]
    # and the artifact verifies through the registry directly
    assert stella_oci.verify(f"{own_registry.host}/resume/push@{res.digest}").digest == res.digest


@pytest.mark.slow
def test_push_survives_a_cut_mid_body_and_pull_survives_a_cut_download(own_registry, proxy, big_bundle, tmp_path):
    proxy.cut_upload_after = 120 * MB
    res = stella_oci.push(big_bundle, f"{proxy.host}/resume/cut:v1", run=run_opts())
    assert proxy.cuts >= 1
    stored, digest = _blob(own_registry, big_bundle)
    assert tree_digests(stored.parent)["data"] == digest.split(":")[1]

    proxy.cut_upload_after = None
    proxy.cut_download_after = 150 * MB
    out = tmp_path / "got"
    got = stella_oci.pull(f"{proxy.host}/resume/cut@{res.digest}", out, run=run_opts())
    assert got.digest == res.digest
    assert tree_digests(out) == tree_digests(big_bundle)
    assert any(r.range for r in proxy.requests if r.method == "GET"), "the download resumed with a Range request"
