"""Sending one request to one registry host: :class:`RegistrySession`.

Holds the HTTP plumbing under :class:`~stella_oci.transport.client.RegistryClient`: the
``requests`` session (pool, proxies read once per host, CA bundle, client certificate),
the offline refusal before any socket, retries on connection errors and 408/429/5xx, the
HTTP -> HTTPS switch for loopback registries, and the auth flow (401 challenge -> token ->
retry, Basic credentials, token refresh, the AuthError naming where credentials were looked
for). Status mapping lives in :mod:`stella_oci.transport.http_errors`.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import requests
import requests.adapters
import urllib3.exceptions

from stella_oci.errors import (
    AuthError,
    OfflineError,
    RegistryAnswer,
    RegistryError,
    StellaOciError,
    TlsError,
    TransientError,
)
from stella_oci.jsonio import load_json
from stella_oci.transport import deadline
from stella_oci.transport.auth import (
    Challenge,
    TokenCache,
    merge_scopes,
    parse_www_authenticate,
)
from stella_oci.transport.bodies import TOKEN_BODY_LIMIT, keep_small_body, read_capped, small_body
from stella_oci.transport.credentials import Credentials, lookup_places, resolve_credentials
from stella_oci.transport.http_errors import (
    STREAM_ERRORS,
    Interrupted,
    error_detail,
    short_reason,
    status_error,
    tls_error,
)
from stella_oci.transport.options import TransportOptions
from stella_oci.transport.ratelimit import NO_GATE, HostGate, gate_for
from stella_oci.transport.redact import install_log_filter, redact, redact_query, register_secret
from stella_oci.transport.retry import RETRY_STATUSES, RetryBudget, parse_retry_after

log = logging.getLogger("stella_oci.transport")

_HTTPS_ONLY_MARKER = b"HTTP request to an HTTPS server"
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_UNSENDABLE = re.compile(r"[\s\x00-\x1f]")
"""Characters no URL we send may hold: whitespace (Unicode's, as ``str.isspace``) and controls."""
MAX_TOKEN_LIFETIME = 366 * 24 * 3600.0
"""A token ``expires_in`` beyond this (a year) is not a lifetime but a broken token service."""


class _GuardedAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections count their bytes and can be aborted by the watchdog
    (:mod:`stella_oci.transport.deadline`)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(deadline.POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = dict(deadline.POOL_CLASSES)
        return manager


class _Session(requests.Session):
    """A requests session that never follows redirects itself: ``Session.send`` would read a
    redirect's whole body (unbounded) even with ``allow_redirects=False``, to prepare the
    next hop; :meth:`RegistrySession._request_following` follows them instead."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


class _GuardedBody:
    """A streamed request body (it has a length) whose sending is held to the minimum
    throughput; once it is sent, the answer has the total deadline."""

    def __init__(self, body: Any, guard: deadline.RequestGuard) -> None:
        self._body = body
        self._guard = guard

    def __len__(self) -> int:
        return len(self._body)

    def __iter__(self) -> Any:
        self._guard.speed()
        yield from self._body
        self._guard.total()


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


class RegistrySession:
    """Authenticated, retried requests to one registry host (``host`` without a scheme)."""

    def __init__(self, host: str, options: TransportOptions) -> None:
        self.host = host
        self.options = options
        self._auto_http = False
        self._https_only_seen: bool | None = None
        if options.plain_http:
            self.scheme = "http"
        elif is_loopback(self.host) and not options.ca_file and not options.client_cert:
            self.scheme = "http"
            self._auto_http = True
        else:
            self.scheme = "https"
        self._session = _Session()
        # requests would re-read the whole environment (proxies, no_proxy, netrc, CA bundle
        # variables) on every request: a large share of the CPU time of a small request, and
        # a netrc entry would even replace the Authorization header this client chose. The
        # environment is read once instead: proxies per host (``_proxies_for``), the CA
        # bundle variables below; credentials come only from ``resolve_credentials``.
        self._session.trust_env = False
        self._proxy_cache: dict[str, dict[str, str]] = {}
        self._session.headers["User-Agent"] = options.user_agent
        # No compressed answers: a small gzip body can inflate to gigabytes.
        self._session.headers["Accept-Encoding"] = "identity"
        adapter = _GuardedAdapter(
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
        self._fetch_locks: dict[tuple[str, str, tuple[str, ...]], threading.Lock] = {}
        self._challenge: Challenge | None = None
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self._gate = gate_for(host, options.rate_limit)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def close(self) -> None:
        self._session.close()

    def raise_status(self, resp: requests.Response, what: str) -> StellaOciError:
        """The exception for an unexpected answer (call sites ``raise`` it)."""
        return status_error(resp, what, self.host)

    def location(self, resp: requests.Response, what: str) -> str:
        """The absolute URL of the answer's ``Location`` header; a RegistryError (exit 3)
        when there is none or it is not a usable http(s) URL."""
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(
                f"{what}: registry {self.host} answered {resp.status_code} without a Location header",
                registry=RegistryAnswer(self.host, resp.status_code),
            )
        target = _usable_url(resp.url or self.base_url + "/", loc)
        if target is None:
            raise RegistryError(
                f"{what}: registry {self.host} answered {resp.status_code} with Location "
                f"{redact_query(redact(loc[:200]))!r}, which is not a usable http(s) URL",
                registry=RegistryAnswer(self.host, resp.status_code),
            )
        return target

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The proxies the environment (``HTTPS_PROXY``, ``NO_PROXY``, ...) names for ``url``'s
        host, read once per scheme and host."""
        base = self.base_url
        if url.startswith(base) and url[len(base) : len(base) + 1] in ("/", ""):
            key = base  # (the registry's own URLs, nearly every request: no parsing)
        else:
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

    def exchange(
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

        Without ``retry`` a retryable failure raises :class:`Interrupted` for the caller.
        Every try has the total deadline ``options.timeout`` (a body sent from
        ``body_factory``, and a streamed answer's body, the minimum throughput instead). An
        answer that is not streamed has its body read here, at most
        :data:`~stella_oci.transport.bodies.SMALL_BODY_LIMIT` bytes of it.
        """
        self._check_offline(url)
        gate = self._gate if self._is_registry_url(url) else NO_GATE
        budget = RetryBudget(self.options.retry)
        while True:
            gate.wait()  # --rate-limit, a 429 any thread saw: before the deadline starts
            budget.restart_if_unused()  # (and a first wait is no retry time)
            guard = deadline.RequestGuard(
                self.options.timeout, self.options.min_speed, self.options.speed_window
            )
            try:
                with ExitStack() as stack, deadline.guarded(guard):
                    body = _request_body(stack, data, body_factory, guard)
                    resp = self._request_following(method, url, headers, body, allow_redirects, what)
                    if stream:
                        guard.watch_response(resp.raw)
                        guard.speed()
                    else:
                        keep_small_body(resp)
                        guard.finish()
            except requests.exceptions.SSLError as exc:
                guard.finish()
                raise tls_error(url, exc, self.options.ca_file) from None
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.HTTPError,
                deadline.DeadlineExceeded,
            ) as exc:
                guard.finish()
                reason = guard.fired or short_reason(exc)
                if method == "DELETE" and url.startswith("http://") and not guard.fired and self._https_only():
                    # Go's TLS server drops a plain-HTTP DELETE without an answer (it answers
                    # "HTTP request to an HTTPS server" only to the methods it recognizes)
                    if self._auto_http:
                        log.info("registry %s speaks HTTPS only: switching from HTTP", self.host)
                        self.scheme = "https"
                        self._auto_http = False
                        url = "https://" + url[len("http://") :]
                        continue
                    raise self._https_only_error() from None
                if not retry:
                    raise Interrupted(reason) from None
                delay = budget.next_delay()
                if delay is None:
                    raise TransientError(
                        f"{what}: cannot reach registry {self.host} ({reason}); gave up after "
                        f"{budget.tries} tries in {time.monotonic() - budget.started:.1f} s",
                        hint="check the registry address and that it is running and reachable; "
                        "retry later for a network outage"
                        + (
                            "; a slow link may need a larger --timeout or smaller --min-speed"
                            if guard.fired
                            else ""
                        ),
                    ) from None
                log.info(
                    "%s: %s %s failed (%s); retrying in %.2f s", what, method, redact(url), reason, delay
                )
                budget.sleep(delay)
                continue
            except BaseException:
                guard.finish()
                raise
            status = resp.status_code
            self._gate_saw(gate, resp)
            if status in RETRY_STATUSES:
                self._wait_to_retry(resp, retry, budget, method, url, what)
                continue
            if status == 400 and url.startswith("http://") and self._answered_https_only(resp, method, stream):
                url = "https://" + url[len("http://") :]
                continue
            return resp

    def _gate_saw(self, gate: HostGate, resp: requests.Response) -> None:
        """Tell the host's gate about an answer: a 429 closes the host for every thread."""
        if resp.status_code != 429:
            gate.answered()
            return
        policy = self.options.retry
        closed = gate.too_many(
            parse_retry_after(resp.headers.get("Retry-After")), policy.base_delay, policy.max_delay
        )
        log.info("registry %s answered 429: every request to it waits %.2f s", self.host, closed)

    def _wait_to_retry(
        self, resp: requests.Response, retry: bool, budget: RetryBudget, method: str, url: str, what: str
    ) -> None:
        """A retryable status (408/429/5xx): close the answer and wait (Retry-After honoured
        within the budget); raise Interrupted without ``retry``, TransientError out of budget."""
        status = resp.status_code
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if not retry:
            resp.close()
            raise Interrupted(f"HTTP {status}", retry_after)
        delay = budget.next_delay(retry_after)
        if delay is None:
            detail = error_detail(resp)
            resp.close()
            raise TransientError(
                f"{what}: registry {self.host} answered HTTP {status}{detail}; gave up after "
                f"{budget.tries} tries in {time.monotonic() - budget.started:.1f} s",
                hint="the registry is overloaded or rate-limiting: retry later, or raise "
                "--retries / --retry-max-time",
                registry=RegistryAnswer(self.host, status),
            )
        resp.close()
        log.info("%s: %s %s answered %d; retrying in %.2f s", what, method, redact(url), status, delay)
        budget.sleep(delay)

    def _answered_https_only(self, resp: requests.Response, method: str, stream: bool) -> bool:
        """A 400 to plain HTTP that means "this registry speaks HTTPS only": switch to HTTPS
        (True: send again) when the scheme was guessed, else refuse (exit 6). False for any
        other 400 (the answer is the caller's)."""
        if stream:
            keep_small_body(resp, 64 * 1024)
        body = small_body(resp, 4096)
        # an answer to HEAD has no body: ask GET /v2/ whether that 400 meant "HTTPS only"
        https_only = _HTTPS_ONLY_MARKER in body or (method == "HEAD" and not body and self._https_only())
        if not https_only:
            return False
        resp.close()
        if not self._auto_http:
            raise self._https_only_error()
        log.info("registry %s speaks HTTPS only: switching from HTTP", self.host)
        self.scheme = "https"
        self._auto_http = False
        return True

    def _https_only_error(self) -> TlsError:
        return TlsError(
            f"registry {self.host} speaks HTTPS only: it refused plain HTTP "
            '(HTTP 400 "Client sent an HTTP request to an HTTPS server")',
            problem="https-only",
            registry=RegistryAnswer(self.host, 400),
        )

    def _https_only(self) -> bool:
        """True when ``GET /v2/`` over plain HTTP answers Go's "HTTP request to an HTTPS server"
        (asked once per session)."""
        if self._https_only_seen is not None:
            return self._https_only_seen
        self._https_only_seen = False
        try:
            resp = self._session.get(
                f"http://{self.host}/v2/",
                timeout=(self.options.connect_timeout, min(self.options.read_timeout, 10.0)),
                stream=True,
                allow_redirects=False,
            )
        except requests.RequestException:
            return False
        try:
            self._https_only_seen = resp.status_code == 400 and _HTTPS_ONLY_MARKER in read_capped(resp, 4096)[0]
        except requests.RequestException:
            pass
        finally:
            resp.close()
        return self._https_only_seen

    def _request_following(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any,
        allow_redirects: bool,
        what: str,
    ) -> requests.Response:
        """Send, following redirects of GET and HEAD ourselves: at most
        :data:`MAX_REDIRECTS`, only to http(s) URLs, and without the Authorization header
        once a redirect leaves the host or goes from HTTPS to HTTP (a storage backend or CDN
        gets no registry credentials)."""
        hops = 0
        current = url
        hdrs = dict(headers)
        while True:
            resp = self._session.request(
                method,
                current,
                headers=hdrs,
                data=body,
                stream=True,
                allow_redirects=False,
                proxies=self._proxies_for(current),
                timeout=(self.options.connect_timeout, min(self.options.read_timeout, self.options.timeout)),
                # (plain HTTP: skip requests' per-request CA path checks)
                verify=self._verify if current.startswith("https:") else True,
                cert=self._cert,
            )
            if not (allow_redirects and method in ("GET", "HEAD") and resp.status_code in _REDIRECTS):
                return resp
            location = resp.headers.get("Location")
            if not location:
                return resp
            keep_small_body(resp, 64 * 1024)
            where = urllib.parse.urlsplit(current).netloc
            target = _usable_url(current, location)
            if target is None:
                shown = redact_query(redact(location[:200]))
                raise AuthError(
                    f"{what}: {where} redirected to {shown!r}, which is not a usable http(s) URL; refused",
                    hint="a registry may redirect blob downloads only to http:// or https:// URLs: "
                    "check the registry (or the proxy in front of it)",
                    details={"registry": self.host, "redirect": shown},
                )
            parts = urllib.parse.urlsplit(target)
            hops += 1
            if hops > MAX_REDIRECTS:
                raise TransientError(
                    f"{what}: {where} redirected more than {MAX_REDIRECTS} times (a redirect loop, "
                    f"last to {redact(target)!r})",
                    hint="the registry or its storage backend is misconfigured: retry later or "
                    "report it to the registry's operator",
                    details={"registry": self.host, "redirects": hops - 1},
                )
            self._check_offline(target)
            old = urllib.parse.urlsplit(current)
            if parts.netloc.lower() != old.netloc.lower() or (
                old.scheme == "https" and parts.scheme == "http"
            ):
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            log.info("%s: redirected to %s", what, redact(target))
            current = target

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
        found = self._tokens.find(key)
        if found is None:
            return {}, key
        used, token = found  # (maybe a token asked for more: its key is the one to drop)
        return {"Authorization": f"Bearer {token}"}, used

    def _auth_for(
        self, url: str, wanted: list[str], what: str
    ) -> tuple[dict[str, str], tuple[str, str, tuple[str, ...]] | None, bool]:
        """The Authorization header for ``url`` (none for another host than the registry), its
        token key, and whether a token was fetched for it now (the realm is known: fetching
        before sending saves a 401 round trip). Threads that need the same token at once
        (a push's first transfers) wait for one fetch instead of each asking the token
        service."""
        if not self._is_registry_url(url):
            return {}, None, False
        auth, key = self._auth_header(wanted)
        if key is None or auth or self._challenge is None:
            return auth, key, False
        with self._fetch_lock(key):
            auth, key = self._auth_header(wanted)  # (another thread may have fetched it meanwhile)
            if key is None or auth or self._challenge is None:
                return auth, key, False
            self._fetch_token(self._challenge, wanted, what)
        auth, key = self._auth_header(wanted)
        return auth, key, True

    def _fetch_lock(self, key: tuple[str, str, tuple[str, ...]]) -> threading.Lock:
        """One lock per token key: one fetch at a time for it."""
        with self._lock:
            return self._fetch_locks.setdefault(key, threading.Lock())

    def _foreign_401(self, answered: str, detail: str, what: str) -> AuthError:
        """A redirect target (storage backend, CDN) or a Location on another host asks for
        credentials: they are the registry's, it gets none of them."""
        other = urllib.parse.urlsplit(answered).netloc
        return AuthError(
            f"{what}: {other}, where registry {self.host} sent this request, answered "
            f"HTTP 401{detail}; stella-oci sends credentials only to the registry "
            "and to the token service its own challenge names, never to another host",
            hint="the registry's storage redirect (or upload location) must be usable "
            "without credentials (pre-signed); report it to the registry's operator",
            details={"registry": self.host, "host": other, "status": 401},
        )

    def send(
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
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        fresh = False
        rounds = 0
        refetched = False
        wanted = list(scopes)
        while True:
            if self.scheme == "https" and url.startswith(f"http://{self.host}/"):
                url = "https://" + url[len("http://") :]  # switched to HTTPS meanwhile
            auth, key, fetched = self._auth_for(url, wanted, what)
            fresh = fresh or fetched
            sent_auth = bool(auth)
            hdrs = dict(headers or {})
            hdrs.update(auth)
            resp = self.exchange(
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
                detail = error_detail(resp)
                answered = resp.url or url
                resp.close()
                if not self._is_registry_url(answered):
                    raise self._foreign_401(answered, detail, what)
                usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
                if sent_auth and fresh and key is not None and _token_invalid(challenges):
                    if refetched or self._challenge is None:
                        raise self._fresh_token_refused(wanted, what, detail)
                    # once: a token can die in flight (a stalled request, a short lifetime)
                    refetched = True
                    self._tokens.drop(key)
                    self._fetch_token(self._challenge, wanted, what)
                    continue
                if (sent_auth and fresh) or rounds >= 2 or not usable:
                    # Basic credentials sent and answered 401: the registry refused them
                    basic = self._challenge is not None and self._challenge.scheme == "basic"
                    raise self._auth_error(401, wanted, what, detail, refused=sent_auth and basic)
                rounds += 1
                wanted = self._answer_challenge(usable, key, wanted, what, detail)
                fresh = True
                continue
            if resp.status_code == 403:
                detail = error_detail(resp)
                resp.close()
                raise self._auth_error(403, wanted, what, detail)
            return resp

    def _answer_challenge(
        self,
        usable: list[Challenge],
        key: tuple[str, str, tuple[str, ...]] | None,
        wanted: list[str],
        what: str,
        detail: str,
    ) -> list[str]:
        """Take the registry's challenge (Bearer before Basic): fetch a token for the scopes
        (plus the one the challenge names) or check that there are Basic credentials. Returns
        the scopes to ask for from now on."""
        chosen = next((c for c in usable if c.scheme == "bearer"), usable[0])
        with self._lock:
            self._challenge = chosen
        if key is not None:
            self._tokens.drop(key)
        if chosen.scheme == "bearer":
            if chosen.scope:
                wanted = merge_scopes([*wanted, chosen.scope])
            new_key = (chosen.realm or "", chosen.service or "", tuple(merge_scopes(wanted)))
            with self._fetch_lock(new_key):
                # threads that met the first challenge together fetch one token: one that
                # sent none takes the token another fetched meanwhile
                if key is not None or self._tokens.find(new_key) is None:
                    self._fetch_token(chosen, wanted, what)
            return wanted
        creds = self._credentials()
        if creds is None or creds.username is None or creds.password is None:
            raise self._auth_error(401, wanted, what, detail)
        return wanted

    def _is_registry_url(self, url: str) -> bool:
        """Whether ``url`` points at this registry's host (credentials go nowhere else)."""
        base = self.base_url
        if url.startswith(base) and url[len(base) : len(base) + 1] in ("/", "?", ""):
            return True  # (scheme://host/... exactly: the common case, without parsing)
        parts = urllib.parse.urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == self.host.lower()

    def _fresh_token_refused(self, scopes: list[str], what: str, detail: str) -> AuthError:
        """The registry refused (``error="invalid_token"``) a token its token service had
        just issued for this request."""
        realm = redact(self._challenge.realm if self._challenge else "") or "?"
        scope_text = " ".join(merge_scopes(scopes)) or "(registry login)"
        return AuthError(
            f"{what}: registry {self.host} refused the tokens that its token service {realm} had "
            f"just issued for {scope_text}, twice (HTTP 401{detail}, error=invalid_token): the token expired (or was not yet valid) at once, so the credentials were "
            "accepted by the token service but the token was not",
            hint="the clocks of the registry and of its token service disagree, or the token "
            "service issues tokens with a lifetime shorter than a request: check both clocks "
            "(NTP) and the token lifetime",
            details={"registry": self.host, "scope": scope_text, "status": 401, "reason": "token expired"},
        )

    def _auth_error(
        self, status: int, scopes: list[str], what: str, detail: str, *, refused: bool = False
    ) -> AuthError:
        """``refused``: the registry (or its token service) answered 401 to the credentials
        themselves (a wrong user name, password or token), not to a missing permission."""
        creds = self._credentials() if status != 0 else None
        scope_text = " ".join(merge_scopes(scopes)) or "(registry login)"
        places = "; ".join(lookup_places(self.host, self.options))
        if refused and status == 401 and creds is not None:
            if creds.username is not None and creds.password is not None:
                secret = f"the user name or password of user {creds.username!r} from {creds.source}"
                fix = "check the user name and password (a token used as password may have expired or been revoked)"
            else:
                secret = f"the identity token from {creds.source}"
                fix = "the identity token may have expired or been revoked: log in again"
            return AuthError(
                f"{what}: registry {self.host} refused {secret} (HTTP 401{detail})",
                hint=f"{fix}; store working ones with: stella-oci login {self.host} -u USER "
                f"--password-stdin (the password read from stdin). Credentials are looked for in: {places}",
                details={
                    "registry": self.host,
                    "scope": scope_text,
                    "status": 401,
                    "reason": "credentials refused",
                },
                registry=RegistryAnswer(self.host, 401),
            )
        if creds is None:
            used = "no credentials were found"
        else:
            user = f" for user {creds.username!r}" if creds.username else " (identity token)"
            used = f"credentials from {creds.source}{user} were refused"
        verb = "denied access to" if status == 403 else "requires authentication for"
        return AuthError(
            f"{what}: registry {self.host} {verb} {scope_text} (HTTP {status}{detail}); {used}",
            hint="credentials are looked for in: " + places,
            details={"registry": self.host, "scope": scope_text, "status": status},
            registry=RegistryAnswer(self.host, status or None),
        )

    def _token_realm(self, challenge: Challenge, what: str) -> tuple[str, str, urllib.parse.SplitResult]:
        """The Bearer challenge's realm (an http(s) URL), its redacted name and its parts."""
        realm = challenge.realm
        if not realm:
            raise AuthError(f"{what}: registry {self.host} sent a Bearer challenge without a realm")
        realm_name = redact(realm)
        realm_parts = urllib.parse.urlsplit(realm)
        if realm_parts.scheme not in ("http", "https") or not realm_parts.netloc:
            raise AuthError(
                f"{what}: registry {self.host} names the token service {realm_name!r}, which is not "
                "an http(s) URL",
                hint="the registry's auth configuration (token realm) is broken: report it to its operator",
            )
        return realm, realm_name, realm_parts

    def _fetch_token(self, challenge: Challenge, scopes: list[str], what: str) -> str:
        realm, realm_name, realm_parts = self._token_realm(challenge, what)
        scope_list = merge_scopes(scopes)
        creds = self._credentials()
        has_secret = creds is not None and (
            bool(creds.identity_token) or (creds.username is not None and creds.password is not None)
        )
        if (
            has_secret
            and realm_parts.scheme == "http"
            and self.scheme == "https"
            and not self.options.insecure
        ):
            raise AuthError(
                f"{what}: registry {self.host} (HTTPS) names the token service {realm_name}, over "
                "plain HTTP: refusing to send credentials there in clear text",
                hint="fix the registry's token realm to an https:// URL; --insecure sends them anyway "
                "(only for test registries)",
                details={"registry": self.host, "realm": realm_name},
            )
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
            # (no redirects: a 307 would carry the refresh token in the body to another host)
            resp = self.exchange(
                "POST", realm, headers, data=body, stream=True, allow_redirects=False, what=what
            )
        else:
            params.extend(("scope", s) for s in scope_list)
            if creds is not None and creds.username is not None and creds.password is not None:
                headers["Authorization"] = _basic(creds.username, creds.password)
                params.append(("account", creds.username))
            sep = "&" if "?" in realm else "?"
            url = realm + (sep + urllib.parse.urlencode(params) if params else "")
            resp = self.exchange("GET", url, headers, stream=True, what=what)
        try:
            if resp.status_code in (401, 403):
                raise self._auth_error(
                    resp.status_code,
                    scope_list,
                    f"{what} (token endpoint {realm_name})",
                    error_detail(resp),
                    refused=has_secret,
                )
            if resp.status_code != 200:
                raise AuthError(
                    f"{what}: token endpoint {realm_name} of registry {self.host} answered HTTP "
                    f"{resp.status_code}{error_detail(resp)}"
                )
            try:
                raw, more = read_capped(resp, TOKEN_BODY_LIMIT)
            except STREAM_ERRORS as exc:
                raise TransientError(
                    f"{what}: token endpoint {realm_name} of registry {self.host}: connection lost "
                    f"while reading the token ({short_reason(exc)})",
                    hint="retry later",
                ) from None
            if more:
                raise AuthError(
                    f"{what}: token endpoint {realm_name} of registry {self.host} answered more than "
                    f"{TOKEN_BODY_LIMIT // 1024} KiB: not a token",
                    hint="the registry's token service (realm) is misconfigured",
                )
            try:
                doc = load_json(raw, "token answer", error=AuthError)
            except AuthError as exc:
                ctype = resp.headers.get("Content-Type", "?")
                raise AuthError(
                    f"{what}: token endpoint {realm_name} of registry {self.host} answered {ctype}, not "
                    f"valid JSON ({exc.message})",
                    hint="the registry's token service (realm) is misconfigured: check its OIDC/auth setup",
                ) from None
        finally:
            resp.close()
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{what}: token endpoint {realm_name} answered JSON without a token")
        register_secret(token)
        lifetime = _token_lifetime(doc.get("expires_in"), f"{what}: token endpoint {realm_name}")
        self._tokens.put((realm, challenge.service or "", tuple(scope_list)), token, lifetime)
        return token


def _token_lifetime(value: object, where: str) -> float:
    """Seconds a token lives, from a token answer's ``expires_in`` (default 60 s when absent
    or 0, as the distribution token spec says); anything but a number of seconds from 0 to a
    year is a broken token service (AuthError, exit 6)."""
    if value is None:
        return 60.0
    problem = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problem = f"is a JSON {type(value).__name__}, not a number of seconds"
    elif value != value:
        problem = "is not a number (NaN)"
    elif value < 0:
        problem = "is negative"
    elif value > MAX_TOKEN_LIFETIME:
        problem = f"is more than a year (the limit is {MAX_TOKEN_LIFETIME:.0f} s)"
    if problem is not None:
        shown = repr(value) if not isinstance(value, (int, float)) else str(value)
        if len(shown) > 40:
            shown = shown[:20] + f"...({len(shown)} characters)"
        raise AuthError(
            f"{where} answered a token whose expires_in {shown} {problem}",
            hint="the registry's token service is broken or hostile: report it to its operator",
        )
    seconds = float(value) if isinstance(value, (int, float)) else 60.0  # (<= a year: no overflow)
    return seconds if seconds > 0 else 60.0


def _usable_url(base: str, location: str) -> str | None:
    """``location`` resolved against ``base`` when it is an http(s) URL that requests can
    send to (a host, a valid port, no spaces), else None."""
    try:
        target = urllib.parse.urljoin(base, location.strip())
        parts = urllib.parse.urlsplit(target)
        _port = parts.port  # (raises ValueError for a port that is not a number in range)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if _UNSENDABLE.search(target):
        return None
    try:
        requests.models.PreparedRequest().prepare_url(target, None)
    except (requests.exceptions.RequestException, ValueError):
        return None
    return target


def _token_invalid(challenges: list[Challenge]) -> bool:
    """The registry says the bearer token itself is bad (expired, not yet valid, badly
    signed), as opposed to lacking the scope (``insufficient_scope``)."""
    return any(c.scheme == "bearer" and c.params.get("error") == "invalid_token" for c in challenges)


def _basic(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    register_secret(base64.b64encode(raw).decode())
    return "Basic " + base64.b64encode(raw).decode()


def _request_body(
    stack: ExitStack,
    data: bytes | None,
    body_factory: Callable[[ExitStack], Any] | None,
    guard: deadline.RequestGuard,
) -> Any:
    """The body to send: ``data``, or what ``body_factory`` makes; a sized, iterable stream is
    wrapped so that the request guard sees its progress."""
    if body_factory is None:
        return data
    body = body_factory(stack)
    if (
        not isinstance(body, (bytes, bytearray, memoryview, str))
        and hasattr(body, "__len__")
        and hasattr(body, "__iter__")
    ):
        return _GuardedBody(body, guard)
    return body
