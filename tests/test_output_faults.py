"""What a pull does when its --output, the disk or the ledger get in the way (issue 10 items 8
and 9, issue 11): a named exit code (2) with the cause, never exit 1, and nothing left at
--output or beside it. Every case runs the real CLI against the real registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bundles import make_bundle, tree
from tests.support.stall_proxy import StallProxy
from tests.test_signals import start_cli, wait_for

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def pushed(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A bundle with two 2 MiB files, pushed: (bundle, host/repository@digest)."""
    from tests.conftest import run_module

    root = tmp_path_factory.mktemp("output-faults")
    bundle = make_bundle(root / "bundle", {"data/a.bin": 2 * MIB, "data/b.bin": 2 * MIB + 1})
    repo = f"{registry.host}/t/output-faults-{os.getpid()}"
    res = run_module("stella_oci", "push", bundle, f"{repo}:v1", "--format", "json")
    assert res.returncode == 0, res.stderr
    yield bundle, f"{repo}@{json.loads(res.stdout)['digest']}"


def pull(ref: str, output: Path, *args: str, tmpdir: Path, cwd: Path) -> tuple[int, str, str]:
    proc = start_cli("pull", ref, "--output", output, *args, tmpdir=tmpdir, cwd=cwd)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def entries(d: Path) -> list[str]:
    return sorted(os.listdir(d))


# ---------------------------------------------------------------------------- item 8: the ledger


@pytest.mark.parametrize("kind", ["not-sqlite", "under-a-file"])
def test_unusable_ledger_fails_the_pull_before_the_rename(
    pushed: tuple[Path, str], tmp_path: Path, kind: str
) -> None:
    if kind == "not-sqlite":
        ledger = tmp_path / "ledger.sqlite3"
        ledger.write_bytes(b"this is not a database, " * 100)
        cause = "not a usable SQLite database"
    else:
        (tmp_path / "plain-file").write_text("x")
        ledger = tmp_path / "plain-file" / "ledger.sqlite3"
        cause = "cannot create the directory of the import ledger"
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = pull(
        pushed[1], out / "got", "--ledger", str(ledger), tmpdir=tmp_path / "tmpdir", cwd=tmp_path
    )
    assert code == 2, err
    assert cause in err and str(ledger) in err
    assert entries(out) == []  # no bundle, no partial
    assert entries(tmp_path / "tmpdir") == []


# ---------------------------------------------------------------------------- item 9: --output


def test_output_symlink_to_an_empty_dir_is_refused(pushed: tuple[Path, str], tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "got"
    link.symlink_to(real)
    code, stdout, err = pull(pushed[1], link, tmpdir=tmp_path / "tmpdir", cwd=tmp_path)
    assert code == 2, err
    assert "is a symbolic link" in err and "an empty directory" in err
    assert link.is_symlink() and entries(real) == []
    assert entries(tmp_path / "out") == ["got"]


def test_output_dangling_symlink_is_refused(pushed: tuple[Path, str], tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "got"
    link.symlink_to(tmp_path / "nowhere")
    code, stdout, err = pull(pushed[1], link, tmpdir=tmp_path / "tmpdir", cwd=tmp_path)
    assert code == 2, err
    assert "is a symbolic link" in err and "which is nothing" in err
    assert entries(tmp_path / "out") == ["got"] and not (tmp_path / "nowhere").exists()


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody can create entries in: a read-only bind mount as root (root ignores
    permission bits), mode 0555 otherwise."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "--bind", "-o", "ro", ro, ro], capture_output=True, check=False)
        if mounted.returncode != 0:
            pytest.skip(f"cannot make a read-only bind mount: {mounted.stderr.decode().strip()}")
        try:
            yield ro
        finally:
            subprocess.run(["umount", ro], check=False)
    else:
        ro.chmod(0o555)
        try:
            yield ro
        finally:
            ro.chmod(0o755)


def test_output_in_a_read_only_directory_is_exit_2(
    pushed: tuple[Path, str], tmp_path: Path, read_only_dir: Path
) -> None:
    code, stdout, err = pull(
        pushed[1], read_only_dir / "got", "--format", "json", tmpdir=tmp_path / "tmpdir", cwd=tmp_path
    )
    assert code == 2, err + stdout
    error = json.loads(stdout)["error"]
    assert error["kind"] == "invalid-input"
    assert str(read_only_dir) in error["message"]
    assert ("read-only file system" in error["message"]) or ("permission denied" in error["message"])
    assert entries(read_only_dir) == []


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real ENOSPC (needs root, or skips)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], check=False)


