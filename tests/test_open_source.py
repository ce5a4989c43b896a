"""Issue 9 acceptance 2: inspect, verify, pull, discover and copy honour ``--registry-mirror``
and ``--offline`` through the one place that opens sources (verbs.common.open_source).

The reference names a registry that is a listening socket counting connections: with the
mirror mapping the verb must succeed from the real registry (the mirror) without a single
connection to the socket; with ``--offline`` it must exit 5, again without a connection.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bundles import copy_example, tree

VERBS = ("inspect", "verify", "pull", "discover", "copy")


class Listener:
    """A TCP socket that accepts and counts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)
            conn.close()  # a connection is the failure; do not keep the client waiting

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def dead_registry() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory) -> tuple[str, str, Path]:
    """An export in the real registry under ``upstream/<repo>``: (repo, digest, bundle)."""
    from stella_oci import api

    tmp = tmp_path_factory.mktemp("mirror-src")
    bundle = copy_example("trivy-db", tmp / "bundle")
    repo = f"upstream/t/open-source-{tmp.name[-6:].lower().strip('_-') or 'x'}"
    result = api.push(bundle, f"{registry.host}/{repo}:v1")
    return repo, result.digest, bundle


def verb_args(verb: str, ref: str, tmp_path: Path) -> list[str]:
    if verb == "pull":
        return ["pull", ref, "-o", str(tmp_path / "got")]
    if verb == "copy":
        return ["copy", ref, f"oci:{tmp_path / 'layout'}:v1"]
    return [verb, ref]


@pytest.mark.parametrize("verb", VERBS)
def test_registry_mirror_is_honoured(verb, registry, pushed, dead_registry, run_cli, tmp_path):
    repo, digest, bundle = pushed
    origin = f"127.0.0.1:{dead_registry.port}/acme"
    ref = f"{origin}/{repo.removeprefix('upstream/')}:v1"
    mirror = f"{origin}={registry.host}/upstream"
    code, out, err = run_cli(*verb_args(verb, ref, tmp_path), "--registry-mirror", mirror, "--format", "json")
    assert code == 0, (verb, out, err)
    doc = json.loads(out)
    assert dead_registry.accepted == [], f"{verb} contacted the origin registry despite the mirror"
    if verb in ("inspect", "verify", "pull", "copy"):
        assert doc["digest"] == digest
    if verb == "discover":
        assert doc["subject"] == digest
    if verb == "pull":
        assert tree(tmp_path / "got") == tree(bundle)
    # without the mapping the same command fails: the mirror really is what served it
    code, out, err = run_cli(*verb_args(verb, ref, tmp_path / "again"), "--format", "json")
    assert code != 0, (verb, out)
    assert dead_registry.accepted, f"{verb} without the mapping should have gone to the origin"


@pytest.mark.parametrize("verb", VERBS)
def test_offline_is_honoured(verb, registry, pushed, dead_registry, run_cli, tmp_path):
    repo, _, _ = pushed
    origin = f"127.0.0.1:{dead_registry.port}/acme"
    ref = f"{origin}/{repo.removeprefix('upstream/')}:v1"
    # offline wins over a mirror too: the mirror is a registry as well
    for extra in ([], ["--registry-mirror", f"{origin}={registry.host}/upstream"]):
        code, out, err = run_cli(*verb_args(verb, ref, tmp_path), *extra, "--offline", "--format", "json")
        assert code == 5, (verb, extra, out, err)
        assert json.loads(out)["error"]["kind"] == "offline-violation"
    assert dead_registry.accepted == [], f"{verb} opened a connection in --offline mode"
    assert not (tmp_path / "got").exists()
    assert not (tmp_path / "layout").exists()
