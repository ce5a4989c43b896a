"""Issue 11 acceptance 2: every kind of cut answer, injected by a real proxy in front of a
real registry into one chosen request pattern, through the CLI. Injected once: the command
succeeds (and prints no urllib3 warning or traceback). Injected into every attempt: exit 10
within the retry budget, never 1, 3 or 4."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_module
from tests.support.bundles import make_bundle, tree
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.registry import RunningRegistry, start_registry

BUDGET = ("--retries", "3", "--retry-max-time", "3")


@dataclass(frozen=True)
class Case:
    verb: str  # push, repush (the blobs are there already), pull or discover
    fault: Fault
    always_fails: bool = True
    """Injected on every attempt the command must end in exit 10 (False: the fault leaves
    the registry's answer usable, e.g. a 201 status line with its headers cut)."""


CASES = {
    "manifest-get-reset-mid-body": Case("pull", Fault("reset-body", "GET", r"/manifests/")),
    "manifest-get-cut-after-status": Case("pull", Fault("cut-after-status", "GET", r"/manifests/")),
    "manifest-get-cut-in-headers": Case("pull", Fault("cut-in-headers", "GET", r"/manifests/")),
    "manifest-get-503": Case("pull", Fault("status", "GET", r"/manifests/", status=503)),
    "manifest-get-429-retry-after": Case("pull", Fault("429", "GET", r"/manifests/", retry_after="1")),
    "blob-get-cut-after-status": Case("pull", Fault("cut-after-status", "GET", r"/blobs/sha256:")),
    "blob-get-reset-mid-body": Case("pull", Fault("reset-body", "GET", r"/blobs/sha256:")),
    "referrers-reset-mid-body": Case("discover", Fault("reset-body", "GET", r"/referrers/")),
    # registry 2.8 has no referrers API: its answer is a 404, and a 404 status line still says
    # so (then the fallback tag is read); every attempt cut thus still ends well
    "referrers-cut-after-status": Case(
        "discover", Fault("cut-after-status", "GET", r"/referrers/"), always_fails=False
    ),
    # a 200 to HEAD without Content-Length: the answer was cut inside its headers
    "blob-head-200-cut-after-status": Case("repush", Fault("cut-after-status", "HEAD", r"/blobs/sha256:")),
    # (cut after its Content-Length line, a HEAD answer is whole: every attempt may still pass)
    "blob-head-200-cut-in-headers": Case(
        "repush", Fault("cut-in-headers", "HEAD", r"/blobs/sha256:"), always_fails=False
    ),
    # (a 404 status line alone is a whole "not there" answer: the blob is uploaded)
    "blob-head-404-cut-after-status": Case(
        "push", Fault("cut-after-status", "HEAD", r"/blobs/sha256:"), always_fails=False
    ),
    "upload-202-without-location": Case("push", Fault("cut-after-status", "POST", r"/blobs/uploads/")),
    "upload-202-location-cut-in-host": Case("push", Fault("cut-in-location", "POST", r"/blobs/uploads/")),
    "upload-put-reset-mid-body": Case("push", Fault("reset-request", "PUT", r"/blobs/uploads/")),
    # the 201 head arrives before the reset: the blob is stored, the answer says so
    "upload-put-answer-reset": Case(
        "push", Fault("reset-body", "PUT", r"/blobs/uploads/"), always_fails=False
    ),
    "manifest-put-cut-in-headers": Case(
        "push", Fault("cut-in-headers", "PUT", r"/manifests/"), always_fails=False
    ),
    # a 201 whose Docker-Content-Digest was cut short: stored, not a digest mismatch (exit 3)
    "manifest-put-digest-header-cut": Case(
        "push",
        Fault("cut-in-headers", "PUT", r"/manifests/", header="Docker-Content-Digest"),
        always_fails=False,
    ),
    "manifest-put-reset-request": Case("push", Fault("reset-request", "PUT", r"/manifests/")),
}


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


def _bundle(root: Path, export_id: str = "exp-test-000001") -> Path:
    return make_bundle(
        root,
        {"data/small.json": b'{"a": 1}\n', "data/blob.bin": 300_000, "data/empty-ish.txt": b"x"},
        export_id=export_id,
    )


def _cli(*args: str | Path) -> tuple[CliResult, float]:
    start = time.monotonic()
    res = run_module("stella_oci", *args, "-q", "--format", "json", *BUDGET, timeout=180)
    return res, time.monotonic() - start


def _run(case: Case, proxy: FaultProxy, own_registry: RunningRegistry, tmp_path: Path, tag: str) -> CliResult:
    bundle = _bundle(tmp_path / f"bundle-{tag}")
    if case.verb == "repush":
        # another export with the same files: its data blobs are in the repository already
        first = _bundle(tmp_path / f"first-{tag}", export_id="exp-test-000000")
        direct, _ = _cli("push", first, f"{own_registry.host}/faults/kinds:first")
        assert direct.returncode == 0, direct.stderr
    if case.verb in ("push", "repush"):
        res, _ = _cli("push", bundle, f"{proxy.host}/faults/kinds:{tag}")
        return res
    # the artifact goes in directly; the command under test reads it through the proxy
    direct, _ = _cli("push", bundle, f"{own_registry.host}/faults/kinds:{tag}")
    assert direct.returncode == 0, direct.stderr
    digest = json.loads(direct.stdout)["digest"]
    if case.verb == "pull":
        out = tmp_path / f"out-{tag}"
        res, _ = _cli("pull", f"{proxy.host}/faults/kinds@{digest}", "--output", out)
        if res.returncode == 0:
            assert tree(out) == tree(bundle)
        return res
    res, _ = _cli("discover", f"{proxy.host}/faults/kinds@{digest}")
    return res


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault_injected_once_is_survived(
    name: str, proxy: FaultProxy, own_registry: RunningRegistry, tmp_path: Path
) -> None:
    case = CASES[name]
    proxy.faults = [Fault(**{**case.fault.__dict__, "times": 1, "hits": 0})]
    res = _run(case, proxy, own_registry, tmp_path, "once")
    assert proxy.faults[0].hits >= 1, f"the fault was never injected: {proxy.requests}"
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "urllib3" not in res.stderr, res.stderr
    if case.verb in ("push", "repush"):
        digest = json.loads(res.stdout)["digest"]
        check, _ = _cli("verify", f"{own_registry.host}/faults/kinds@{digest}")
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault_on_every_attempt_ends_in_exit_10(
    name: str, proxy: FaultProxy, own_registry: RunningRegistry, tmp_path: Path
) -> None:
    case = CASES[name]
    proxy.faults = [Fault(**{**case.fault.__dict__, "times": -1, "hits": 0})]
    start = time.monotonic()
    res = _run(case, proxy, own_registry, tmp_path, "always")
    elapsed = time.monotonic() - start
    assert proxy.faults[0].hits >= 1
    assert res.returncode not in (1, 3, 4), res.stderr
    if case.always_fails:
        assert res.returncode == 10, res.stderr
        assert proxy.faults[0].hits >= 2, "retried"
        doc = json.loads(res.stdout)
        assert doc["error"]["code"] == 10
    else:
        assert res.returncode in (0, 10), res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert elapsed < 90, elapsed
