"""Real registries for the tests: the distribution registry binary (Debian ``docker-registry``).

``start_registry(workdir, **config)`` writes a config, starts ``docker-registry serve`` on a
free loopback port, waits for ``/v2/`` to answer, and returns a :class:`RunningRegistry`
whose ``stop()`` ends it. ``extra`` config (auth, tls, ...) is merged into the YAML.

``external_registry(spec)`` describes a registry the tests did not start
(``STELLA_OCI_TEST_REGISTRY=host:port``); its storage root is unknown unless
``STELLA_OCI_TEST_REGISTRY_ROOT`` names it, and tests that need it skip.

Every registry object the fixtures hand out satisfies :class:`RegistryHandle`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import requests

REGISTRY_BIN = (
    os.environ.get("STELLA_OCI_REGISTRY_BIN") or shutil.which("docker-registry") or "/usr/bin/docker-registry"
)


def blob_path_in(root: Path, digest: str) -> Path:
    """Where the distribution registry's filesystem driver keeps a blob's bytes under ``root``."""
    algo, hexd = digest.split(":", 1)
    return root / "docker/registry/v2/blobs" / algo / hexd[:2] / hexd / "data"


@runtime_checkable
class RegistryHandle(Protocol):
    """What every registry fixture offers: ``host`` ("127.0.0.1:PORT"), ``url``, the storage
    ``root`` (None when unknown) and ``blob_path(digest)``."""

    host: str
    scheme: str

    @property
    def root(self) -> Path | None: ...

    @property
    def url(self) -> str: ...

    def blob_path(self, digest: str) -> Path: ...

    def require_root(self) -> Path: ...


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningRegistry:
    host: str  # "127.0.0.1:PORT"
    root: Path  # storage root directory (for tamper tests)
    process: subprocess.Popen[bytes] | None = None
    scheme: str = "http"
    log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def blob_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        return blob_path_in(self.root, digest)

    def require_root(self) -> Path:
        return self.root

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _to_yaml(obj: Any, indent: int = 0) -> str:
    """JSON is YAML: write nested JSON flow style, which the registry's YAML parser reads."""
    return json.dumps(obj)


def start_registry(
    workdir: Path,
    *,
    extra: dict[str, Any] | None = None,
    scheme: str = "http",
    port: int | None = None,
    probe_cert: tuple[str, str] | None = None,
) -> RunningRegistry:
    """Start the registry binary; ``probe_cert`` (cert, key) is the client certificate the
    readiness probe presents to a registry that requires mutual TLS (``http.tls.clientcas``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    root.mkdir(exist_ok=True)
    port = port or free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "stella-oci-tests"},
    }
    for key, value in (extra or {}).items():
        if key == "http":
            config["http"].update(value)
        else:
            config[key] = value
    cfg = workdir / "config.yml"
    cfg.write_text(_to_yaml(config))
    log = workdir / "registry.log"
    logfh = open(log, "wb")  # lives as long as the process
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=logfh, stderr=subprocess.STDOUT)
    reg = RunningRegistry(
        host=f"127.0.0.1:{port}", root=root, process=proc, scheme=scheme, log=log, extra=config
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"registry exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        try:
            requests.get(f"{reg.url}/v2/", timeout=1, verify=False, cert=probe_cert)
            return reg
        except requests.RequestException:
            time.sleep(0.03)
    reg.stop()
    raise RuntimeError(f"registry on {reg.host} did not answer /v2/ within 15 s")


@dataclass
class ExternalRegistry:
    """A registry someone else runs (``STELLA_OCI_TEST_REGISTRY=host:port``)."""

    host: str
    root: Path | None = None
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def require_root(self) -> Path:
        """The storage root, or skip the calling test when it is unknown."""
        if self.root is None:
            import pytest

            pytest.skip(
                f"registry {self.host} comes from STELLA_OCI_TEST_REGISTRY and its storage directory is "
                "unknown: set STELLA_OCI_TEST_REGISTRY_ROOT to run tests that tamper with stored blobs"
            )
        return self.root

    def blob_path(self, digest: str) -> Path:
        """Where the blob lies in the storage root; skips the test when the root is unknown."""
        return blob_path_in(self.require_root(), digest)

    def stop(self) -> None:
        """Nothing to stop: the registry is not ours."""


def external_registry(spec: str, root: str | None = None) -> ExternalRegistry:
    """Parse ``[http://|https://]host:port`` and check that ``/v2/`` answers (200 or 401)."""
    scheme = "http"
    host = spec.strip().rstrip("/")
    for prefix in ("http://", "https://"):
        if host.startswith(prefix):
            scheme, host = prefix[:-3], host[len(prefix) :]
    if not host or "/" in host:
        raise ValueError(f"STELLA_OCI_TEST_REGISTRY={spec!r}: expected host:port, e.g. 127.0.0.1:5000")
    reg = ExternalRegistry(host=host, root=Path(root) if root else None, scheme=scheme)
    try:
        resp = requests.get(f"{reg.url}/v2/", timeout=5, verify=False)
    except requests.RequestException as exc:
        raise RuntimeError(f"STELLA_OCI_TEST_REGISTRY={spec!r}: GET {reg.url}/v2/ failed: {exc}") from exc
    if resp.status_code not in (200, 401):
        raise RuntimeError(
            f"STELLA_OCI_TEST_REGISTRY={spec!r}: GET {reg.url}/v2/ answered {resp.status_code}"
        )
    return reg


def wait_for_v2(url: str, timeout: float = 30.0) -> None:
    """Poll ``GET {url}/v2/`` until it answers 200/401, else raise RuntimeError."""
    deadline = time.monotonic() + timeout
    last: str = "no answer"
    while time.monotonic() < deadline:
        try:
            resp = requests.get(f"{url}/v2/", timeout=1, verify=False)
            if resp.status_code in (200, 401):
                return
            last = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.05)
    raise RuntimeError(f"GET {url}/v2/ did not answer within {timeout:.0f} s ({last})")
