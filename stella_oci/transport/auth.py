"""``WWW-Authenticate`` parsing and the bearer-token cache.

The distribution auth flow: a request without (valid) credentials answers 401 with
``WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry",
scope="repository:foo:pull"`` (or ``Basic realm="..."``). For Bearer we ask the realm for a
token for the scopes we need (anonymously, with basic credentials, or with an OAuth2
refresh token), cache it per scope set until it expires, and resend with
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    scheme: str
    """Lower-case: ``bearer`` or ``basic`` (others are kept but not answered)."""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")


def parse_www_authenticate(header: str | None) -> list[Challenge]:
    """All the challenges in a ``WWW-Authenticate`` value, in order."""
    if not header:
        return []
    out: list[Challenge] = []
    pos = 0
    text = header.strip()
    scheme_re = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)")
    while pos < len(text):
        m = scheme_re.match(text, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        while pos < len(text):
            pm = _PARAM_RE.match(text, pos)
            if not pm:
                break
            # A bare token followed by a space (not '=') starts the next challenge.
            params[pm.group(1).lower()] = (
                re.sub(r"\\(.)", r"\1", pm.group(2)) if pm.group(2) is not None else pm.group(3)
            )
            pos = pm.end()
        out.append(Challenge(scheme, params))
    return out


def repository_scope(repo: str, actions: str) -> str:
    return f"repository:{repo}:{actions}"


def merge_scopes(scopes: list[str]) -> list[str]:
    """Merge ``repository:x:pull`` + ``repository:x:push`` into ``repository:x:pull,push``; sorted."""
    merged: dict[tuple[str, str], set[str]] = {}
    order: list[tuple[str, str]] = []
    for scope in scopes:
        for one in scope.split(" "):
            if not one:
                continue
            parts = one.rsplit(":", 1)
            if len(parts) != 2 or ":" not in parts[0]:
                key = (one, "")
                acts: set[str] = set()
            else:
                key = (parts[0], "")
                acts = {a for a in parts[1].split(",") if a}
            if key not in merged:
                merged[key] = set()
                order.append(key)
            merged[key] |= acts
    out = []
    for key in sorted(order):
        acts = merged[key]
        out.append(f"{key[0]}:{','.join(sorted(acts))}" if acts else key[0])
    return out


def _actions(scope: str) -> tuple[str, frozenset[str]]:
    """``repository:x:pull,push`` -> (``repository:x``, {pull, push}); a scope without
    actions is its own resource with none."""
    resource, sep, acts = scope.rpartition(":")
    if not sep or ":" not in resource:
        return scope, frozenset()
    return resource, frozenset(a for a in acts.split(",") if a)


def scopes_cover(have: tuple[str, ...], want: tuple[str, ...]) -> bool:
    """Whether a token granted for the scopes ``have`` was asked for everything ``want``
    asks: each wanted resource is there with at least the wanted actions (a
    ``repository:x:pull,push`` token serves a ``repository:x:pull`` request)."""
    granted: dict[str, frozenset[str]] = {}
    for scope in have:
        resource, acts = _actions(scope)
        granted[resource] = granted.get(resource, frozenset()) | acts
    for scope in want:
        resource, acts = _actions(scope)
        if resource not in granted or not acts <= granted[resource]:
            return False
    return True


@dataclass
class CachedToken:
    token: str = field(repr=False)
    expires_at: float
    """time.monotonic() after which we consider the token expired."""


class TokenCache:
    """Bearer tokens per (realm, service, scopes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, tuple[str, ...]], CachedToken] = {}

    def get(self, key: tuple[str, str, tuple[str, ...]]) -> str | None:
        with self._lock:
            tok = self._tokens.get(key)
            if tok is None:
                return None
            if time.monotonic() >= tok.expires_at:
                del self._tokens[key]
                return None
            return tok.token

    def find(self, key: tuple[str, str, tuple[str, ...]]) -> tuple[tuple[str, str, tuple[str, ...]], str] | None:
        """A live token for ``key``, or else one of the same realm and service asked for a
        superset of its scopes (a push's ``pull,push`` token serves its ``pull`` requests):
        (the key it is cached under, the token). None: a token has to be fetched."""
        token = self.get(key)
        if token is not None:
            return key, token
        realm, service, scopes = key
        now = time.monotonic()
        with self._lock:
            for other, tok in self._tokens.items():
                if (
                    other[0] == realm
                    and other[1] == service
                    and now < tok.expires_at
                    and scopes_cover(other[2], scopes)
                ):
                    return other, tok.token
        return None

    def put(self, key: tuple[str, str, tuple[str, ...]], token: str, expires_in: float) -> None:
        # Refresh a little early: a token that is about to expire could die in flight.
        margin = min(10.0, expires_in / 5)
        with self._lock:
            self._tokens[key] = CachedToken(token, time.monotonic() + max(1.0, expires_in - margin))

    def drop(self, key: tuple[str, str, tuple[str, ...]]) -> None:
        with self._lock:
            self._tokens.pop(key, None)
