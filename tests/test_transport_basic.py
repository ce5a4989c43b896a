"""RegistryClient against the real distribution registry binary (no auth, plain HTTP)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stella_oci.errors import NotFoundError, OfflineError, TransientError
from stella_oci.oci.digest import iter_file
from stella_oci.transport import RegistryClient, RetryPolicy, TransportOptions
from stella_oci.transport.client import is_loopback
from tests.support.registry import RunningRegistry, free_port, start_registry
from tests.support.registry_api import delete_manifest, list_tags, ping
from tests.support.tls import make_ca

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    reg = start_registry(tmp_path / "reg")
    yield reg
    reg.stop()


def make_blob(path: Path, size: int, seed: int = 0) -> tuple[Path, str]:
    """Write ``size`` pseudo-random bytes (deterministic per seed) and return (path, digest)."""
    h = hashlib.sha256()
    block = hashlib.sha256(f"seed-{seed}".encode()).digest() * (MiB // 32)
    with open(path, "wb") as fh:
        left = size
        i = 0
        while left:
            piece = hashlib.sha256(block[:64] + i.to_bytes(8, "big")).digest() + block
            piece = piece[: min(left, len(piece))]
            fh.write(piece)
            h.update(piece)
            left -= len(piece)
            i += 1
    return path, "sha256:" + h.hexdigest()


def file_opener(path: Path, chunk: int = MiB):
    @contextlib.contextmanager
    def opener(offset: int) -> Iterator[Iterator[bytes]]:
        yield iter_file(path, offset, chunk)

    return opener


def read_blob(client: RegistryClient, repo: str, digest: str, offset: int = 0) -> bytes:
    out = bytearray()
    with client.open_blob(repo, digest, offset) as chunks:
        for c in chunks:
            out += c
    return bytes(out)


def test_loopback_detection(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1:5000")
    assert is_loopback("127.3.4.5")
    assert is_loopback("localhost:80")
    assert is_loopback("[::1]:5000")
    assert not is_loopback("ghcr.io")
    assert not is_loopback("10.0.0.1:5000")
    assert RegistryClient("127.0.0.1:5000", TransportOptions()).scheme == "http"
    assert RegistryClient("ghcr.io", TransportOptions()).scheme == "https"
    assert RegistryClient("ghcr.io", TransportOptions(plain_http=True)).scheme == "http"
    ca, _, _ = make_ca(tmp_path / "ca")  # the CA file must exist and load (transport/tlsfiles.py)
    assert RegistryClient("localhost:5000", TransportOptions(ca_file=str(ca.cert))).scheme == "https"


def test_small_blob_upload_roundtrip_and_exists(registry: RunningRegistry, tmp_path: Path) -> None:
    path, digest = make_blob(tmp_path / "small", 300_000)
    client = RegistryClient(registry.host, TransportOptions(chunk_size=MiB))
    seen: list[int] = []
    assert client.blob_size("a/b", digest) is None
    assert client.upload_blob("a/b", digest, 300_000, file_opener(path), on_bytes=seen.append) == "uploaded"
    assert sum(seen) == 300_000
    assert registry.blob_path(digest).read_bytes() == path.read_bytes()
    assert client.blob_size("a/b", digest) == 300_000
    assert read_blob(client, "a/b", digest) == path.read_bytes()
    assert read_blob(client, "a/b", digest, 123_456) == path.read_bytes()[123_456:]
    assert client.upload_blob("a/b", digest, 300_000, file_opener(path)) == "exists"
    client.close()


def test_large_blob_chunked_upload(registry: RunningRegistry, tmp_path: Path) -> None:
    size = 3 * MiB + 12345
    path, digest = make_blob(tmp_path / "large", size, seed=1)
    client = RegistryClient(registry.host, TransportOptions(chunk_size=MiB))
    seen: list[int] = []
    assert (
        client.upload_blob("big", digest, size, file_opener(path, 256 * 1024), on_bytes=seen.append)
        == "uploaded"
    )
    assert sum(seen) == size
    stored = registry.blob_path(digest)
    assert stored.stat().st_size == size
    assert "sha256:" + hashlib.sha256(stored.read_bytes()).hexdigest() == digest
    got = hashlib.sha256()
    n = 0
    with client.open_blob("big", digest) as chunks:
        for c in chunks:
            assert len(c) <= MiB
            got.update(c)
            n += len(c)
    assert n == size and "sha256:" + got.hexdigest() == digest


def test_wrong_digest_is_a_verification_error(registry: RunningRegistry, tmp_path: Path) -> None:
    from stella_oci.errors import VerificationError

    path, _ = make_blob(tmp_path / "x", 1000)
    client = RegistryClient(registry.host, TransportOptions())
    wrong = "sha256:" + "0" * 64
    with pytest.raises(VerificationError) as exc:
        client.upload_blob("v", wrong, 1000, file_opener(path))
    assert exc.value.exit_code == 3
    assert "DIGEST_INVALID" in str(exc.value)


def test_manifests_put_get_head_delete_tags(registry: RunningRegistry, tmp_path: Path) -> None:
    client = RegistryClient(registry.host, TransportOptions())
    cfg = b"{}"
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    cpath = tmp_path / "cfg"
    cpath.write_bytes(cfg)
    client.upload_blob("m/r", cfg_digest, 2, file_opener(cpath))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.test",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg_digest, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg_digest, "size": 2}],
        },
        sort_keys=True,
    ).encode()
    mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    put = client.put_manifest("m/r", "v1", manifest, OCI_MANIFEST)
    assert put.digest_header == mdigest
    got = client.get_manifest("m/r", "v1", [OCI_MANIFEST])
    assert got.data == manifest and got.media_type == OCI_MANIFEST and got.digest_header == mdigest
    head = client.head_manifest("m/r", mdigest, [OCI_MANIFEST])
    assert head.size == len(manifest) and head.digest_header == mdigest
    for i in range(3):
        client.put_manifest("m/r", f"t{i}", manifest, OCI_MANIFEST)
    assert sorted(list_tags(client, "m/r")) == ["t0", "t1", "t2", "v1"]
    # distribution 2.8 has no referrers API: None means "use the tag fallback"
    assert client.get_referrers("m/r", mdigest) is None
    delete_manifest(client, "m/r", mdigest)
    with pytest.raises(NotFoundError):
        client.get_manifest("m/r", mdigest, [OCI_MANIFEST])


def test_not_found_mapping(registry: RunningRegistry) -> None:
    client = RegistryClient(registry.host, TransportOptions())
    missing = "sha256:" + "a" * 64
    with pytest.raises(NotFoundError) as exc:
        client.get_manifest("nope/repo", "latest", [OCI_MANIFEST])
    assert exc.value.exit_code == 4
    assert registry.host in str(exc.value) and "nope/repo" in str(exc.value)
    with pytest.raises(NotFoundError):
        client.head_manifest("nope/repo", missing, [OCI_MANIFEST])
    with pytest.raises(NotFoundError):
        client.open_blob("nope/repo", missing)
    with pytest.raises(NotFoundError):
        list_tags(client, "nope/repo")
    assert client.blob_size("nope/repo", missing) is None


def test_unreachable_registry_is_transient_and_bounded() -> None:
    port = free_port()  # nothing listens there
    client = RegistryClient(f"127.0.0.1:{port}", TransportOptions())
    start = time.monotonic()
    with pytest.raises(TransientError) as exc:
        ping(client)
    elapsed = time.monotonic() - start
    assert exc.value.exit_code == 10
    assert elapsed < 15
    assert f"127.0.0.1:{port}" in str(exc.value) and "refused" in str(exc.value).lower()


def test_offline_refuses_before_any_socket() -> None:
    port = free_port()
    client = RegistryClient(f"127.0.0.1:{port}", TransportOptions(offline=True))
    start = time.monotonic()
    with pytest.raises(OfflineError) as exc:
        client.get_manifest("r", "latest", [OCI_MANIFEST])
    assert exc.value.exit_code == 5
    assert time.monotonic() - start < 0.5


def test_mount_between_repositories(registry: RunningRegistry, tmp_path: Path) -> None:
    path, digest = make_blob(tmp_path / "m", 2 * MiB, seed=7)
    client = RegistryClient(registry.host, TransportOptions(chunk_size=MiB))
    assert client.upload_blob("src/one", digest, 2 * MiB, file_opener(path)) == "uploaded"
    assert client.blob_size("dst/two", digest) is None
    assert (
        client.upload_blob("dst/two", digest, 2 * MiB, file_opener(path), mount_from=["src/one"]) == "mounted"
    )
    assert client.blob_size("dst/two", digest) == 2 * MiB
    # A source that does not have it: falls back to a real upload
    path2, digest2 = make_blob(tmp_path / "m2", 5000, seed=8)
    assert (
        client.upload_blob("dst/two", digest2, 5000, file_opener(path2), mount_from=["src/none"])
        == "uploaded"
    )
    assert client.blob_size("dst/two", digest2) == 5000


def test_retry_policy_is_respected_on_refused_connection() -> None:
    port = free_port()
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, total_seconds=5)
    client = RegistryClient(f"127.0.0.1:{port}", TransportOptions(retry=policy))
    with pytest.raises(TransientError) as exc:
        client.blob_size("r", "sha256:" + "b" * 64)
    assert "3 tries" in str(exc.value)


def test_upload_and_download_stream_without_buffering(registry: RunningRegistry, tmp_path: Path) -> None:
    import tracemalloc

    size = 24 * MiB
    path, digest = make_blob(tmp_path / "mem", size, seed=5)
    client = RegistryClient(registry.host, TransportOptions(chunk_size=8 * MiB))
    ping(client)
    tracemalloc.start()
    try:
        assert client.upload_blob("mem/up", digest, size, file_opener(path)) == "uploaded"
        _, peak_up = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        h = hashlib.sha256()
        with client.open_blob("mem/up", digest) as chunks:
            for c in chunks:
                h.update(c)
        _, peak_down = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "sha256:" + h.hexdigest() == digest
    # a chunk is 8 MiB and the blob 24 MiB: holding either would show here
    assert peak_up < 5 * MiB, peak_up
    assert peak_down < 5 * MiB, peak_down
