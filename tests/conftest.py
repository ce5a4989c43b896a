"""Shared fixtures: real registries, unique repositories, the CLI and skopeo as subprocesses.

How a test finds a registry (docs/testing.md):

* ``registry`` -- ``STELLA_OCI_TEST_REGISTRY=host:port`` when set (its storage root is
  ``STELLA_OCI_TEST_REGISTRY_ROOT`` or unknown); otherwise the distribution registry binary
  (``/usr/bin/docker-registry``) started on a free loopback port for the session.
* ``container_registry`` -- a ``registry:2`` container through testcontainers; skips when no
  engine answers, fails instead when ``STELLA_OCI_REQUIRE_CONTAINERS=1``.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.containers import (
    REQUIRE_ENV,
    ContainerRegistry,
    containers_required,
    engine_problem,
    registry_image,
    start_container_registry,
)
from tests.support.registry import RegistryHandle, external_registry, start_registry

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI_TIMEOUT = float(os.environ.get("STELLA_OCI_TEST_CLI_TIMEOUT", "300"))
SKOPEO_TIMEOUT = 300.0


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated so that the markers exist whatever the rootdir.
    config.addinivalue_line(
        "markers", "container: needs a container engine (podman or docker) with a registry:2 image"
    )
    config.addinivalue_line("markers", "slow: large transfers (hundreds of MB)")


#: Files at least this big are removed from a test's tmp_path when it ends, and from the whole
#: basetemp when the session ends: pytest keeps the last three basetemps, and the slow tests
#: write GBs (a 2 GiB bundle and its pulled copy) that nobody reads afterwards.
BIG_FILE_BYTES = 8 * 1024 * 1024


def remove_big_files(root: Path, limit: int = BIG_FILE_BYTES) -> int:
    """Delete the regular files of at least ``limit`` bytes under ``root``; bytes freed."""
    freed = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if path.is_file() and not path.is_symlink() and st.st_size >= limit:
                try:
                    path.unlink()
                    freed += st.st_size
                except OSError:
                    pass
    return freed


@pytest.fixture(autouse=True)
def _drop_big_files(tmp_path: Path) -> Iterator[None]:
    yield
    remove_big_files(tmp_path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None) if factory is not None else None
    if base is not None and Path(base).is_dir():
        remove_big_files(Path(base))


#: A session holds an exclusive lock on this file in its basetemp while it runs (the kernel
#: drops the lock when the process dies, however it dies).
SESSION_LOCK = ".stella-oci-session.lock"
_session_lock: list[object] = []  # the open lock file, kept for the life of the process


def sweep_dead_sessions(base: Path) -> list[Path]:
    """Remove the big files of earlier sessions that died before their sessionfinish (killed by
    a timeout or SIGKILL: the 2 GiB registry blob and the slow tests' bundles stayed behind).
    Only the sibling basetemps (``pytest-N`` next to ``base``) that carry ``SESSION_LOCK``
    and whose lock nobody holds: a session still running elsewhere is left alone. Returns the
    basetemps swept."""
    import fcntl

    swept: list[Path] = []
    for sibling in sorted(base.parent.glob("pytest-*")):
        lock = sibling / SESSION_LOCK
        if sibling == base or sibling.is_symlink() or not lock.is_file():
            continue
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # that session is alive
            remove_big_files(sibling)
            swept.append(sibling)
    return swept


def pytest_sessionstart(session: pytest.Session) -> None:
    import fcntl

    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_given_basetemp", None) is not None:
        return  # --basetemp DIR: the caller owns DIR and its neighbours
    base = Path(factory.getbasetemp())
    fh = open(base / SESSION_LOCK, "a")  # held until the process exits
    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _session_lock.append(fh)
    sweep_dead_sessions(base)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use ``container_registry`` carry the ``container`` marker (``-m 'not container'``)."""
    for item in items:
        if "container_registry" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.container)


# --------------------------------------------------------------------------- the import ledger

LEDGER_ENV = "STELLA_OCI_LEDGER"  # stella_oci.airgap.ledger.LEDGER_ENV (asserted in test_airgap_ledger)


