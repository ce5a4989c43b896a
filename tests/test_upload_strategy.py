"""Issue 15, big blobs: how a blob above the old 64 MiB part size is uploaded, request by request.

No timing: proxies in front of a real registry record every request. By default a big blob goes
as ``POST`` + one streamed ``PUT`` (no ``PATCH``): each part costs the distribution registry a
round of work, ghcr.io refuses ``PATCH`` bodies over 4 MiB, and oras-go and containerd upload
this way. Parts are sent only when asked for: ``--chunk-size``, the registry's
``OCI-Chunk-Min-Length``, or a ``413`` to the whole blob (docs/transport.md, "Uploads").
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from stella_oci.transport import RegistryClient, RetryPolicy, TransportOptions
from stella_oci.transport.uploads import DEFAULT_PART
from tests.conftest import run_module
from tests.support.bundles import make_bundle
from tests.support.fault_proxy import FaultProxy, StatusRule
from tests.support.registry import RunningRegistry, start_registry
from tests.support.tamper_proxy import Rule, TamperProxy
from tests.test_transport_basic import MiB, file_opener, make_blob

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from latency_proxy import LatencyProxy

BIG = DEFAULT_PART + MiB + 123
"""Above the old default part size: before, two PATCHes and a closing PUT."""
FAST = RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0, total_seconds=10)


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    # relative upload URLs: the Location survives the tamper proxy (which rewrites Host)
    r = start_registry(tmp_path_factory.mktemp("reg"), extra={"http": {"relativeurls": True}})
    yield r
    r.stop()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("b") / "bundle", {"db/big.bin": BIG})


def big_digest(bundle: Path) -> str:
    h = hashlib.sha256()
    with open(bundle / "db/big.bin", "rb") as fh:
        while b := fh.read(4 * MiB):
            h.update(b)
    return "sha256:" + h.hexdigest()


def stored(reg: RunningRegistry, repo: str, digest: str) -> int | None:
    """The size the registry reports for ``digest`` in ``repo`` (None: not there)."""
    r = requests.head(f"{reg.url}/v2/{repo}/blobs/{digest}", timeout=10)
    return int(r.headers["Content-Length"]) if r.status_code == 200 else None


def push_counted(reg: RunningRegistry, bundle: Path, repo: str, *extra: str) -> dict[str, int]:
    host, port = reg.host.rsplit(":", 1)
    with LatencyProxy(host, int(port), rtt=0.0) as proxy:
        res = run_module("stella_oci", "push", bundle, f"127.0.0.1:{proxy.port}/{repo}:v1", "-q", *extra)
        assert res.returncode == 0, res.stderr
        return dict(proxy.counts())


def test_big_blob_goes_in_one_put(reg: RunningRegistry, bundle: Path) -> None:
    kinds = push_counted(reg, bundle, "strategy/one-put")
    # the big blob, export.json and the empty config: a POST and one PUT each, not one PATCH
    assert kinds.get("PATCH upload", 0) == 0, kinds
    assert kinds["POST upload"] == 3 and kinds["PUT upload"] == 3, kinds
    assert stored(reg, "strategy/one-put", big_digest(bundle)) == BIG


def test_chunk_size_option_sends_parts(reg: RunningRegistry, bundle: Path) -> None:
    kinds = push_counted(reg, bundle, "strategy/option", "--chunk-size", "16MiB")
    # 4 parts of 16 MiB and the rest, then the closing PUT (and the small blobs' PUTs)
    assert kinds["PATCH upload"] == 5, kinds
    assert kinds["POST upload"] == 3 and kinds["PUT upload"] == 3, kinds
    assert stored(reg, "strategy/option", big_digest(bundle)) == BIG


def test_bad_chunk_size_is_refused_before_any_request(reg: RunningRegistry, bundle: Path) -> None:
    res = run_module("stella_oci", "push", bundle, f"{reg.host}/strategy/bad:v1", "--chunk-size", "1k")
    assert res.returncode == 2, res.stderr
    assert "--chunk-size" in res.stderr
    assert stored(reg, "strategy/bad", big_digest(bundle)) is None


def test_registry_announcing_a_minimum_part_gets_parts(reg: RunningRegistry, bundle: Path) -> None:
    host, port = reg.host.rsplit(":", 1)
    proxy = TamperProxy((host, int(port)))
    proxy.rules.append(
        Rule("/blobs/uploads/", method="POST", set_header=("OCI-Chunk-Min-Length", str(MiB)))
    )
    try:
        res = run_module("stella_oci", "push", bundle, f"{proxy.host}/strategy/min-length:v1", "-q")
        assert res.returncode == 0, res.stderr
    finally:
        proxy.stop()
    uploads = [m for m, p in proxy.requests if "/blobs/uploads/" in p]
    # parts of the default 64 MiB (above the announced minimum): 64 MiB and the rest
    assert uploads.count("PATCH") == 2, proxy.requests
    assert uploads.count("POST") == 3 and uploads.count("PUT") == 3, proxy.requests
    assert stored(reg, "strategy/min-length", big_digest(bundle)) == BIG


def test_413_to_the_whole_blob_goes_on_in_parts(reg: RunningRegistry, tmp_path: Path) -> None:
    path, digest = make_blob(tmp_path / "big", BIG, seed=15)
    proxy = FaultProxy(reg.host)
    # a proxy in front of the registry that takes no request body this large (Cloudflare: 100 MB)
    proxy.rules.append(StatusRule(413, method="PUT", path_contains="/blobs/uploads/", times=1))
    try:
        client = RegistryClient(proxy.host, TransportOptions(retry=FAST))
        assert client.upload_blob("strategy/too-large", digest, BIG, file_opener(path, 4 * MiB)) == "uploaded"
    finally:
        proxy.stop()
    seq = [(r.method, r.outcome) for r in proxy.requests if "/blobs/" in r.path]
    puts = [r for r in proxy.requests if r.method == "PUT"]
    assert puts[0].content_length == BIG and puts[0].outcome == "answered 413", seq
    patches = [r for r in proxy.requests if r.method == "PATCH"]
    assert [p.content_range for p in patches] == [f"0-{DEFAULT_PART - 1}", f"{DEFAULT_PART}-{BIG - 1}"], seq
    assert puts[-1].content_length == 0 and puts[-1].outcome == "forwarded", seq
    assert stored(reg, "strategy/too-large", digest) == BIG


def test_413_to_parts_too_is_exit_3_naming_chunk_size(reg: RunningRegistry, tmp_path: Path) -> None:
    small = make_bundle(tmp_path / "small", {"db/a.bin": b"a" * 4096})
    proxy = FaultProxy(reg.host)
    for method in ("PUT", "PATCH"):
        proxy.rules.append(StatusRule(413, method=method, path_contains="/blobs/uploads/", times=-1))
    try:
        res = run_module(
            "stella_oci", "push", small, f"{proxy.host}/strategy/refused:v1", "--retries", "1", "--format", "json"
        )
    finally:
        proxy.stop()
    assert res.returncode == 3, res.stdout + res.stderr
    assert "413" in res.stdout and "--chunk-size" in res.stdout, res.stdout


def test_tls_sockets_get_pieces_plain_sockets_whole_bodies() -> None:
    """A TLS socket's ``send`` writes all it is given (its timeout bounds the whole call): the
    counting socket hands it at most TLS_PIECE at a time, so a slow link shows progress to the
    minimum-speed window; a plain socket gets the whole rest (``send`` returns what fit)."""
    import socket
    import ssl
    import threading
    from types import SimpleNamespace

    from stella_oci.transport import deadline

    body = bytes(range(256)) * (4 * MiB // 256 + 3)
    guard = SimpleNamespace(moved=0, raise_if_fired=lambda: None)

    a, b = socket.socketpair()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls = ctx.wrap_socket(socket.socket(), server_hostname="registry.test", do_handshake_on_connect=False)
    sizes: list[int] = []

    def fake_send(data: memoryview, *args: object) -> int:  # stands in for the TLS write
        sizes.append(len(data))
        return len(data)

    tls.send = fake_send  # type: ignore[method-assign,assignment]
    conn = SimpleNamespace(stella_guard=guard)
    deadline._CountingSocket(tls, conn).sendall(body)  # type: ignore[arg-type]
    assert max(sizes) == deadline.TLS_PIECE and sum(sizes) == len(body) == guard.moved
    tls.close()

    got = bytearray()

    def read_all() -> None:
        while data := b.recv(1 << 20):
            got.extend(data)

    reader = threading.Thread(target=read_all)
    reader.start()
    a.settimeout(10)
    guard.moved = 0
    deadline._CountingSocket(a, conn).sendall(body)  # type: ignore[arg-type]
    a.close()
    reader.join(10)
    b.close()
    assert bytes(got) == body and guard.moved == len(body)
