"""Faults injected by a real TCP proxy between RegistryClient and the real registry."""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stella_oci.errors import TransientError
from stella_oci.transport import RegistryClient, RetryPolicy, TransportOptions
from tests.support.fault_proxy import FaultProxy, StatusRule
from tests.support.registry import RunningRegistry, start_registry
from tests.test_transport_basic import OCI_MANIFEST, MiB, file_opener, make_blob

FAST = RetryPolicy(attempts=6, base_delay=0.05, max_delay=2.0, total_seconds=15)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    reg = start_registry(tmp_path / "reg")
    yield reg
    reg.stop()


@pytest.fixture
def proxy(registry: RunningRegistry) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.host)
    yield p
    p.stop()


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while b := fh.read(MiB):
            h.update(b)
    return "sha256:" + h.hexdigest()


def test_upload_cut_mid_patch_completes_with_exact_blob(
    registry: RunningRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    size = 6 * MiB + 777
    path, digest = make_blob(tmp_path / "b", size, seed=11)
    proxy.cut_upload_after = 2 * MiB + 300_000  # in the middle of the third PATCH
    client = RegistryClient(proxy.host, TransportOptions(chunk_size=MiB, retry=FAST))
    assert client.upload_blob("cut/up", digest, size, file_opener(path, 128 * 1024)) == "uploaded"
    assert proxy.cuts == 1
    assert any(r.outcome == "cut during upload" for r in proxy.requests)
    stored = registry.blob_path(digest)
    assert stored.stat().st_size == size and sha(stored) == digest


def test_upload_resumes_at_registry_offset(
    registry: RunningRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    size = 5 * MiB + 5
    path, digest = make_blob(tmp_path / "b", size, seed=12)
    proxy.swallow_upload = 2 * MiB  # the PATCH for bytes 2 MiB.. never reaches the registry
    client = RegistryClient(proxy.host, TransportOptions(chunk_size=MiB, retry=FAST))
    assert client.upload_blob("resume/up", digest, size, file_opener(path)) == "uploaded"
    outcomes = [(r.method, r.outcome, r.content_range) for r in proxy.requests]
    swallowed = [i for i, r in enumerate(proxy.requests) if r.outcome == "swallowed"]
    assert len(swallowed) == 1, outcomes
    after = proxy.requests[swallowed[0] + 1 :]
    # the client asked the registry where the session stands, then went on from 2 MiB
    assert any(r.method == "GET" and "/blobs/uploads/" in r.path for r in after), outcomes
    patches = [r for r in after if r.method == "PATCH"]
    assert patches and patches[0].content_range == f"{2 * MiB}-{3 * MiB - 1}", outcomes
    # exactly one upload session, and not one byte sent twice to the registry
    assert sum(1 for r in proxy.requests if r.method == "POST") == 1
    assert proxy.body_bytes_up == size
    stored = registry.blob_path(digest)
    assert stored.stat().st_size == size and sha(stored) == digest


def test_download_cut_resumes_with_range(
    registry: RunningRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    size = 6 * MiB + 3
    path, digest = make_blob(tmp_path / "b", size, seed=13)
    direct = RegistryClient(registry.host, TransportOptions(chunk_size=8 * MiB))
    direct.upload_blob("dl/cut", digest, size, file_opener(path))
    proxy.cut_download_after = 3 * MiB + 12345
    client = RegistryClient(proxy.host, TransportOptions(retry=FAST))
    h = hashlib.sha256()
    n = 0
    with client.open_blob("dl/cut", digest) as chunks:
        for c in chunks:
            h.update(c)
            n += len(c)
    assert n == size and "sha256:" + h.hexdigest() == digest
    assert proxy.cuts == 1
    gets = [r for r in proxy.requests if r.method == "GET" and "/blobs/" in r.path]
    assert len(gets) == 2
    assert gets[0].range is None
    # resumed exactly where the cut left the client (a multiple of what reached it)
    assert gets[1].range is not None and gets[1].range.startswith("bytes=")
    resumed_at = int(gets[1].range[6:].rstrip("-"))
    assert 0 < resumed_at <= 3 * MiB + 12345


def test_429_and_503_are_retried_honouring_retry_after(
    registry: RunningRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    direct = RegistryClient(registry.host, TransportOptions())
    cfg = tmp_path / "cfg"
    cfg.write_bytes(b"{}")
    d = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    direct.upload_blob("rl/r", d, 2, file_opener(cfg))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": d, "size": 2},
            "layers": [],
        }
    ).encode()
    direct.put_manifest("rl/r", "v1", manifest, OCI_MANIFEST)
    proxy.rules = [
        StatusRule(429, {"Retry-After": "1"}, times=1, path_contains="/manifests/"),
        StatusRule(503, times=2, path_contains="/manifests/"),
    ]
    client = RegistryClient(proxy.host, TransportOptions(retry=FAST))
    start = time.monotonic()
    got = client.get_manifest("rl/r", "v1", [OCI_MANIFEST])
    elapsed = time.monotonic() - start
    assert got.data == manifest
    assert elapsed >= 1.0
    assert [r.hits for r in proxy.rules] == [1, 2]
    # Retry-After as an HTTP date, about 2 s ahead
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    proxy.rules = [StatusRule(429, {"Retry-After": when}, times=1, path_contains="/manifests/")]
    start = time.monotonic()
    assert client.head_manifest("rl/r", "v1", [OCI_MANIFEST]).size == len(manifest)
    assert time.monotonic() - start >= 0.9


def test_endless_503_gives_transient_error_in_bounded_time(proxy: FaultProxy) -> None:
    proxy.rules = [StatusRule(503, times=-1)]
    policy = RetryPolicy(attempts=50, base_delay=0.1, max_delay=1.0, total_seconds=3.0)
    client = RegistryClient(proxy.host, TransportOptions(retry=policy))
    start = time.monotonic()
    with pytest.raises(TransientError) as exc:
        client.get_manifest("x/y", "v1", [OCI_MANIFEST])
    elapsed = time.monotonic() - start
    assert exc.value.exit_code == 10
    assert "503" in str(exc.value)
    assert elapsed < 5.0
    assert proxy.rules[0].hits >= 2


def test_endless_429_on_upload_gives_transient_error(proxy: FaultProxy, tmp_path: Path) -> None:
    path, digest = make_blob(tmp_path / "b", 100_000, seed=3)
    proxy.rules = [StatusRule(429, {"Retry-After": "1"}, times=-1, method="POST")]
    policy = RetryPolicy(attempts=3, base_delay=0.1, max_delay=2.0, total_seconds=10.0)
    client = RegistryClient(proxy.host, TransportOptions(retry=policy))
    start = time.monotonic()
    with pytest.raises(TransientError):
        client.upload_blob("x/y", digest, 100_000, file_opener(path))
    elapsed = time.monotonic() - start
    assert 2.0 <= elapsed < 8.0  # waited the asked 1 s twice, then gave up


def test_mount_sends_no_blob_bytes(registry: RunningRegistry, proxy: FaultProxy, tmp_path: Path) -> None:
    size = 3 * MiB
    path, digest = make_blob(tmp_path / "b", size, seed=14)
    client = RegistryClient(proxy.host, TransportOptions(chunk_size=MiB))
    assert client.upload_blob("mount/src", digest, size, file_opener(path)) == "uploaded"
    assert proxy.body_bytes_up == size
    assert (
        client.upload_blob("mount/dst", digest, size, file_opener(path), mount_from=["mount/src"])
        == "mounted"
    )
    assert proxy.body_bytes_up == size  # not one more byte
    assert client.blob_size("mount/dst", digest) == size
    # without a mount source the same blob is sent again to a third repo
    assert client.upload_blob("mount/third", digest, size, file_opener(path)) == "uploaded"
    assert proxy.body_bytes_up == 2 * size


@pytest.mark.slow
def test_large_blob_survives_several_cuts_both_ways(
    registry: RunningRegistry, proxy: FaultProxy, tmp_path: Path
) -> None:
    size = 96 * MiB + 1
    path, digest = make_blob(tmp_path / "huge", size, seed=99)
    client = RegistryClient(proxy.host, TransportOptions(chunk_size=16 * MiB, retry=FAST))
    proxy.swallow_upload = 40 * MiB
    assert client.upload_blob("huge/r", digest, size, file_opener(path)) == "uploaded"
    assert proxy.body_bytes_up == size  # resumed at the registry's offset: nothing re-sent
    stored = registry.blob_path(digest)
    assert stored.stat().st_size == size and sha(stored) == digest
    for cut_at in (10 * MiB + 1, 50 * MiB + 7):
        proxy.cut_download_after = cut_at
        proxy.download_bytes = 0
        h = hashlib.sha256()
        n = 0
        with client.open_blob("huge/r", digest) as chunks:
            for c in chunks:
                h.update(c)
                n += len(c)
        assert n == size and "sha256:" + h.hexdigest() == digest
    assert proxy.cuts == 3
