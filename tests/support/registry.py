"""Real registries for the tests: the distribution registry binary (Debian ``docker-registry``).

``start_registry(workdir, **config)`` writes a config, starts ``docker-registry serve`` on a
free loopback port, waits for ``/v2/`` to answer, and returns a :class:`RunningRegistry`
whose ``stop()`` ends it. ``extra`` config (auth, tls, ...) is merged into the YAML.
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
from typing import Any

import requests

REGISTRY_BIN = os.environ.get("STELLA_OCI_REGISTRY_BIN") or shutil.which("docker-registry") or "/usr/bin/docker-registry"


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
        algo, hexd = digest.split(":", 1)
        return self.root / "docker/registry/v2/blobs" / algo / hexd[:2] / hexd / "data"

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
    workdir: Path, *, extra: dict[str, Any] | None = None, scheme: str = "http", port: int | None = None
) -> RunningRegistry:
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
    logfh = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=logfh, stderr=subprocess.STDOUT)
    reg = RunningRegistry(host=f"127.0.0.1:{port}", root=root, process=proc, scheme=scheme, log=log, extra=config)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            requests.get(f"{reg.url}/v2/", timeout=1, verify=False)
            return reg
        except requests.RequestException:
            time.sleep(0.03)
    reg.stop()
    raise RuntimeError(f"registry on {reg.host} did not answer /v2/ within 15 s")
