"""login and logout: credentials for a registry host in the Docker config.

``login`` first proves the credentials (``GET /v2/`` with them, answering the registry's
challenge), then stores them where Docker would: through ``credHelpers[host]`` or
``credsStore`` when the config names one (``docker-credential-<name> store``), else as
``auths[host].auth`` in the config file itself (written atomically, mode 0600).
``logout`` removes them from the same place (``docker-credential-<name> erase``). The config
file is ``--registry-config``, else ``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``. The password is never printed, logged or put in a message.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from stella_oci.errors import AuthError, InvalidInputError
from stella_oci.jsonio import load_json
from stella_oci.results import ResultModel
from stella_oci.transport.credentials import HELPER_TIMEOUT, docker_config_path
from stella_oci.transport.options import TransportOptions
from stella_oci.transport.redact import redact, register_secret

MAX_CONFIG_BYTES = 4 * 1024 * 1024


class LoginResult(ResultModel):
    """Where ``login`` stored the credentials for ``host`` (never the password itself)."""

    host: str
    username: str
    stored_in: str
    """``config FILE`` or ``credential helper docker-credential-NAME``."""


class LogoutResult(ResultModel):
    """Where ``logout`` removed the credentials for ``host`` from."""

    host: str
    removed_from: list[str]
    """Where credentials were removed from (empty: there were none)."""


def _host(host: str) -> str:
    h = host.strip()
    if "://" in h:
        h = h.split("://", 1)[1]
    h = h.split("/", 1)[0]
    if not h or any(c.isspace() for c in h):
        raise InvalidInputError(f"{host!r}: give a registry host, e.g. ghcr.io or localhost:5000")
    return h


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidInputError(f"cannot read the Docker config {path}: {exc.strerror}") from None
    doc = load_json(data, f"the Docker config {path}", max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(doc, dict):
        raise InvalidInputError(f"the Docker config {path} is not a JSON object", hint="fix or move it")
    return doc


def _write_config(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent="\t")
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _helper_for(doc: dict[str, Any], host: str) -> str | None:
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _host(str(key)).lower() == host.lower() and isinstance(name, str) and name:
                return name
    store = doc.get("credsStore")
    return store if isinstance(store, str) and store else None


def _run_helper(name: str, action: str, payload: bytes, host: str) -> None:
    exe = shutil.which(f"docker-credential-{name}")
    where = f"credential helper docker-credential-{name}"
    if exe is None:
        raise AuthError(
            f"{where} (named in the Docker config) is not on PATH; nothing was {action}d for {host}",
            hint=f"install docker-credential-{name}, or remove it from the Docker config",
        )
    try:
        proc = subprocess.run(
            [exe, action], input=payload, capture_output=True, timeout=HELPER_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthError(f"{where} {action} failed for {host}: {redact(exc)}") from None
    if proc.returncode != 0:
        err = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()
        if action == "erase" and "not found" in err.lower():
            return
        raise AuthError(f"{where} {action} failed for {host} (exit {proc.returncode}): {redact(err)[:300]}")


def login(
    host: str,
    username: str,
    password: str,
    *,
    transport: TransportOptions | None = None,
    verify: bool = True,
) -> LoginResult:
    """Check ``username``/``password`` against ``host`` (unless ``verify`` is False) and store them."""
    h = _host(host)
    if not username:
        raise InvalidInputError("login: give the user name with -u/--username")
    if not password:
        raise InvalidInputError("login: the password read from stdin is empty")
    register_secret(password)
    opts = transport or TransportOptions()
    if verify:
        from stella_oci.transport.client import RegistryClient
        from stella_oci.transport.repository import ping

        with RegistryClient(h, replace(opts, username=username, password=password)) as client:
            ping(client, what="login")
    path = docker_config_path(opts)
    doc = _read_config(path)
    helper = _helper_for(doc, h)
    if helper:
        payload = json.dumps({"ServerURL": h, "Username": username, "Secret": password}).encode()
        _run_helper(helper, "store", payload, h)
        # Docker records the host in auths (empty) so that `docker login` state is visible
        auths = doc.setdefault("auths", {})
        if isinstance(auths, dict) and h not in auths:
            auths[h] = {}
            _write_config(path, doc)
        return LoginResult(
            host=h, username=username, stored_in=f"credential helper docker-credential-{helper}"
        )
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = doc["auths"] = {}
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    register_secret(token)
    auths[h] = {"auth": token}
    _write_config(path, doc)
    return LoginResult(host=h, username=username, stored_in=f"config {path}")


def logout(host: str, *, transport: TransportOptions | None = None) -> LogoutResult:
    """Remove the credentials for ``host`` from the Docker config (and its credential helper)."""
    h = _host(host)
    opts = transport or TransportOptions()
    path = docker_config_path(opts)
    doc = _read_config(path)
    removed: list[str] = []
    helper = _helper_for(doc, h)
    if helper:
        _run_helper(helper, "erase", h.encode(), h)
        removed.append(f"credential helper docker-credential-{helper}")
    auths = doc.get("auths")
    if isinstance(auths, dict):
        keys = [k for k in auths if _host(str(k)).lower() == h.lower()]
        if keys:
            for k in keys:
                del auths[k]
            _write_config(path, doc)
            removed.append(f"config {path}")
    return LogoutResult(host=h, removed_from=removed)
