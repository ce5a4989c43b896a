"""Issue 10 item 6: SIGINT and SIGTERM stop any command at once and leave nothing behind.

Each case runs the real CLI as a subprocess against the real registry, through a proxy that
stalls the transfer (tests/support/stall_proxy.py), so "in flight" is a state the test waits
for: the proxy holds an exchange *and* the command's temporary files exist. Then the signal:
the child must exit 130 (SIGINT) or 143 (SIGTERM) within 5 s although its worker threads sit
in socket reads, and leave no partial pull beside ``--output``, nothing in its own
``$TMPDIR`` (verify workdir, unpacked archive, copy workdir) and no oci-archive staging.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bundles import make_bundle
from tests.support.stall_proxy import StallProxy

EXIT_WITHIN = 5.0
MIB = 1024 * 1024


def cli_env(tmpdir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONUTF8": "1", "TMPDIR": str(tmpdir)})
    for key in ("STELLA_OCI_USERNAME", "STELLA_OCI_PASSWORD"):
        env.pop(key, None)
    env.update(extra)
    return env


def start_cli(*args: str | os.PathLike[str], tmpdir: Path, cwd: Path, **env: str) -> subprocess.Popen[str]:
    tmpdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "stella_oci", *(os.fspath(a) for a in args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmpdir, **env),
        cwd=cwd,
    )


def wait_for(cond: Callable[[], bool], what: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}:\n{err}{out}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def listing(*dirs: Path) -> dict[str, list[str]]:
    return {str(d): sorted(os.listdir(d)) for d in dirs}


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str, float]:
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running {EXIT_WITHIN} s after {sig.name}:\n{err}")
    return proc.returncode, out, err, time.monotonic() - t0


@pytest.fixture(scope="module")
def pushed(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A bundle with two 2 MiB files, pushed directly (no proxy): (bundle, repository@digest)."""
    from tests.conftest import run_module

    root = tmp_path_factory.mktemp("signals")
    bundle = make_bundle(root / "bundle", {"data/a.bin": 2 * MIB, "data/b.bin": 2 * MIB + 1})
    repo = f"t/signals-{os.getpid()}"
    res = run_module("stella_oci", "push", bundle, f"{registry.host}/{repo}:v1", "--format", "json")
    assert res.returncode == 0, res.stderr
    yield bundle, f"{repo}@{json.loads(res.stdout)['digest']}"


@pytest.fixture
def download_stall(registry: Any) -> Iterator[StallProxy]:
    proxy = StallProxy(registry.host, stall_downloads_after=64 * 1024)
    yield proxy
    proxy.stop()


@pytest.fixture
def upload_stall(registry: Any) -> Iterator[StallProxy]:
    proxy = StallProxy(registry.host, stall_uploads=True)
    yield proxy
    proxy.stop()


SIGNALS = [pytest.param(signal.SIGINT, 130, id="SIGINT"), pytest.param(signal.SIGTERM, 143, id="SIGTERM")]


def assert_stopped(code: int, err: str, elapsed: float, sig: signal.Signals, expected: int) -> None:
    assert code == expected, f"exit {code}, expected {expected} for {sig.name}:\n{err}"
    assert elapsed < EXIT_WITHIN
    assert f"stopped by {sig.name}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
def test_pull_stalled_mid_blob_stops_and_leaves_nothing(
    pushed: tuple[Path, str], download_stall: StallProxy, tmp_path: Path, sig: signal.Signals, expected: int
) -> None:
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    tmpdir = tmp_path / "tmpdir"
    proc = start_cli(
        "pull", f"{download_stall.host}/{pushed[1]}", "--output", out_parent / "got",
        tmpdir=tmpdir, cwd=tmp_path, STELLA_OCI_LEDGER=str(tmp_path / "ledger.db"),
    )  # fmt: skip
    wait_for(lambda: download_stall.stalled >= 1, "a blob download to stall", proc)
    partials = [n for n in os.listdir(out_parent) if n.startswith(".got.partial-")]
    assert len(partials) == 1, listing(out_parent)  # in flight: the partial pull exists
    assert (out_parent / partials[0] / "export.json").is_file()
    code, out, err, elapsed = stop(proc, sig)
    assert_stopped(code, err, elapsed, sig, expected)
    assert listing(out_parent, tmpdir) == {str(out_parent): [], str(tmpdir): []}


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
def test_verify_stalled_mid_blob_stops_and_leaves_nothing(
    pushed: tuple[Path, str], download_stall: StallProxy, tmp_path: Path, sig: signal.Signals, expected: int
) -> None:
    tmpdir = tmp_path / "tmpdir"
    proc = start_cli("verify", f"{download_stall.host}/{pushed[1]}", "--format", "json", tmpdir=tmpdir, cwd=tmp_path)
    wait_for(lambda: download_stall.stalled >= 1, "a blob download to stall", proc)
    assert [n for n in os.listdir(tmpdir) if n.startswith("stella-oci-verify-")], listing(tmpdir)
    code, out, err, elapsed = stop(proc, sig)
    assert_stopped(code, err, elapsed, sig, expected)
    assert json.loads(out)["error"] == {
        "code": expected,
        "kind": "interrupted",
        "message": f"stopped by {sig.name}; removed 1 partial file(s) and directories",
    }
    assert listing(tmpdir) == {str(tmpdir): []}


