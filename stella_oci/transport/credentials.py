"""Where credentials for a registry host come from, in this order (the first hit wins):

1. ``TransportOptions.username`` / ``password`` (the CLI's ``--username`` / ``--password``);
2. the environment: ``STELLA_OCI_USERNAME`` / ``STELLA_OCI_PASSWORD``;
3. the Docker config (``TransportOptions.registry_config``, else ``$DOCKER_CONFIG/config.json``,
   else ``~/.docker/config.json``):
   a. ``credHelpers[host]``: runs ``docker-credential-<name> get`` with the host on stdin;
   b. ``auths[host]``: ``auth`` (base64 ``user:password``), ``username``/``password``, or
      ``identitytoken`` (an OAuth2 refresh token);
   c. ``credsStore``: runs ``docker-credential-<name> get`` like a helper;
4. for ``ghcr.io`` only: ``GITHUB_TOKEN`` with ``GITHUB_ACTOR`` as the user name.

Nothing is run or read until a registry asks for credentials. Every secret found is
registered with :func:`~stella_oci.transport.redact.register_secret`. User names are taken
verbatim (``robot$name`` stays ``robot$name``: nothing here goes through a shell).
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stella_oci.errors import AuthError
from stella_oci.jsonio import load_json
from stella_oci.transport.options import TransportOptions
from stella_oci.transport.redact import redact, register_secret

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    """An OAuth2 refresh token (Docker ``identitytoken`` / helper user ``<token>``)."""
    source: str = ""
    """Where they came from, for messages (never the secret itself)."""


def docker_config_path(options: TransportOptions) -> Path:
    if options.registry_config:
        return Path(options.registry_config).expanduser()
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env).expanduser() / "config.json"
    return Path.home() / ".docker" / "config.json"


def _normalize_key(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000``; Docker Hub's aliases -> ``docker.io``."""
    k = key.strip()
    if "://" in k:
        k = k.split("://", 1)[1]
    k = k.split("/", 1)[0].lower()
    return "docker.io" if k in _DOCKER_HUB_HOSTS else k


def _helper_server_url(host: str) -> str:
    return DOCKER_HUB_KEY if _normalize_key(host) == "docker.io" else host


def lookup_places(host: str, options: TransportOptions) -> list[str]:
    """Human-readable list of the places credentials were looked for (for AuthError)."""
    places = ["--username/--password-stdin", "STELLA_OCI_USERNAME/STELLA_OCI_PASSWORD"]
    places.append(f"{docker_config_path(options)} (credHelpers, auths, credsStore)")
    if _normalize_key(host) == "ghcr.io":
        places.append("GITHUB_TOKEN/GITHUB_ACTOR")
    return places


def run_helper(name: str, host: str) -> Credentials | None:
    """``docker-credential-<name> get``; None when the helper knows no credentials for ``host``."""
    exe = shutil.which(f"docker-credential-{name}")
    where = f"credential helper docker-credential-{name}"
    if exe is None:
        raise AuthError(
            f"{where} (named in the Docker config for {host}) is not on PATH",
            hint=f"install docker-credential-{name}, or remove it from the Docker config",
        )
    try:
        proc = subprocess.run(
            [exe, "get"],
            input=_helper_server_url(host).encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthError(f"{where} failed for {host}: {redact(exc)}") from None
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        err = (out + proc.stderr.decode("utf-8", "replace")).strip()
        if "credentials not found" in err.lower() or not err:
            return None
        raise AuthError(f"{where} failed for {host} (exit {proc.returncode}): {redact(err)[:300]}")
    try:
        doc = load_json(proc.stdout, where, max_bytes=1024 * 1024, error=AuthError)
    except AuthError:
        raise AuthError(f"{where} answered something that is not JSON for {host}") from None
    if not isinstance(doc, dict):
        raise AuthError(f"{where} answered a JSON {type(doc).__name__}, not an object, for {host}")
    user = doc.get("Username")
    secret = doc.get("Secret")
    if not isinstance(secret, str) or not secret:
        return None
    register_secret(secret)
    if user == "<token>":
        return Credentials(None, None, identity_token=secret, source=where)
    return Credentials(str(user) if user is not None else None, secret, source=where)


def _from_auth_entry(entry: dict[str, Any], where: str) -> Credentials | None:
    identity = entry.get("identitytoken")
    if isinstance(identity, str) and identity:
        register_secret(identity)
        return Credentials(None, None, identity_token=identity, source=where)
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(f"{where}: field 'auth' is not base64 of 'user:password'") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"{where}: field 'auth' does not decode to 'user:password'")
        register_secret(password)
        register_secret(auth)
        return Credentials(user, password, source=where)
    e_user = entry.get("username")
    e_password = entry.get("password")
    if isinstance(e_user, str) and isinstance(e_password, str):
        register_secret(e_password)
        return Credentials(e_user, e_password, source=where)
    return None


def _read_docker_config(path: Path) -> dict[str, Any] | None:
    """The Docker config as a JSON object; None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthError(f"cannot read the Docker config {path}: {exc.strerror}") from None
    try:
        doc = load_json(text.encode("utf-8"), f"the Docker config {path}", error=AuthError)
    except AuthError as exc:
        raise AuthError(f"{exc.message}", hint="fix or move the file; it is read for credentials") from None
    if not isinstance(doc, dict):
        raise AuthError(f"the Docker config {path} is not a JSON object")
    return doc


def from_docker_config(host: str, options: TransportOptions) -> Credentials | None:
    path = docker_config_path(options)
    doc = _read_docker_config(path)
    if doc is None:
        return None
    want = _normalize_key(host)
    helpers = doc.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _normalize_key(key) == want and isinstance(name, str) and name:
                return run_helper(name, host)
    auths = doc.get("auths") or {}
    if isinstance(auths, dict):
        for key, entry in sorted(auths.items()):
            if _normalize_key(key) == want and isinstance(entry, dict):
                creds = _from_auth_entry(entry, f"{path} (auths[{key!r}])")
                if creds is not None:
                    return creds
    store = doc.get("credsStore")
    if isinstance(store, str) and store:
        return run_helper(store, host)
    return None


def resolve_credentials(host: str, options: TransportOptions) -> Credentials | None:
    """The credentials for ``host`` (see the module docstring for the order), or None."""
    if options.username is not None or options.password is not None:
        register_secret(options.password)
        return Credentials(options.username, options.password, source="--username/--password-stdin")
    env_user = os.environ.get("STELLA_OCI_USERNAME")
    env_pass = os.environ.get("STELLA_OCI_PASSWORD")
    if env_user is not None or env_pass is not None:
        register_secret(env_pass)
        return Credentials(env_user, env_pass, source="STELLA_OCI_USERNAME/STELLA_OCI_PASSWORD")
    creds = from_docker_config(host, options)
    if creds is not None:
        return creds
    if _normalize_key(host) == "ghcr.io":
        token = os.environ.get("GITHUB_TOKEN")
        if token:
            register_secret(token)
            actor = os.environ.get("GITHUB_ACTOR") or "github-actions"
            return Credentials(actor, token, source="GITHUB_TOKEN/GITHUB_ACTOR")
    return None