@pytest.fixture(scope="session", autouse=True)
def _session_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test, session fixture or CLI subprocess writes the user's real import ledger
    (``~/.local/share/stella-oci/ledger.sqlite3``): ``$STELLA_OCI_LEDGER`` points into the
    session's temporary directory before the first fixture runs, and ``XDG_DATA_HOME`` too,
    so that even code that ignores the variable lands there."""
    root = tmp_path_factory.mktemp("ledger")
    saved = {key: os.environ.get(key) for key in (LEDGER_ENV, "XDG_DATA_HOME")}
    os.environ[LEDGER_ENV] = str(root / "session-ledger.sqlite3")
    os.environ["XDG_DATA_HOME"] = str(root / "xdg-data")
    try:
        yield root
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def ledger_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _session_ledger: Path) -> Path:
    """The import ledger of this test: ``$STELLA_OCI_LEDGER``, a file in ``tmp_path`` that
    every CLI subprocess the test starts inherits (``run_cli`` copies ``os.environ``)."""
    path = tmp_path / "test-ledger.sqlite3"
    monkeypatch.setenv(LEDGER_ENV, str(path))
    return path


# --------------------------------------------------------------------------- registries


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryHandle]:
    """A plain-HTTP registry for the session: ``.host``, ``.url``, ``.root``, ``.blob_path(digest)``."""
    spec = os.environ.get("STELLA_OCI_TEST_REGISTRY", "").strip()
    if spec:
        yield external_registry(spec, os.environ.get("STELLA_OCI_TEST_REGISTRY_ROOT") or None)
        return
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def inside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryHandle]:
    """Registry B: the mirror inside the air gap, a second real registry (one per test module)."""
    reg = start_registry(tmp_path_factory.mktemp("inside-registry"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def container_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerRegistry]:
    """``registry:2`` in a container (``REGISTRY_IMAGE``, default ``localhost/registry:2``),
    its storage a host directory (``.root``)."""
    problem = engine_problem()
    if problem:
        if containers_required():
            pytest.fail(
                f"{REQUIRE_ENV}=1 but the containerized registry cannot run: {problem}", pytrace=False
            )
        pytest.skip(f"containerized registry unavailable: {problem}")
    try:
        reg = start_container_registry(tmp_path_factory.mktemp("container-registry"))
    except Exception as exc:
        message = f"could not start {registry_image()} through testcontainers: {exc}"
        if containers_required():
            pytest.fail(f"{REQUIRE_ENV}=1 and {message}", pytrace=False)
        pytest.skip(message)
    try:
        yield reg
    finally:
        reg.stop()


_repo_counter = itertools.count(1)
_SESSION_TOKEN = secrets.token_hex(3)


def repo_slug(name: str, limit: int = 40) -> str:
    """A repository path component (``[a-z0-9]+([._-][a-z0-9]+)*``) made from a test name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:limit].strip("-")
    return slug or "test"


@pytest.fixture
def fresh_repo(request: pytest.FixtureRequest) -> str:
    """A repository name no other test (in this or an earlier session) uses: ``t/<test>-<session>-<n>``."""
    return f"t/{repo_slug(request.node.name)}-{_SESSION_TOKEN}-{next(_repo_counter)}"


# --------------------------------------------------------------------------- subprocess helpers


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


RunCli = Callable[..., CliResult]


def _cli_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    # Deterministic, undecorated output; the tests' own registry credentials never leak in.
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONUTF8": "1"})
    for key in ("STELLA_OCI_USERNAME", "STELLA_OCI_PASSWORD"):
        env.pop(key, None)
    if extra:
        env.update(extra)
    # the autouse ledger fixtures set it; a subprocess without it would write the real ledger
    if not env.get(LEDGER_ENV):
        raise AssertionError(f"{LEDGER_ENV} is not set for a CLI subprocess: the user's ledger would be written")
    return env


def run_module(
    module: str,
    *args: str | os.PathLike[str],
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = CLI_TIMEOUT,
) -> CliResult:
    """``python -m MODULE ARGS`` with stdin closed (or fed ``input``); ``env`` adds to the environment."""
    cmd = [sys.executable, "-m", module, *(os.fspath(a) for a in args)]
    proc = subprocess.run(
        cmd,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        env=_cli_env(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """``run_cli(*args, input=None, env=None, cwd=None, timeout=...) -> CliResult``.

    Runs ``python -m stella_oci ARGS`` in ``tmp_path`` (unless ``cwd`` is given) with stdin
    closed; the result unpacks as ``code, out, err = run_cli(...)`` (returncode, stdout, stderr).
    """

    def run(
        *args: str | os.PathLike[str],
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = CLI_TIMEOUT,
    ) -> CliResult:
        return run_module("stella_oci", *args, input=input, env=env, cwd=cwd or tmp_path, timeout=timeout)

    return run


Skopeo = Callable[..., str]

_SKOPEO_TLS_FLAGS = {
    "copy": ("--src-tls-verify=false", "--dest-tls-verify=false"),
    "sync": ("--src-tls-verify=false", "--dest-tls-verify=false"),
    "inspect": ("--tls-verify=false",),
    "delete": ("--tls-verify=false",),
    "list-tags": ("--tls-verify=false",),
    "manifest-digest": (),
}


@pytest.fixture(scope="session")
def skopeo() -> Skopeo:
    """``skopeo(subcommand, *args, timeout=...) -> stdout``.

    TLS verification is off and the signature policy is not consulted; a failure fails the
    test with skopeo's stderr."""
    exe = shutil.which("skopeo")
    if exe is None:
        pytest.skip("skopeo is not installed (apt-get install skopeo)")

    def run(subcommand: str, *args: str | os.PathLike[str], timeout: float = SKOPEO_TIMEOUT) -> str:
        flags = _SKOPEO_TLS_FLAGS.get(subcommand, ("--tls-verify=false",))
        cmd = [exe, "--insecure-policy", subcommand, *flags, *(os.fspath(a) for a in args)]
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            pytest.fail(
                f"skopeo failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}",
                pytrace=False,
            )
        return proc.stdout

    return run