@pytest.mark.parametrize("form", ["dir", "tar.gz"])
@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
def test_push_stalled_mid_upload_stops_and_leaves_nothing(
    registry: Any,
    pushed: tuple[Path, str],
    upload_stall: StallProxy,
    tmp_path: Path,
    sig: signal.Signals,
    expected: int,
    form: str,
) -> None:
    bundle = make_bundle(tmp_path / "bundle", {"data/big.bin": 3 * MIB}, export_id=f"exp-sig-{form.replace('.', '')}-{sig.name.lower()}")
    source: Path = bundle
    if form == "tar.gz":
        source = tmp_path / "bundle.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(bundle, arcname=".")
    before = listing(tmp_path)
    tmpdir = tmp_path / "tmpdir"
    proc = start_cli(
        "push", source, f"{upload_stall.host}/t/signals-push-{os.getpid()}:{form.replace('.', '-')}",
        "--concurrency", "1", tmpdir=tmpdir, cwd=tmp_path,
    )  # fmt: skip
    wait_for(lambda: upload_stall.stalled >= 1, "an upload to stall", proc)
    if form == "tar.gz":
        assert [n for n in os.listdir(tmpdir) if n.startswith("stella-oci-bundle-")], listing(tmpdir)
    code, out, err, elapsed = stop(proc, sig)
    assert_stopped(code, err, elapsed, sig, expected)
    assert listing(tmpdir) == {str(tmpdir): []}
    after = listing(tmp_path)
    after[str(tmp_path)].remove("tmpdir")
    assert after == before


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
def test_copy_to_oci_archive_stalled_stops_and_leaves_nothing(
    pushed: tuple[Path, str], download_stall: StallProxy, tmp_path: Path, sig: signal.Signals, expected: int
) -> None:
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    tmpdir = tmp_path / "tmpdir"
    proc = start_cli(
        "copy", f"{download_stall.host}/{pushed[1]}", f"oci-archive:{out_parent / 'x.tar'}:v1",
        tmpdir=tmpdir, cwd=tmp_path,
    )  # fmt: skip
    wait_for(lambda: download_stall.stalled >= 1, "a blob download to stall", proc)
    assert [n for n in os.listdir(out_parent) if n.startswith(".x.tar.staging-")], listing(out_parent)
    assert [n for n in os.listdir(tmpdir) if n.startswith("stella-oci-copy-")], listing(tmpdir)
    code, out, err, elapsed = stop(proc, sig)
    assert_stopped(code, err, elapsed, sig, expected)
    assert listing(out_parent, tmpdir) == {str(out_parent): [], str(tmpdir): []}


# ---------------------------------------------------------------------------- the module itself


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """interrupts.install() in this process, with os._exit replaced by a recorder that raises."""
    from stella_oci import interrupts

    exits: list[int] = []

    class Exited(BaseException):
        pass

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise Exited

    saved = {sig: signal.getsignal(sig) for sig in interrupts.SIGNALS}
    monkeypatch.setattr(interrupts, "_exit", fake_exit)
    monkeypatch.setattr(interrupts, "_paths", {})
    monkeypatch.setattr(interrupts, "_closing", False)
    interrupts.install("text")
    try:
        yield exits
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        monkeypatch.setattr(interrupts, "_closing", False)


def test_a_signal_inside_a_deferred_block_acts_when_it_ends(handlers: list[int], tmp_path: Path) -> None:
    from stella_oci import interrupts

    leftover = tmp_path / "partial"
    leftover.mkdir()
    interrupts.track(leftover)
    steps: list[str] = []
    with pytest.raises(BaseException) as info:
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("after the signal, inside")  # not split by the signal
            assert leftover.exists() and handlers == []
        steps.append("after the block")  # never reached
    assert type(info.value).__name__ == "Exited"
    assert steps == ["after the signal, inside"]
    assert handlers == [143] and not leftover.exists()
    with pytest.raises(interrupts.Stopping), interrupts.creating():
        pass  # once stopped, nothing more is created
