"""Issue 12: "pytest leaves no multi-GB directories behind". Files of 8 MiB and more are removed
from each test's tmp_path when it ends and from the basetemp when the session ends
(tests/conftest.py); a session killed before its end (a CI timeout, SIGKILL) has its big files
removed by the next session, which never touches a session still running."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import BIG_FILE_BYTES, REPO_ROOT, SESSION_LOCK, sweep_dead_sessions

CHILD_TEST = '''
import os, signal

def test_writes_a_big_file(tmp_path, tmp_path_factory):
    (tmp_path / "big.bin").write_bytes(b"\\0" * (9 * 1024 * 1024))
    kept = tmp_path_factory.mktemp("session-data") / "big-session.bin"  # as the registry's storage
    kept.write_bytes(b"\\0" * (9 * 1024 * 1024))
    if os.environ.get("DIE_IN_TEST"):
        os.kill(os.getpid(), signal.SIGKILL)
'''


def big_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_size >= BIG_FILE_BYTES)


def run_child_session(test_file: Path, tmpdir: Path, *, die: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "DIE_IN_TEST")}
    env.update(TMPDIR=str(tmpdir), PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1")
    if die:
        env["DIE_IN_TEST"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(test_file.parent), str(test_file)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_killed_session_is_swept_by_the_next(tmp_path: Path) -> None:
    test_file = tmp_path / "child" / "test_child.py"
    test_file.parent.mkdir()
    test_file.write_text(CHILD_TEST)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()

    killed = run_child_session(test_file, tmpdir, die=True)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    left = big_files(tmpdir)
    assert len(left) == 2, left  # the killed session's cleanup never ran

    done = run_child_session(test_file, tmpdir, die=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert big_files(tmpdir) == []  # its own big files and the killed session's: gone
    assert len(list(tmpdir.glob("pytest-of-*/pytest-[0-9]*"))) == 2  # both sessions ran there


def test_sweep_leaves_running_and_foreign_sessions_alone(tmp_path: Path) -> None:
    def session(name: str, *, lock: bool) -> Path:
        d = tmp_path / name
        (d / "registry0").mkdir(parents=True)
        (d / "registry0" / "data").write_bytes(b"\0" * BIG_FILE_BYTES)
        (d / "registry0" / "small").write_bytes(b"x")
        if lock:
            (d / SESSION_LOCK).touch()
        return d

    dead = session("pytest-1", lock=True)
    alive = session("pytest-2", lock=True)
    foreign = session("pytest-3", lock=False)  # no lock file: not a stella-oci session
    me = session("pytest-4", lock=True)
    with open(alive / SESSION_LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the running session holds it
        assert sweep_dead_sessions(me) == [dead]
    assert not (dead / "registry0" / "data").exists() and (dead / "registry0" / "small").exists()
    for kept in (alive, foreign, me):
        assert (kept / "registry0" / "data").exists(), kept