def test_disk_full_is_exit_2_naming_the_cause_and_leaves_nothing(
    pushed: tuple[Path, str], tmp_path: Path, small_tmpfs: Path
) -> None:
    code, stdout, err = pull(pushed[1], small_tmpfs / "got", tmpdir=tmp_path / "tmpdir", cwd=tmp_path)
    assert code == 2, err
    assert "no space left on the device" in err and str(small_tmpfs / "got") in err
    assert "free space" in err  # the hint
    assert entries(small_tmpfs) == []


def test_file_size_limit_is_exit_2(pushed: tuple[Path, str], tmp_path: Path) -> None:
    """The same without root: a process file-size limit (RLIMIT_FSIZE) makes writes fail (EFBIG)."""
    import resource
    import signal

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump
        resource.setrlimit(resource.RLIMIT_FSIZE, (MIB, MIB))

    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path), NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "stella_oci", "pull", pushed[1], "--output", out / "got"],
        capture_output=True, text=True, env=env, preexec_fn=limit, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "file too large" in proc.stderr
    assert entries(out) == []


# ---------------------------------------------------------------------------- concurrent pulls


def test_two_pulls_into_one_new_output_one_wins_the_other_exits_2(
    registry: Any, pushed: tuple[Path, str], tmp_path: Path
) -> None:
    gate = StallProxy(registry.host, hold_downloads=True)
    try:
        ref = pushed[1].replace(registry.host, gate.host, 1)
        out = tmp_path / "out"
        out.mkdir()
        procs = [
            start_cli("pull", ref, "--output", out / "got", tmpdir=tmp_path / f"tmp{i}", cwd=tmp_path)
            for i in range(2)
        ]
        # Both are past their --output checks (each has its partial) and wait for a blob.
        wait_for(lambda: gate.stalled >= 2, "both pulls to wait for a blob", procs[0])
        assert len([n for n in entries(out) if n.startswith(".got.partial-")]) == 2
        gate.release()
        results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    finally:
        gate.stop()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "already exists" in loser
    assert entries(out) == ["got"]
    assert tree(out / "got") == tree(pushed[0])


# ---------------------------------------------------------------------------- stale partials


def test_stale_partial_of_a_killed_pull_is_removed_by_the_next_pull(
    registry: Any, pushed: tuple[Path, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stall = StallProxy(registry.host, stall_downloads_after=64 * 1024)
    try:
        proc = start_cli(
            "pull", pushed[1].replace(registry.host, stall.host, 1), "--output", out / "got",
            tmpdir=tmp_path / "tmp1", cwd=tmp_path,
        )  # fmt: skip
        wait_for(lambda: stall.stalled >= 1, "a blob download to stall", proc)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        stall.stop()
    (stale,) = entries(out)
    assert stale.startswith(f".got.partial-{proc.pid}-")
    # Partials it cannot prove abandoned stay: a live owner (this test), another host.
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    live = out / f".got.partial-{os.getpid()}-{host}-live"
    other_host = out / f".got.partial-{proc.pid}-00000000-elsewhere"
    live.mkdir()
    other_host.mkdir()

    started = time.monotonic()
    code, stdout, err = pull(pushed[1], out / "got", tmpdir=tmp_path / "tmp2", cwd=tmp_path)
    assert code == 0, err
    assert f"removed {out / stale}" in err and f"process {proc.pid}" in err
    assert entries(out) == sorted(["got", live.name, other_host.name])
    assert tree(out / "got") == tree(pushed[0])
    assert time.monotonic() - started < 120
