"""Progress for CI (issue 12): plain lines on a non-terminal stderr (asserted from a subprocess
with stderr captured), nothing with --quiet or --format json, and on a terminal (a pty) a
checking phase and a file counter. Sizes in binary units (KiB, MiB)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.support.bundles import make_bundle, read_export_json, write_export_json

BIG = 12 * 1024 * 1024
SMALL = 20


def bundle(tmp_path: Path) -> Path:
    files: dict[str, bytes | int] = {"data/big.bin": BIG}
    files.update({f"data/small-{i:02}.json": b'{"n": %d}' % i for i in range(SMALL)})
    return make_bundle(tmp_path / "bundle", files)


def test_non_tty_progress_lines(registry, fresh_repo, run_cli, tmp_path) -> None:
    src = bundle(tmp_path)
    ref = f"{registry.host}/{fresh_repo}:v1"
    files = SMALL + 2  # + export.json
    blobs = SMALL + 3  # + export.json + the empty config
    code, out, err = run_cli("push", src, ref)
    assert code == 0, err
    lines = err.splitlines()
    assert all(line.startswith("stella-oci: push: ") for line in lines), lines
    assert lines[0] == f"stella-oci: push: checking {files} files"
    assert re.fullmatch(rf"stella-oci: push: checked {files}/{files} files, 12\.0 MiB in [\d.]+ s", lines[1]), lines
    big = [line for line in lines if "(data/big.bin, 12.0 MiB)" in line]  # a line per large blob done
    assert len(big) == 1 and re.search(rf"[\d.]+ (KiB|MiB)/12\.0 MiB, \d+/{blobs} blobs, [\d.]+ (B|KiB|MiB)/s", big[0])
    assert re.fullmatch(rf"stella-oci: push: done: 12\.0 MiB/12\.0 MiB, {blobs}/{blobs} blobs, [\d.]+ (KiB|MiB)/s in [\d.]+ s", lines[-1]), lines
    assert len(lines) < blobs  # not a line for each small blob
    assert not any(" MB" in line or "MB/s" in line.replace("MiB/s", "") for line in lines)  # one unit system

    code, out, err = run_cli("pull", ref, "-o", tmp_path / "got")
    assert code == 0, err
    lines = err.splitlines()
    assert any("(data/big.bin, 12.0 MiB)" in line for line in lines), lines
    assert re.fullmatch(rf"stella-oci: pull: done: 12\.0 MiB/12\.0 MiB, {blobs}/{blobs} blobs, .* in [\d.]+ s", lines[-1])

    # a re-push: every blob already there, said so
    code, _, err = run_cli("push", src, ref)
    assert code == 0 and "already there" in err and f"{blobs}/{blobs} blobs" in err.splitlines()[-1], err

    for quiet in (["--quiet"], ["--format", "json"], ["--digest-only"]):
        code, _, err = run_cli("push", src, ref, *quiet)
        assert code == 0 and err == "", (quiet, err)


def test_a_failed_transfer_says_stopped_not_done(registry, fresh_repo, run_cli, tmp_path) -> None:
    """A CI log read bottom-up: before, a push that failed on a file's digest while streaming
    ended its progress with 'push: done: ...' right above the error. Now 'stopped'."""
    src = bundle(tmp_path)
    doc = read_export_json(src)
    entry = next(e for e in doc["contents"] if e["path"] == "data/big.bin")
    entry["digest"] = "sha256:" + "0" * 64  # size right, digest wrong: found while it streams
    write_export_json(src, doc)
    code, out, err = run_cli("push", src, f"{registry.host}/{fresh_repo}:v1")
    assert code == 3, err
    lines = err.splitlines()
    assert not any(": done:" in line for line in lines), lines
    summary = [line for line in lines if line.startswith("stella-oci: push: stopped: ")]
    assert len(summary) == 1 and re.search(r"\d+/\d+ blobs, .* in [\d.]+ s$", summary[0]), lines
    assert lines.index(summary[0]) < next(i for i, line in enumerate(lines) if "error:" in line), lines

    code, _, err = run_cli("pull", f"{registry.host}/{fresh_repo}:v1", "-o", tmp_path / "got")
    assert code == 4 and "done:" not in err, err


def test_tty_progress_shows_checking_and_a_file_counter(registry, fresh_repo, tmp_path) -> None:
    src = bundle(tmp_path)
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), COLUMNS="160", TERM="xterm")
    for key in ("STELLA_OCI_USERNAME", "STELLA_OCI_PASSWORD", "NO_COLOR"):
        env.pop(key, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "stella_oci", "push", str(src), f"{registry.host}/{fresh_repo}:v1"],
        stderr=slave, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", seen).decode("utf-8", "replace")
    files = SMALL + 2
    assert "checking" in text and "checked" in text and f"{files}/{files} files" in text, text[-2000:]
    assert re.search(rf"\d+/{SMALL + 3} files", text)  # the transfer's file counter
    assert "12.0 MiB" in text and " MB" not in text
