"""Issue 12: "the sdist runs its own tests". The source distribution is built (``python -m build
--sdist``, what a release runs), unpacked into a temporary directory, and a quick subset of its
own tests runs from the unpacked tree in a subprocess: the unit tests, the API page and link
checks, and registry round trips (the unpacked tree's own tests/support starts the registry).
The subprocess imports the unpacked ``stella_oci``, not this checkout's, and everything it
writes stays under this test's tmp_path, which is removed at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

#: What the sdist must carry for its tests to run (MANIFEST.in).
REQUIRED = [
    "pyproject.toml",
    "LICENSE",
    "README.md",
    "MANIFEST.in",
    "tests/conftest.py",
    "tests/support/registry.py",
    "tests/support/bundles.py",
    "examples/mirror-full/export.json",
    "examples/trivy-db/export.json",
    "docs/api.md",
    "stella_oci/data/export-manifest.schema.json",
    "stella_oci/data/output/push.schema.json",
    "stella_oci/py.typed",
    "scripts/quickstart.sh",
    "action.yml",
]

#: The subset the unpacked tree runs: unit tests, the docs checks, one kind of registry round trip.
SUBSET = [
    "tests/test_digest_unit.py",
    "tests/test_engine_unit.py",
    "tests/test_export_models.py",
    "tests/test_api_docs.py",
    "tests/test_doc_links.py",
    "tests/test_push_pull.py::test_round_trip_is_byte_identical_and_deterministic",
]


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(tree)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _build_sdist(outdir: Path) -> Path:
    if shutil.which("docker-registry") is None and not os.environ.get("STELLA_OCI_TEST_REGISTRY"):
        pytest.skip("no docker-registry binary for the unpacked tree's round trip")
    egg_info = REPO_ROOT / "stella_oci.egg-info"
    had_egg_info = egg_info.exists()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "build", "--sdist", "--outdir", str(outdir), str(REPO_ROOT)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
    finally:
        if not had_egg_info:  # setuptools writes its egg-info into the checkout
            shutil.rmtree(egg_info, ignore_errors=True)
    assert proc.returncode == 0, f"--- stdout\n{proc.stdout[-4000:]}--- stderr\n{proc.stderr[-4000:]}"
    built = sorted(outdir.glob("stella_oci-*.tar.gz"))
    assert len(built) == 1, built
    return built[0]


def test_sdist_runs_its_own_tests(tmp_path: Path) -> None:
    work = tmp_path / "sdist"
    try:
        sdist = _build_sdist(work / "dist")
        with tarfile.open(sdist) as tar:
            names = tar.getnames()
            top = names[0].split("/")[0]
            members = {n.split("/", 1)[1] for n in names if "/" in n}
            missing = [f for f in REQUIRED if f not in members]
            assert missing == [], f"{sdist.name} lacks {missing} (MANIFEST.in)"
            tracked = subprocess.run(
                ["git", "ls-files", "tests", "examples", "docs"], cwd=REPO_ROOT, capture_output=True,
                text=True, check=False, timeout=60,
            )
            if tracked.returncode == 0:  # a git checkout: every tracked test, example and doc is in
                left_out = sorted(set(tracked.stdout.split()) - members)
                assert left_out == [], f"{sdist.name} lacks tracked files {left_out}"
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extractall(work / "unpacked", filter="data")
            else:
                tar.extractall(work / "unpacked")
        tree = work / "unpacked" / top

        # the unpacked tree's own package is the one imported
        where = subprocess.run(
            [sys.executable, "-c", "import stella_oci, tests.conftest as c; print(stella_oci.__file__); print(c.REPO_ROOT)"],
            cwd=tree, env=_env(tree), capture_output=True, text=True, timeout=120, check=False,
        )
        assert where.returncode == 0, where.stderr
        assert [Path(p) for p in where.stdout.split()] == [tree / "stella_oci" / "__init__.py", tree]

        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(work / "basetemp"),
             "-o", "addopts=", *SUBSET],
            cwd=tree, env=_env(tree), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900,
            check=False,
        )
        summary = proc.stdout[-3000:] + proc.stderr[-3000:]
        assert proc.returncode == 0, f"the unpacked sdist's tests failed (exit {proc.returncode}):\n{summary}"
        assert " passed" in proc.stdout and " skipped" not in proc.stdout.splitlines()[-1], summary
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert not work.exists()
