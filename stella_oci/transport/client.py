"""The OCI distribution API over HTTP, for one registry host.

INTERFACE CONTRACT (used by ``stella_oci.targets.registry``; keep the signatures):
every method raises only :mod:`stella_oci.errors` exceptions:
  - 404 / MANIFEST_UNKNOWN / BLOB_UNKNOWN / NAME_UNKNOWN  -> NotFoundError (exit 4)
  - 401 after auth was tried, 403                        -> AuthError (exit 6)
  - connection errors, 408/429/5xx beyond the retries    -> TransientError (exit 10)
  - DIGEST_INVALID / SIZE_INVALID on upload              -> VerificationError (exit 3)
  - TLS verification failure (the server's identity)     -> AuthError (exit 6) naming the fix
                                                            (--ca-file, or --insecure)
  - offline mode                                          -> OfflineError (exit 5) before any socket
and never puts a password or token into a message.

Scheme: HTTPS, except with ``plain_http`` and for loopback hosts (``localhost``,
``127.0.0.0/8``, ``::1``) without ``ca_file``/``client_cert``, which get HTTP directly. When a
loopback registry answers HTTP with Go's "Client sent an HTTP request to an HTTPS server"
400, the client switches to HTTPS for that host (and so verifies its certificate).
See docs/transport.md for the auth flow, retries and the upload strategy.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import urllib3.exceptions

from stella_oci.errors import (
    AuthError,
    InternalError,
    InvalidInputError,
    NotFoundError,
    OfflineError,
    StellaOciError,
    TransientError,
    VerificationError,
)
from stella_oci.transport.auth import (
    Challenge,
    TokenCache,
    merge_scopes,
    parse_www_authenticate,
    repository_scope,
)
from stella_oci.transport.credentials import Credentials, lookup_places, resolve_credentials
from stella_oci.transport.options import TransportOptions
from stella_oci.transport.redact import install_log_filter, redact, register_secret
from stella_oci.transport.retry import RETRY_STATUSES, RetryBudget, parse_retry_after

log = logging.getLogger("stella_oci.transport")

BlobOpener = Callable[[int], AbstractContextManager[Iterator[bytes]]]
"""Open a blob's bytes starting at the given offset, as an iterator of chunks."""

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
READ_CHUNK = 1024 * 1024
_HTTPS_ONLY_MARKER = b"HTTP request to an HTTPS server"
_NOT_FOUND_CODES = {"MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"}
_VERIFY_CODES = {"DIGEST_INVALID", "SIZE_INVALID"}
_STREAM_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    OSError,
)


@dataclass(frozen=True)
class ManifestResponse:
    data: bytes
    media_type: str
    """Content-Type the registry answered with."""
    digest_header: str | None
    """Docker-Content-Digest, when the registry sent one."""


@dataclass(frozen=True)
class ManifestHead:
    media_type: str
    digest_header: str | None
    size: int


@dataclass(frozen=True)
class PutManifestResult:
    digest_header: str | None
    subject_header: str | None
    """The OCI-Subject response header (the registry processed ``subject``: referrers API)."""


class _Interrupted(Exception):
    """A single exchange failed in a way the caller may retry (connection cut, 5xx, 429)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` and ``::1``, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    name = name.lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _short_reason(exc: BaseException) -> str:
    """A one-line reason for a connection failure, without requests' pool noise."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if m:
        return m.group(1).strip()
    for needle in (
        "timed out",
        "Connection aborted",
        "Connection reset",
        "IncompleteRead",
        "Broken pipe",
        "RemoteDisconnected",
        "Connection broken",
    ):
        if needle.lower() in text.lower():
            return needle.lower()
    return type(exc).__name__


