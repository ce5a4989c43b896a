"""Issue 11 acceptance 4, the CI soak: 15 push+pull rounds through the seeded fault proxy at
5 % faults (every kind: resets, cuts after the status line and inside headers, 5xx, 429,
stalls), CLI subprocesses against a real registry. Every round exits 0, every pulled tree is
byte-identical to its bundle, and every manifest read directly from the registry is whole.
The longer soak is scripts/soak.py (figures in docs/testing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault_proxy import FaultProxy
from tests.support.registry import RunningRegistry, start_registry
from tests.support.soak import soak

ROUNDS = 15
RATE = 0.05
SEED = 20261130


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    reg = start_registry(tmp_path / "reg")
    yield reg
    reg.stop()


def test_soak_through_seeded_faults(own_registry: RunningRegistry, tmp_path: Path) -> None:
    proxy = FaultProxy(own_registry.host)
    try:
        result = soak(own_registry.host, proxy, tmp_path, rounds=ROUNDS, rate=RATE, seed=SEED)
    finally:
        proxy.stop()
    failed = [r for r in result.rounds if not (r.push_exit == 0 and r.pull_exit == 0 and r.identical)]
    assert not failed, [(r.n, r.push_exit, r.pull_exit, r.identical, r.stderr) for r in failed]
    assert result.ok == ROUNDS
    assert sum(result.faults.values()) >= 3, f"the proxy injected too few faults: {result.faults}"
    assert not result.broken_manifests, result.broken_manifests
    assert result.whole_manifests == ROUNDS
