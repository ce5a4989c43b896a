"""Issue 11 acceptance 3: 8 concurrent pushes of different bundles into one repository, 5
rounds, 40/40 exit 0 (CLI subprocesses, a real registry). The bundles share the empty config
blob, which every push probes and which none may disturb for the others: existence is
probed with HEAD, never with a mount from the same repository."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stella_oci.oci import mediatypes as mt
from stella_oci.oci.digest import sha256_digest
from stella_oci.transport import RegistryClient, TransportOptions
from tests.conftest import run_module
from tests.support.bundles import make_bundle
from tests.support.registry import RunningRegistry, start_registry

WRITERS = 8
ROUNDS = 5


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    reg = start_registry(tmp_path / "reg")
    yield reg
    reg.stop()


def test_concurrent_pushes_into_one_repository(own_registry: RunningRegistry, tmp_path: Path) -> None:
    repo = f"{own_registry.host}/race/shared"
    outcomes: list[tuple[int, int, int, str]] = []
    digests: dict[str, str] = {}
    for rnd in range(ROUNDS):
        bundles = [
            make_bundle(
                tmp_path / f"r{rnd}w{w}",
                {
                    "data/a.json": f'{{"round": {rnd}, "writer": {w}}}'.encode(),
                    "data/b.bin": 20_000 + w,
                    # shared by every writer: each push probes them while others PUT manifests
                    **{f"common/c{i}.json": f'{{"common": {i}}}'.encode() for i in range(4)},
                },
                export_id=f"exp-race-{rnd:02d}-{w:02d}",
            )
            for w in range(WRITERS)
        ]
        with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
            futures = {
                pool.submit(
                    run_module,
                    "stella_oci",
                    "push",
                    b,
                    f"{repo}:r{rnd}-w{w}",
                    "--format",
                    "json",
                    "-q",
                    timeout=300,
                ): (rnd, w)
                for w, b in enumerate(bundles)
            }
            for fut in concurrent.futures.as_completed(futures):
                rnd_w, w = futures[fut]
                res = fut.result()
                outcomes.append((rnd_w, w, res.returncode, res.stderr.strip()[-400:]))
                if res.returncode == 0:
                    digests[f"r{rnd_w}-w{w}"] = json.loads(res.stdout)["digest"]
    failed = [o for o in outcomes if o[2] != 0]
    assert not failed, failed
    assert len(outcomes) == WRITERS * ROUNDS
    # every manifest is whole in the registry, read directly, with every blob it names
    client = RegistryClient(own_registry.host, TransportOptions())
    for tag, digest in digests.items():
        got = client.get_manifest("race/shared", tag, [mt.OCI_MANIFEST])
        assert sha256_digest(got.data) == digest
        doc = json.loads(got.data)
        for desc in [doc["config"], *doc["layers"]]:
            assert client.blob_size("race/shared", desc["digest"]) == desc["size"], (tag, desc)


def test_existence_probes_leave_the_blob_readable_for_others(
    own_registry: RunningRegistry, tmp_path: Path
) -> None:
    """Pushes probing a blob that others are reading: every probe says "exists", and every
    reader's HEAD answers 200 (a self-mount probe rewrites the link on registry 2.8: 500s)."""
    import threading

    from stella_oci.errors import StellaOciError

    data = b"{}"
    digest = sha256_digest(data)
    blob = tmp_path / "empty.json"
    blob.write_bytes(data)

    def opener(offset: int) -> object:
        import contextlib

        return contextlib.nullcontext(iter([data[offset:]]))

    setup = RegistryClient(own_registry.host, TransportOptions())
    assert setup.upload_blob("race/probe", digest, len(data), opener) == "uploaded"  # type: ignore[arg-type]
    stop = threading.Event()
    problems: list[str] = []
    probes: list[str] = []
    heads = [0]

    def prober() -> None:
        client = RegistryClient(own_registry.host, TransportOptions())
        for _ in range(60):
            probes.append(client.upload_blob("race/probe", digest, len(data), opener))  # type: ignore[arg-type]

    def reader() -> None:
        client = RegistryClient(own_registry.host, TransportOptions())
        while not stop.is_set():
            try:
                size = client.blob_size("race/probe", digest)
            except StellaOciError as exc:
                problems.append(str(exc))
                continue
            heads[0] += 1
            if size != len(data):
                problems.append(f"HEAD said {size}")

    readers = [threading.Thread(target=reader) for _ in range(2)]
    probers = [threading.Thread(target=prober) for _ in range(2)]
    for t in readers + probers:
        t.start()
    for t in probers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert set(probes) == {"exists"}, probes
    assert heads[0] > 0
    assert not problems, problems[:5]