class _BodyStream:
    """A request body of exactly ``length`` bytes from an iterator, with a length for requests.

    Having ``__len__`` makes requests send ``Content-Length`` instead of chunked encoding.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        length: int,
        progress: Callable[[int], None],
        what: str,
        *,
        final: bool = True,
    ):
        self._chunks = chunks
        self._length = length
        self._progress = progress
        self._what = what
        self._final = final

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        remaining = self._length
        if remaining <= 0:
            return
        for chunk in self._chunks:
            if not chunk or remaining <= 0:
                continue  # (past the end: a verifying source raises on the excess itself)
            if len(chunk) > remaining:
                chunk = bytes(chunk[:remaining])
            remaining -= len(chunk)
            self._progress(len(chunk))
            yield chunk
            if remaining <= 0 and not self._final:
                # A part that is not the blob's last: stop without pulling another chunk, so
                # the source (and the engine's running hash) stands exactly at the end of this
                # part and the next part goes on from there, instead of re-reading and
                # re-hashing the blob from byte 0 for every part (quadratic in the size).
                return
        # The blob's last part: the source was read to its end (a verifying source checks
        # size and digest there and raises before the request completes).
        if remaining > 0:
            raise InvalidInputError(
                f"{self._what}: the source ended {remaining} bytes short of the size the descriptor states"
            )


class RegistryClient:
    """All the distribution API calls stella-oci makes to one registry host."""

    def __init__(self, host: str, options: TransportOptions) -> None:
        if "://" in host:
            host = host.split("://", 1)[1]
        self.host = host.rstrip("/")
        self.options = options
        self._auto_http = False
        if options.plain_http:
            self.scheme = "http"
        elif is_loopback(self.host) and not options.ca_file and not options.client_cert:
            self.scheme = "http"
            self._auto_http = True
        else:
            self.scheme = "https"
        self._session = requests.Session()
        # requests would re-read the whole environment (proxies, no_proxy, netrc, CA bundle
        # variables) on every request: a large share of the CPU time of a small request, and
        # a netrc entry would even replace the Authorization header this client chose. The
        # environment is read once instead: proxies per host (``_proxies_for``), the CA
        # bundle variables below; credentials come only from ``resolve_credentials``.
        self._session.trust_env = False
        self._proxy_cache: dict[str, dict[str, str]] = {}
        self._session.headers["User-Agent"] = options.user_agent
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=options.pool_size, pool_maxsize=options.pool_size, max_retries=0
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._verify: bool | str = options.ca_file if options.ca_file else not options.insecure
        if self._verify is True:
            env_ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if env_ca:
                self._verify = env_ca
        self._cert: tuple[str, str] | str | None = None
        if options.client_cert:
            self._cert = (
                (options.client_cert, options.client_key) if options.client_key else options.client_cert
            )
        if options.insecure:
            with contextlib.suppress(Exception):
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        install_log_filter()
        self._lock = threading.Lock()
        self._tokens = TokenCache()
        self._challenge: Challenge | None = None
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self._closed = False
        self._self_mount: bool | None = None
        """Whether the registry takes ``?mount=D&from=<same repo>`` (None: not tried yet)."""

    # ------------------------------------------------------------------ plumbing

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def _url(self, path: str) -> str:
        return self.base_url + path

    def close(self) -> None:
        self._closed = True
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The proxies the environment (``HTTPS_PROXY``, ``NO_PROXY``, ...) names for ``url``'s
        host, read once per scheme and host."""
        parts = urllib.parse.urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        found = self._proxy_cache.get(key)
        if found is None:
            found = dict(requests.utils.get_environ_proxies(key + "/"))
            self._proxy_cache[key] = found
        return found

    def _check_offline(self, url: str) -> None:
        if self.options.offline:
            where = urllib.parse.urlsplit(url).netloc or self.host
            raise OfflineError(
                f"offline mode: refusing to contact registry {where}",
                hint="drop --offline, or use an OCI layout (oci:DIR) or archive as the source/target",
            )

    def _credentials(self) -> Credentials | None:
        with self._lock:
            if not self._creds_loaded:
                self._creds = resolve_credentials(self.host, self.options)
                self._creds_loaded = True
            return self._creds

    def _tls_error(self, url: str, exc: BaseException) -> StellaOciError:
        text = redact(exc)
        where = urllib.parse.urlsplit(url).netloc
        if "certificate" in text.lower() or "CERTIFICATE_VERIFY_FAILED" in text:
            return AuthError(
                f"TLS verification of registry {where} failed: its certificate is not trusted "
                f"({_tls_reason(text)})",
                hint="give the registry's CA certificate with --ca-file FILE, or skip verification with "
                "--insecure (only for test registries)",
            )
        if "wrong version number" in text.lower() or "record layer" in text.lower():
            return AuthError(
                f"TLS handshake with registry {where} failed: it does not seem to speak HTTPS",
                hint="use --plain-http for registries served over plain HTTP",
            )
        return AuthError(
            f"TLS handshake with registry {where} failed ({_tls_reason(text)})",
            hint="check --ca-file, --client-cert/--client-key, or use --insecure for test registries",
        )

    def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        data: bytes | None = None,
        body_factory: Callable[[ExitStack], Any] | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
        retry: bool = True,
        what: str,
    ) -> requests.Response:
        """One request, retried on connection errors and 408/429/5xx (when ``retry``).

        Without ``retry`` a retryable failure raises :class:`_Interrupted` for the caller.
        """
        self._check_offline(url)
        budget = RetryBudget(self.options.retry)
        while True:
            try:
                with ExitStack() as stack:
                    body = body_factory(stack) if body_factory is not None else data
                    resp = self._session.request(
                        method,
                        url,
                        headers=headers,
                        data=body,
                        stream=stream,
                        allow_redirects=allow_redirects,
                        proxies=self._proxies_for(url),
                        timeout=(self.options.connect_timeout, self.options.read_timeout),
                        # (plain HTTP: skip requests' per-request CA path checks)
                        verify=self._verify if url.startswith("https:") else True,
                        cert=self._cert,
                    )
            except requests.exceptions.SSLError as exc:
                raise self._tls_error(url, exc) from None
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                reason = _short_reason(exc)
                if not retry:
                    raise _Interrupted(reason) from None
                delay = budget.next_delay()
                if delay is None:
                    raise TransientError(
                        f"{what}: cannot reach registry {self.host} ({reason}); gave up after "
                        f"{budget.tries} tries in {time.monotonic() - budget.started:.1f} s",
                        hint="check the registry address and that it is running and reachable; "
                        "retry later for a network outage",
                    ) from None
                log.info(
                    "%s: %s %s failed (%s); retrying in %.2f s", what, method, redact(url), reason, delay
                )
                budget.sleep(delay)
                continue
            status = resp.status_code
            if status in RETRY_STATUSES:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                if not retry:
                    resp.close()
                    raise _Interrupted(f"HTTP {status}", retry_after)
                delay = budget.next_delay(retry_after)
                if delay is None:
                    detail = _error_detail(resp)
                    resp.close()
                    raise TransientError(
                        f"{what}: registry {self.host} answered HTTP {status}{detail}; gave up after "
                        f"{budget.tries} tries in {time.monotonic() - budget.started:.1f} s",
                        hint="the registry is overloaded or rate-limiting: retry later",
                    )
                resp.close()
                log.info(
                    "%s: %s %s answered %d; retrying in %.2f s", what, method, redact(url), status, delay
                )
                budget.sleep(delay)
                continue
            if status == 400 and self._auto_http and url.startswith("http://"):
                if _HTTPS_ONLY_MARKER in resp.content[:4096]:
                    resp.close()
                    log.info("registry %s speaks HTTPS only: switching from HTTP", self.host)
                    self.scheme = "https"
                    self._auto_http = False
                    url = "https://" + url[len("http://") :]
                    continue
            return resp

    def _auth_header(
        self, scopes: list[str]
    ) -> tuple[dict[str, str], tuple[str, str, tuple[str, ...]] | None]:
        """The Authorization header we already know to send for ``scopes`` (no network)."""
        challenge = self._challenge
        if challenge is None:
            return {}, None
        if challenge.scheme == "basic":
            creds = self._credentials()
            if creds and creds.username is not None and creds.password is not None:
                return {"Authorization": _basic(creds.username, creds.password)}, None
            return {}, None
        key = (challenge.realm or "", challenge.service or "", tuple(merge_scopes(scopes)))
        token = self._tokens.get(key)
        if token is None:
            return {}, key
        return {"Authorization": f"Bearer {token}"}, key

    def _send(
        self,
        method: str,
        path_or_url: str,
        *,
        scopes: list[str],
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        body_factory: Callable[[ExitStack], Any] | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
        retry: bool = True,
        what: str,
    ) -> requests.Response:
        """An authenticated exchange: answers 401 challenges, raises AuthError on refusal."""
        url = path_or_url if "://" in path_or_url else self._url(path_or_url)
        fresh = False
        rounds = 0
        wanted = list(scopes)
        while True:
            if self.scheme == "https" and url.startswith(f"http://{self.host}/"):
                url = "https://" + url[len("http://") :]  # switched to HTTPS meanwhile
            auth, key = self._auth_header(wanted)
            if key is not None and not auth and self._challenge is not None:
                # We know the realm: fetch the token before sending (saves a 401 round trip).
                self._fetch_token(self._challenge, wanted, what)
                fresh = True
                auth, key = self._auth_header(wanted)
            sent_auth = bool(auth)
            hdrs = dict(headers or {})
            hdrs.update(auth)
            resp = self._exchange(
                method,
                url,
                hdrs,
                data=data,
                body_factory=body_factory,
                stream=stream,
                allow_redirects=allow_redirects,
                retry=retry,
                what=what,
            )
            if resp.status_code == 401:
                challenges = parse_www_authenticate(resp.headers.get("WWW-Authenticate"))
                detail = _error_detail(resp)
                resp.close()
                usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
                if (sent_auth and fresh) or rounds >= 2 or not usable:
                    raise self._auth_error(401, wanted, what, detail)
                rounds += 1
                chosen = next((c for c in usable if c.scheme == "bearer"), usable[0])
                with self._lock:
                    self._challenge = chosen
                if key is not None:
                    self._tokens.drop(key)
                if chosen.scheme == "bearer":
                    if chosen.scope:
                        wanted = merge_scopes([*wanted, chosen.scope])
                    self._fetch_token(chosen, wanted, what)
                else:
                    creds = self._credentials()
                    if creds is None or creds.username is None or creds.password is None:
                        raise self._auth_error(401, wanted, what, detail)
                fresh = True
                continue
            if resp.status_code == 403:
                detail = _error_detail(resp)
                resp.close()
                raise self._auth_error(403, wanted, what, detail)
            return resp

    def _auth_error(self, status: int, scopes: list[str], what: str, detail: str) -> AuthError:
        creds = self._credentials() if status != 0 else None
        scope_text = " ".join(merge_scopes(scopes)) or "(registry login)"
        if creds is None:
            used = "no credentials were found"
        else:
            user = f" for user {creds.username!r}" if creds.username else " (identity token)"
            used = f"credentials from {creds.source}{user} were refused"
        verb = "denied access to" if status == 403 else "requires authentication for"
        return AuthError(
            f"{what}: registry {self.host} {verb} {scope_text} (HTTP {status}{detail}); {used}",
            hint="credentials are looked for in: " + "; ".join(lookup_places(self.host, self.options)),
            details={"registry": self.host, "scope": scope_text, "status": status},
        )

    def _fetch_token(self, challenge: Challenge, scopes: list[str], what: str) -> str:
        realm = challenge.realm
        if not realm:
            raise AuthError(f"{what}: registry {self.host} sent a Bearer challenge without a realm")
        scope_list = merge_scopes(scopes)
        creds = self._credentials()
        headers = {"Accept": "application/json"}
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        if creds is not None and creds.identity_token:
            form = dict(params)
            form.update(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "client_id": "stella-oci",
                    "scope": " ".join(scope_list),
                }
            )
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urllib.parse.urlencode(form).encode()
            resp = self._exchange("POST", realm, headers, data=body, what=what)
        else:
            params.extend(("scope", s) for s in scope_list)
            if creds is not None and creds.username is not None and creds.password is not None:
                headers["Authorization"] = _basic(creds.username, creds.password)
                params.append(("account", creds.username))
            sep = "&" if "?" in realm else "?"
            url = realm + (sep + urllib.parse.urlencode(params) if params else "")
            resp = self._exchange("GET", url, headers, what=what)
        realm_name = redact(realm)
        try:
            if resp.status_code in (401, 403):
                raise self._auth_error(
                    resp.status_code, scope_list, f"{what} (token endpoint {realm_name})", _error_detail(resp)
                )
            if resp.status_code != 200:
                raise AuthError(
                    f"{what}: token endpoint {realm_name} of registry {self.host} answered HTTP "
                    f"{resp.status_code}{_error_detail(resp)}"
                )
            try:
                doc = json.loads(resp.content[: 1024 * 1024])
            except ValueError:
                ctype = resp.headers.get("Content-Type", "?")
                raise AuthError(
                    f"{what}: token endpoint {realm_name} of registry {self.host} answered {ctype}, not JSON",
                    hint="the registry's token service (realm) is misconfigured: check its OIDC/auth setup",
                ) from None
        finally:
            resp.close()
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{what}: token endpoint {realm_name} answered JSON without a token")
        register_secret(token)
        expires_in = doc.get("expires_in", 60)
        if not isinstance(expires_in, (int, float)) or expires_in <= 0:
            expires_in = 60
        self._tokens.put((realm, challenge.service or "", tuple(scope_list)), token, float(expires_in))
        return token

    def _raise_status(self, resp: requests.Response, what: str) -> StellaOciError:
        """The exception for an unexpected answer (call sites ``raise`` it)."""
        status = resp.status_code
        codes, detail = _error_codes(resp)
        resp.close()
        if status == 404 or codes & _NOT_FOUND_CODES:
            return NotFoundError(f"{what}: not found in registry {self.host} (HTTP {status}{detail})")
        if codes & _VERIFY_CODES:
            return VerificationError(
                f"{what}: registry {self.host} rejected the content (HTTP {status}{detail})"
            )
        if status in RETRY_STATUSES:
            return TransientError(f"{what}: registry {self.host} answered HTTP {status}{detail}")
        if status in (401, 403):
            return AuthError(f"{what}: registry {self.host} refused access (HTTP {status}{detail})")
        if status == 405:
            return InvalidInputError(
                f"{what}: registry {self.host} does not allow this operation (HTTP 405{detail})",
                hint="the registry may be read-only or have deletes disabled",
            )
        if 400 <= status < 500:
            return InvalidInputError(
                f"{what}: registry {self.host} refused the request (HTTP {status}{detail})"
            )
        return InternalError(f"{what}: unexpected answer HTTP {status} from registry {self.host}{detail}")

    # ------------------------------------------------------------------ API

    def ping(self) -> None:
        """GET /v2/ (authenticating if challenged)."""
        resp = self._send("GET", "/v2/", scopes=[], what=f"ping {self.host}")
        try:
            if resp.status_code != 200:
                raise self._raise_status(resp, f"GET {self.host}/v2/")
        finally:
            resp.close()

    def get_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestResponse:
        """GET a manifest by tag or digest; refuses bodies over 4 MiB (VerificationError)."""
        what = (
            f"manifest {self.host}/{repo}:{reference}"
            if ":" not in reference
            else f"manifest {self.host}/{repo}@{reference}"
        )
        resp = self._send(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[repository_scope(repo, "pull")],
            headers={"Accept": ", ".join(accept)},
            stream=True,
            what=what,
        )
        try:
            if resp.status_code != 200:
                raise self._raise_status(resp, what)
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
                raise VerificationError(
                    f"{what}: the registry announces {declared} bytes, over the 4 MiB manifest limit"
                )
            buf = bytearray()
            try:
                for chunk in resp.raw.stream(64 * 1024, decode_content=True):
                    buf += chunk
                    if len(buf) > MAX_MANIFEST_BYTES:
                        raise VerificationError(f"{what}: manifest larger than the 4 MiB limit")
            except _STREAM_ERRORS as exc:
                raise TransientError(
                    f"{what}: connection lost while reading ({_short_reason(exc)})"
                ) from None
            media_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
            return ManifestResponse(bytes(buf), media_type, resp.headers.get("Docker-Content-Digest"))
        finally:
            resp.close()

    def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        what = f"manifest {self.host}/{repo}{'@' if ':' in reference else ':'}{reference}"
        resp = self._send(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[repository_scope(repo, "pull")],
            headers={"Accept": ", ".join(accept)},
            what=what,
        )
        try:
            if resp.status_code != 200:
                raise self._raise_status(resp, what)
            size = resp.headers.get("Content-Length", "")
            return ManifestHead(
                media_type=resp.headers.get("Content-Type", "").split(";", 1)[0].strip(),
                digest_header=resp.headers.get("Docker-Content-Digest"),
                size=int(size) if size.isdigit() else -1,
            )
        finally:
            resp.close()

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> PutManifestResult:
        what = f"manifest {self.host}/{repo}{'@' if ':' in reference else ':'}{reference}"
        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidInputError(f"{what}: {len(data)} bytes, over the 4 MiB that registries must accept")
        resp = self._send(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scopes=[repository_scope(repo, "pull,push")],
            headers={"Content-Type": media_type},
            data=data,
            what=what,
        )
        try:
            if resp.status_code not in (200, 201, 202):
                raise self._raise_status(resp, what)
            return PutManifestResult(
                resp.headers.get("Docker-Content-Digest"), resp.headers.get("OCI-Subject")
            )
        finally:
            resp.close()

    def delete_manifest(self, repo: str, digest: str) -> None:
        what = f"manifest {self.host}/{repo}@{digest}"
        resp = self._send(
            "DELETE",
            f"/v2/{repo}/manifests/{digest}",
            scopes=[repository_scope(repo, "delete")],
            what=what,
        )
        try:
            if resp.status_code not in (200, 202, 204):
                raise self._raise_status(resp, what)
        finally:
            resp.close()

    def blob_size(self, repo: str, digest: str) -> int | None:
        """HEAD the blob: its size, or None when the registry does not have it in ``repo``."""
        what = f"blob {self.host}/{repo}@{digest}"
        resp = self._send(
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            scopes=[repository_scope(repo, "pull")],
            what=what,
        )
        try:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._raise_status(resp, what)
            size = resp.headers.get("Content-Length", "")
            return int(size) if size.isdigit() else 0
        finally:
            resp.close()

    def _blob_get(self, repo: str, digest: str, pos: int, what: str) -> tuple[requests.Response, int]:
        """GET the blob from ``pos``; returns the response and how many leading bytes to skip."""
        headers = {"Accept-Encoding": "identity"}
        if pos:
            headers["Range"] = f"bytes={pos}-"
        resp = self._send(
            "GET",
            f"/v2/{repo}/blobs/{digest}",
            scopes=[repository_scope(repo, "pull")],
            headers=headers,
            stream=True,
            what=what,
        )
        if resp.status_code == 206:
            crange = resp.headers.get("Content-Range", "")
            m = re.match(r"bytes (\d+)-", crange)
            if m and int(m.group(1)) != pos:
                resp.close()
                raise InvalidInputError(f"{what}: asked for bytes from {pos}, the registry sent {crange!r}")
            return resp, 0
        if resp.status_code == 200:
            return resp, pos  # Range ignored: skip what we already have
        if resp.status_code == 416 and pos:
            return resp, -1  # nothing left after pos
        raise self._raise_status(resp, what)

    def open_blob(self, repo: str, digest: str, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob (from ``offset`` with a Range request). Retries/resumes itself on a
        cut connection. Does not verify the digest: callers wrap it in VerifyingStream."""
        what = f"blob {self.host}/{repo}@{digest}"
        resp, skip = self._blob_get(repo, digest, offset, what)
        return self._blob_context(repo, digest, offset, resp, skip, what)

    @contextlib.contextmanager
    def _blob_context(
        self, repo: str, digest: str, offset: int, resp: requests.Response, skip: int, what: str
    ) -> Iterator[Iterator[bytes]]:
        state = {"resp": resp}

        def chunks() -> Iterator[bytes]:
            pos = offset
            to_skip = skip
            budget = RetryBudget(self.options.retry)
            last_failure_pos = offset
            while True:
                current = state["resp"]
                if to_skip < 0:
                    return
                try:
                    for chunk in current.raw.stream(READ_CHUNK, decode_content=False):
                        if not chunk:
                            continue
                        if to_skip:
                            if len(chunk) <= to_skip:
                                to_skip -= len(chunk)
                                continue
                            chunk = chunk[to_skip:]
                            to_skip = 0
                        pos += len(chunk)
                        yield chunk
                    return
                except _STREAM_ERRORS as exc:
                    current.close()
                    reason = _short_reason(exc)
                    if pos > last_failure_pos:
                        budget = RetryBudget(self.options.retry)  # progress made: fresh budget
                    last_failure_pos = pos
                    delay = budget.next_delay()
                    if delay is None:
                        raise TransientError(
                            f"{what}: download cut at byte {pos} ({reason}); gave up after "
                            f"{budget.tries} tries",
                            hint="retry later; the download resumes where it stopped",
                        ) from None
                    log.info("%s: download cut at byte %d (%s); resuming in %.2f s", what, pos, reason, delay)
                    budget.sleep(delay)
                    state["resp"], to_skip = self._blob_get(repo, digest, pos, what)

        try:
            yield chunks()
        finally:
            state["resp"].close()

    # ------------------------------------------------------------------ uploads

    def _start_upload(self, repo: str, what: str) -> tuple[str, int]:
        resp = self._send(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scopes=[repository_scope(repo, "pull,push")],
            headers={"Content-Length": "0"},
            what=what,
        )
        try:
            if resp.status_code != 202:
                raise self._raise_status(resp, what)
            return self._location(resp, what), _min_chunk(resp)
        finally:
            resp.close()

    def _location(self, resp: requests.Response, what: str) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise InternalError(
                f"{what}: registry {self.host} answered {resp.status_code} without a Location"
            )
        return urllib.parse.urljoin(resp.url or self.base_url + "/", loc)

    def _upload_status(self, repo: str, location: str, what: str) -> tuple[int, str] | None:
        """GET the upload URL: (next offset, location), or None when the session is gone."""
        resp = self._send("GET", location, scopes=[repository_scope(repo, "pull,push")], what=what)
        try:
            if resp.status_code != 204 and resp.status_code != 200:
                log.info("%s: upload session not resumable (HTTP %d)", what, resp.status_code)
                return None
            offset = _range_end(resp.headers.get("Range"))
            loc = self._location(resp, what) if resp.headers.get("Location") else location
            return offset, loc
        finally:
            resp.close()

    def upload_blob(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: BlobOpener,
        *,
        mount_from: Sequence[str] = (),
        on_bytes: Callable[[int], None] | None = None,
    ) -> str:
        """Upload a blob unless present. Without ``mount_from``, one POST asks the registry to
        mount the blob from ``repo`` itself (201: present, "exists"; 202: the upload starts on
        that answer), which saves the HEAD round trip per blob; a registry that refuses such a
        request gets HEAD + POST from then on. With ``mount_from``: HEAD, then a
        cross-repository mount from each of ``mount_from``, then a streamed monolithic PUT (size <= chunk_size) or chunked
        PATCH uploads; resumes an interrupted upload from the registry's reported offset.
        ``on_bytes(n)`` is called as bytes are sent (for progress). Returns how the blob got
        there: "exists", "mounted" or "uploaded"."""
        what = f"blob {self.host}/{repo}@{digest}"
        location: str | None = None
        min_chunk = 0
        sources = [s for s in dict.fromkeys(mount_from) if s and s != repo]
        if not sources and self._self_mount is not False:
            # One request instead of HEAD + POST: "mount" the blob from this repository itself.
            # 201: the repository has it; 202: it does not, and the answer opens the upload.
            started = self._start_self_mount(repo, digest, what)
            if started == "exists":
                return "exists"
            if isinstance(started, tuple):
                location, min_chunk = started
                return self._upload(repo, digest, size, opener, location, min_chunk, on_bytes, what)
        if self.blob_size(repo, digest) is not None:
            return "exists"
        for i, src in enumerate(sources):
            query = urllib.parse.urlencode({"mount": digest, "from": src})
            try:
                resp = self._send(
                    "POST",
                    f"/v2/{repo}/blobs/uploads/?{query}",
                    scopes=[repository_scope(repo, "pull,push"), repository_scope(src, "pull")],
                    headers={"Content-Length": "0"},
                    what=f"{what} (mount from {src})",
                )
            except (AuthError, NotFoundError) as exc:
                log.info("%s: mount from %s refused (%s)", what, src, exc.message)
                continue
            try:
                if resp.status_code == 201:
                    return "mounted"
                if resp.status_code == 202:
                    loc = self._location(resp, what)
                    if i == len(sources) - 1:
                        location, min_chunk = loc, _min_chunk(resp)
                    else:
                        self._cancel_upload(repo, loc, what)
            finally:
                resp.close()
        if location is None:
            location, min_chunk = self._start_upload(repo, what)
        return self._upload(repo, digest, size, opener, location, min_chunk, on_bytes, what)

    def _start_self_mount(self, repo: str, digest: str, what: str) -> str | tuple[str, int] | None:
        """``POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<repo>``: "exists" (201), the
        upload location and minimum chunk (202), or None when the registry refuses such a
        request (then this client goes back to HEAD + POST for every later blob)."""
        query = urllib.parse.urlencode({"mount": digest, "from": repo})
        try:
            resp = self._send(
                "POST",
                f"/v2/{repo}/blobs/uploads/?{query}",
                scopes=[repository_scope(repo, "pull,push")],
                headers={"Content-Length": "0"},
                retry=False,
                what=what,
            )
        except (_Interrupted, InvalidInputError, NotFoundError) as exc:
            log.info("%s: mount from the repository itself not accepted (%s)", what, exc)
            self._self_mount = False
            return None
        try:
            if resp.status_code == 201:
                self._self_mount = True
                return "exists"
            if resp.status_code == 202 and resp.headers.get("Location"):
                self._self_mount = True
                return self._location(resp, what), _min_chunk(resp)
            log.info("%s: mount from the repository itself answered HTTP %d", what, resp.status_code)
            self._self_mount = False
            return None
        finally:
            resp.close()

    def _cancel_upload(self, repo: str, location: str, what: str) -> None:
        try:
            resp = self._send("DELETE", location, scopes=[repository_scope(repo, "pull,push")], what=what)
            resp.close()
        except StellaOciError:
            pass

    def _upload(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: BlobOpener,
        location: str,
        min_chunk: int,
        on_bytes: Callable[[int], None] | None,
        what: str,
    ) -> str:
        scopes = [repository_scope(repo, "pull,push")]
        chunk = max(self.options.chunk_size, min_chunk, 1)
        monolithic = size <= chunk
        offset = 0
        high_water = 0
        budget = RetryBudget(self.options.retry)
        octet = "application/octet-stream"

        def body(start: int, length: int) -> Callable[[ExitStack], Any]:
            def make(stack: ExitStack) -> Any:
                pos = [start]

                def progress(n: int) -> None:
                    nonlocal high_water
                    pos[0] += n
                    if pos[0] > high_water:
                        if on_bytes is not None:
                            on_bytes(pos[0] - high_water)
                        high_water = pos[0]

                if length == 0:
                    return b""
                return _BodyStream(
                    stack.enter_context(opener(start)), length, progress, what, final=start + length >= size
                )

            return make

        while True:
            try:
                if monolithic:
                    resp = self._send(
                        "PUT",
                        _with_query(location, digest=digest),
                        scopes=scopes,
                        headers={"Content-Type": octet, "Content-Length": str(size)},
                        body_factory=body(0, size),
                        retry=False,
                        what=what,
                    )
                    if resp.status_code in (201, 204):
                        resp.close()
                        return "uploaded"
                    raise self._raise_status(resp, what)
                if offset < size:
                    end = min(size, offset + chunk)
                    resp = self._send(
                        "PATCH",
                        location,
                        scopes=scopes,
                        headers={
                            "Content-Type": octet,
                            "Content-Length": str(end - offset),
                            "Content-Range": f"{offset}-{end - 1}",
                        },
                        body_factory=body(offset, end - offset),
                        retry=False,
                        what=what,
                    )
                    if resp.status_code != 202:
                        if resp.status_code == 416:
                            resp.close()
                            raise _Interrupted("HTTP 416 (offset mismatch)")
                        raise self._raise_status(resp, what)
                    location = self._location(resp, what)
                    reported = resp.headers.get("Range")
                    resp.close()
                    offset = _range_end(reported) if reported else end
                    if offset != end:
                        log.info("%s: registry reports %d bytes after a PATCH up to %d", what, offset, end)
                    budget = RetryBudget(self.options.retry)  # progress made: fresh budget
                    continue
                resp = self._send(
                    "PUT",
                    _with_query(location, digest=digest),
                    scopes=scopes,
                    headers={"Content-Type": octet, "Content-Length": "0"},
                    data=b"",
                    retry=False,
                    what=what,
                )
                if resp.status_code in (201, 204):
                    resp.close()
                    return "uploaded"
                raise self._raise_status(resp, what)
            except _Interrupted as exc:
                delay = budget.next_delay(exc.retry_after)
                if delay is None:
                    raise TransientError(
                        f"{what}: upload interrupted at byte {offset} of {size} ({exc.reason}); "
                        f"gave up after {budget.tries} tries",
                        hint="retry later: blobs already in the registry are skipped",
                    ) from None
                log.info(
                    "%s: upload interrupted (%s); checking the session in %.2f s", what, exc.reason, delay
                )
                budget.sleep(delay)
                if self.blob_size(repo, digest) is not None:
                    return "uploaded"
                status = None
                with contextlib.suppress(NotFoundError, InvalidInputError):
                    status = self._upload_status(repo, location, what)
                if status is None:
                    location, min_chunk = self._start_upload(repo, what)
                    chunk = max(self.options.chunk_size, min_chunk, 1)
                    offset = 0
                else:
                    offset, location = status
                    monolithic = False
                    log.info("%s: resuming upload at byte %d", what, offset)
                if offset == 0 and size <= chunk:
                    monolithic = True

    # ------------------------------------------------------------------ listing

    def list_tags(self, repo: str) -> list[str]:
        what = f"tags of {self.host}/{repo}"
        tags: list[str] = []
        url = self._url(f"/v2/{repo}/tags/list")
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            resp = self._send("GET", url, scopes=[repository_scope(repo, "pull")], what=what)
            try:
                if resp.status_code != 200:
                    raise self._raise_status(resp, what)
                try:
                    doc = resp.json()
                except ValueError:
                    raise InvalidInputError(
                        f"{what}: registry {self.host} answered a tag list that is not JSON"
                    ) from None
                page = doc.get("tags") if isinstance(doc, dict) else None
                tags.extend(t for t in (page or []) if isinstance(t, str))
                nxt = resp.links.get("next", {}).get("url")
                url = urllib.parse.urljoin(resp.url or url, nxt) if nxt else ""
            finally:
                resp.close()
        return tags

    def get_referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> bytes | None:
        """GET /v2/<repo>/referrers/<digest>: the OCI index bytes, or None when the registry
        has no referrers API (so the caller falls back to the ``sha256-<hex>`` tag)."""
        what = f"referrers of {self.host}/{repo}@{digest}"
        path = f"/v2/{repo}/referrers/{digest}"
        if artifact_type:
            path += "?" + urllib.parse.urlencode({"artifactType": artifact_type})
        resp = self._send(
            "GET",
            path,
            scopes=[repository_scope(repo, "pull")],
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
            stream=True,
            what=what,
        )
        try:
            if resp.status_code in (200, 404):
                buf = bytearray()
                for chunk in resp.raw.stream(64 * 1024, decode_content=True):
                    buf += chunk
                    if len(buf) > MAX_MANIFEST_BYTES:
                        raise VerificationError(f"{what}: referrers index larger than the 4 MiB limit")
                if resp.status_code == 200:
                    return bytes(buf)
                return bytes(buf) if _is_oci_index(bytes(buf)) else None
            if resp.status_code in (400, 405):
                return None
            raise self._raise_status(resp, what)
        finally:
            resp.close()


def _basic(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    register_secret(base64.b64encode(raw).decode())
    return "Basic " + base64.b64encode(raw).decode()


def _tls_reason(text: str) -> str:
    m = re.search(r"certificate verify failed: ([^()'\"]+)", text)
    if m:
        return "certificate verify failed: " + m.group(1).strip()
    m = re.search(r"\[SSL: [A-Z_]+\] ([^()'\"]+)", text)
    return m.group(1).strip() if m else "TLS error"


def _error_codes(resp: requests.Response) -> tuple[set[str], str]:
    """The distribution error codes of a response body and a short ``: CODE: message`` detail."""
    try:
        raw = resp.content[: 64 * 1024]
    except _STREAM_ERRORS:
        return set(), ""
    codes: set[str] = set()
    parts: list[str] = []
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list):
        for err in doc["errors"]:
            if isinstance(err, dict):
                code = str(err.get("code", ""))
                codes.add(code)
                parts.append(f"{code}: {err.get('message', '')}".strip(": "))
    elif raw:
        text = raw.decode("utf-8", "replace").strip().splitlines()
        if text and not text[0].lstrip().startswith("<"):
            parts.append(text[0][:200])
    detail = f": {'; '.join(parts)}" if parts else ""
    return codes, redact(detail)


def _error_detail(resp: requests.Response) -> str:
    return _error_codes(resp)[1]


def _min_chunk(resp: requests.Response) -> int:
    value = resp.headers.get("OCI-Chunk-Min-Length", "")
    return int(value) if value.isdigit() else 0


def _range_end(value: str | None) -> int:
    """``Range: 0-1023`` -> 1024 bytes received (``0-0`` is read as nothing received)."""
    if not value:
        return 0
    m = re.match(r"(?:bytes=)?(\d+)-(\d+)", value.strip())
    if not m:
        return 0
    end = int(m.group(2))
    return 0 if end == 0 else end + 1


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = parts.query
    extra = urllib.parse.urlencode(params)
    query = f"{query}&{extra}" if query else extra
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _is_oci_index(data: bytes) -> bool:
    try:
        doc = json.loads(data)
    except ValueError:
        return False
    return (
        isinstance(doc, dict)
        and (
            doc.get("mediaType") == "application/vnd.oci.image.index.v1+json"
            or isinstance(doc.get("manifests"), list)
        )
        and doc.get("schemaVersion") == 2
    )
