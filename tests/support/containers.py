"""A containerized registry for the tests: ``registry:2`` through testcontainers.

Here (no image can be pulled) the image is ``localhost/registry:2``, built FROM scratch with
Debian's distribution registry binary by ``.ci/container-registry.sh start``, which also starts
a podman API service and prints the environment testcontainers needs
(``DOCKER_HOST``, ``TESTCONTAINERS_RYUK_DISABLED``, ``TESTCONTAINERS_CONNECTION_MODE``).
On GitHub's runners ``REGISTRY_IMAGE=registry:2`` takes the real image from Docker Hub.

The container's ``/var/lib/registry`` is a host directory, so ``root`` and ``blob_path`` work
as they do for the binary registry (tamper tests included). The container runs as the test
process's uid:gid so that the files it writes stay writable by the tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.registry import blob_path_in, wait_for_v2

DEFAULT_IMAGE = "localhost/registry:2"
LABEL = "io.stellaops.oci-tests"
REQUIRE_ENV = "STELLA_OCI_REQUIRE_CONTAINERS"


def registry_image() -> str:
    return os.environ.get("REGISTRY_IMAGE") or DEFAULT_IMAGE


def containers_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


class EngineUnavailable(RuntimeError):
    """No container engine answers, or the registry image is not there."""


def engine_problem() -> str | None:
    """None when a Docker-API engine answers and has (or can pull) the image, else why not."""
    try:
        import docker
        from docker.errors import DockerException, ImageNotFound
    except ImportError as exc:  # pragma: no cover - testcontainers depends on docker
        return f"python package docker is missing ({exc}); pip install -e '.[test]'"
    where = os.environ.get("DOCKER_HOST", "the default Docker socket")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except DockerException as exc:
        return (
            f"no container engine answers at {where} ({exc.__class__.__name__}); "
            'run `eval "$(bash .ci/container-registry.sh start && bash .ci/container-registry.sh env)"` '
            "as root, or start Docker"
        )
    image = registry_image()
    if image.startswith("localhost/"):
        try:
            client.images.get(image)
        except ImageNotFound:
            return (
                f"image {image} is missing at {where}; build it with `bash .ci/container-registry.sh start`"
            )
        except DockerException as exc:
            return f"cannot inspect image {image} at {where}: {exc}"
    return None


@dataclass
class ContainerRegistry:
    """A registry:2 container with its storage on the host."""

    host: str
    root: Path
    container: Any  # testcontainers DockerContainer
    image: str
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def blob_path(self, digest: str) -> Path:
        return blob_path_in(self.root, digest)

    def require_root(self) -> Path:
        return self.root

    def logs(self) -> str:
        out, err = self.container.get_logs()
        return (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")

    def stop(self) -> None:
        self.container.stop()


def start_container_registry(
    workdir: Path, image: str | None = None, timeout: float = 60.0
) -> ContainerRegistry:
    """Start ``image`` (default: :func:`registry_image`) with port 5000 published and
    ``workdir/storage`` mounted at ``/var/lib/registry``; wait until ``GET /v2/`` answers."""
    from testcontainers.core.container import DockerContainer

    image = image or registry_image()
    root = workdir / "storage"
    root.mkdir(parents=True, exist_ok=True)
    container = (
        DockerContainer(image)
        .with_exposed_ports(5000)
        .with_volume_mapping(str(root), "/var/lib/registry", "rw")
        .with_env("REGISTRY_STORAGE_DELETE_ENABLED", "true")
        .with_env("REGISTRY_LOG_ACCESSLOG_DISABLED", "true")
        .with_kwargs(user=f"{os.getuid()}:{os.getgid()}", labels={LABEL: "1"})
    )
    container.start()
    try:
        ip = container.get_container_host_ip()
        if ip in ("localhost", "::1", "0.0.0.0"):
            ip = "127.0.0.1"
        port = container.get_exposed_port(5000)
        reg = ContainerRegistry(host=f"{ip}:{port}", root=root, container=container, image=image)
        try:
            wait_for_v2(reg.url, timeout=timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; container log:\n{reg.logs()[-2000:]}") from exc
        return reg
    except BaseException:
        container.stop()
        raise
