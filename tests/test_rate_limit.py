"""Issue 15, proactive rate limits: ``--rate-limit N/s`` caps the requests per second to a
registry host for all transfers of the process together, and a 429 that one transfer gets
makes every transfer to that host wait out its Retry-After.

A real registry behind the fault proxy (tests/support/fault_proxy.py), which stamps every
request with its own monotonic clock when the request's head arrives, and the time it sent a
canned 429. The assertions are upper bounds on what the proxy saw in windows of its own clock,
with generous margins, so a slow machine can only make them easier to meet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from stella_oci.errors import InvalidInputError
from stella_oci.transport.ratelimit import HostGate, parse_rate
from tests.support.bundles import make_bundle, read_export_json
from tests.support.fault_proxy import Fault, FaultProxy

FILES = 60
RATE = 20.0
RETRY_AFTER = 4
CONCURRENCY = 8
PASSED_THE_GATE = CONCURRENCY - 1
"""Each request waits at the host's gate just before it is sent. When the 429 closes the gate,
each of the other threads may hold at most one request that had already passed it: those may
reach the proxy inside the Retry-After, however late a loaded machine delivers them (a count,
not a time margin: the old 1 s margin failed once at load 11 with a request 1.01 s late).
Without the shared closure the other threads send hundreds in the same 4 s."""


@pytest.fixture
def proxy(registry) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.host)
    yield p
    p.stop()


def test_rate_limit_and_a_429_hold_every_transfer(registry, fresh_repo, run_cli, proxy, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", {f"files/f{i:03d}.json": b'{"n": %d}' % i for i in range(FILES)})
    # one upload PUT in the middle of the push answers 429 Retry-After: 4
    middle = read_export_json(bundle)["contents"][FILES // 2]["digest"]
    proxy.faults.append(Fault("429", method="PUT", path=middle.split(":")[1], retry_after=str(RETRY_AFTER)))
    ref = f"{proxy.host}/{fresh_repo}:v1"
    res = run_cli("push", bundle, ref, "--rate-limit", f"{RATE:g}/s", "--concurrency", str(CONCURRENCY), "--format", "json")
    assert res.returncode == 0, res.stderr
    digest = json.loads(res.stdout)["digest"]
    got = requests.head(
        f"http://{registry.host}/v2/{fresh_repo}/manifests/{digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    assert got.status_code == 200

    seen = sorted(proxy.requests, key=lambda r: r.at)
    assert len(seen) > 2 * FILES, len(seen)
    answered = [r for r in seen if r.answered_at is not None]
    assert len(answered) == 1 and answered[0].outcome == "answered 429", [r.outcome for r in answered]
    t429 = answered[0].answered_at
    assert t429 is not None

    # 1. nobody sent anything while the host was closed (but what had passed the gate before)
    during = [r for r in seen if t429 < r.at < t429 + RETRY_AFTER - 0.2]
    assert len(during) <= PASSED_THE_GATE, [(r.method, r.path[:60], round(r.at - t429, 3)) for r in during]
    after = [r for r in seen if r.at >= t429 + RETRY_AFTER - 0.2]
    assert after, "the push ended before the Retry-After: the test proves nothing"

    # 2. in any 2 s of the proxy's clock, at most RATE * 2 + 1 requests (+ 5 for sends the
    # client spaced but the loaded machine delivered bunched)
    window = 2.0
    worst = max(sum(1 for r in seen if s.at <= r.at < s.at + window) for s in seen)
    assert worst <= RATE * window + 1 + 5, worst


def test_without_a_rate_limit_a_429_still_holds_the_others(
    registry, fresh_repo, run_cli, proxy, tmp_path: Path
) -> None:
    """No --rate-limit: the 429 alone closes the host for every transfer. The 429 answers the
    first file's upload, early in a push of 300 files: most requests come after it."""
    files = 300
    bundle = make_bundle(tmp_path / "b", {f"files/f{i:03d}.json": b'{"n": %d}' % i for i in range(files)})
    first = read_export_json(bundle)["contents"][0]["digest"]
    proxy.faults.append(Fault("429", method="PUT", path=first.split(":")[1], retry_after=str(RETRY_AFTER)))
    res = run_cli("push", bundle, f"{proxy.host}/{fresh_repo}:v1", "--concurrency", str(CONCURRENCY), "-q")
    assert res.returncode == 0, res.stderr
    seen = sorted(proxy.requests, key=lambda r: r.at)
    t429 = next(r.answered_at for r in seen if r.answered_at is not None)
    assert t429 is not None
    during = [r for r in seen if t429 < r.at < t429 + RETRY_AFTER - 0.2]
    assert len(during) <= PASSED_THE_GATE, [(r.method, r.path[:60], round(r.at - t429, 3)) for r in during]
    # the others were held, not done before: the bulk of the push came after the Retry-After
    after = [r for r in seen if r.at >= t429 + RETRY_AFTER - 0.2]
    assert len(after) >= files, (len(after), len(seen))


def test_rate_values() -> None:
    assert parse_rate("10/s") == 10.0
    assert parse_rate("2.5") == 2.5
    assert parse_rate("120/m") == 2.0
    for bad in ("", "fast", "0/s", "-1/s", "10/h"):
        with pytest.raises(InvalidInputError):
            parse_rate(bad)


def test_bad_rate_limit_is_exit_2(run_cli, tmp_path: Path) -> None:
    res = run_cli("push", tmp_path, "127.0.0.1:1/x:y", "--rate-limit", "lots")
    assert res.returncode == 2 and "--rate-limit 'lots'" in res.stderr, res.stderr


def test_gate_spaces_reservations_and_closes_on_429() -> None:
    """The gate's arithmetic without a network: slots 1/N apart; a 429 without Retry-After
    doubles its wait with each strike, capped."""
    gate = HostGate()
    gate.rate = 1000.0
    waited = [gate.wait() for _ in range(3)]
    assert waited[0] < 0.5
    assert gate.too_many(None, 0.1, 8.0) <= 0.1 + 1e-3
    second = gate.too_many(None, 0.1, 8.0)
    assert 0.1 < second <= 0.2 + 1e-3
    assert gate.too_many(100.0, 0.1, 8.0) <= 8.0
