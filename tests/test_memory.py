"""Streaming, bounded memory: a 2 GiB push and pull each stay under 100 MB peak RSS
(issue 2 asks it of 1 GiB, issue 3 of 2 GiB: one test covers both).

The CLI runs as a child process; its peak RSS is read from the kernel (``wait4`` rusage
``ru_maxrss``, KiB on Linux) for that child alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.bundles import make_bundle, tree_digests

GIB = 1024 * 1024 * 1024
LIMIT_BYTES = 100 * 1000 * 1000


# The CLI runs under a small launcher process, which reports its child's peak RSS. Measuring
# a child forked straight from pytest would over-report: the kernel keeps the pre-exec
# high-water mark of the forking process (pytest's) in the child's ru_maxrss.
LAUNCHER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "sys.stderr.write('\\nMAXRSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


def run_with_rss(*args: str | os.PathLike[str]) -> tuple[int, str, str, int]:
    """Run the CLI; return (exit code, stdout, stderr, peak RSS of the CLI process in bytes)."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "stella_oci", *map(os.fspath, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    err, _, tail = proc.stderr.rpartition("MAXRSS_KB=")
    return proc.returncode, proc.stdout, err, int(tail.strip()) * 1024


@pytest.mark.slow
def test_two_gib_push_and_pull_stay_under_100_mb(registry, fresh_repo, tmp_path):
    bundle = make_bundle(tmp_path / "bundle", {"db/trivy.db": 2 * GIB, "metadata.json": b'{"v":2}'})
    ref = f"{registry.host}/{fresh_repo}:big"
    code, out, err, push_rss = run_with_rss("push", bundle, ref, "--format", "json")
    assert code == 0, err
    digest = json.loads(out)["digest"]
    code, out, err, pull_rss = run_with_rss(
        "pull", f"{registry.host}/{fresh_repo}@{digest}", "-o", tmp_path / "got"
    )
    assert code == 0, err
    assert tree_digests(tmp_path / "got") == tree_digests(bundle)
    print(f"peak RSS: push {push_rss / 1e6:.1f} MB, pull {pull_rss / 1e6:.1f} MB")
    assert push_rss < LIMIT_BYTES, f"push peaked at {push_rss / 1e6:.1f} MB"
    assert pull_rss < LIMIT_BYTES, f"pull peaked at {pull_rss / 1e6:.1f} MB"
