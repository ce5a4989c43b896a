"""A Docker registry token server (the ``auth: token`` flow of ghcr.io, Harbor, GitLab) for tests.

It signs RS256 JWTs with a key whose self-signed certificate is both the registry's
``rootcertbundle`` and the token's ``x5c`` header, checks basic credentials against a user
table, and grants what was asked to known users (anonymous callers get ``pull`` only when
``anonymous_pull``). ``registry_ttl`` is how long the *registry* accepts a token, in whole
seconds (JWT ``exp`` is whole seconds; the distribution registry adds 60 s of leeway to it,
so ``exp`` is set 60 s earlier); ``accepted_until`` records, per token, when the registry
starts refusing it, and :meth:`TokenServer.wait_until_all_refused` waits for that. ``reported_ttl`` is the ``expires_in`` told to the client (lying about it lets a test
make a token die while the client still believes in it).
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.registry import RunningRegistry, start_registry

SERVICE = "stella-test-registry"
ISSUER = "stella-test-issuer"
LEEWAY = 60


@dataclass
class TokenServer:
    users: dict[str, str]
    anonymous_pull: bool = False
    registry_ttl: float = 300.0
    reported_ttl: int = 300
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    issued: list[dict[str, Any]] = field(default_factory=list)
    """One entry per token: account, scopes asked, access granted."""
    refused: int = 0
    tokens: list[str] = field(default_factory=list)
    accepted_until: list[float] = field(default_factory=list)
    """Per token: the wall-clock time (epoch seconds) after which the registry refuses it."""
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    cert_pem: bytes = b""

    def __post_init__(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stella-test-token-signer")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def issue(self, account: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if account is None:
                actions = [a for a in actions if a == "pull"] if self.anonymous_pull else []
            if actions:
                access.append({"type": typ, "name": name, "actions": actions})
        now = int(time.time())
        exp = now + int(self.registry_ttl) - LEEWAY
        claims = {
            "iss": ISSUER,
            "sub": account or "",
            "aud": SERVICE,
            "exp": exp,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [self._x5c]})
        self.issued.append({"account": account, "scopes": scopes, "access": access})
        self.tokens.append(token)
        self.accepted_until.append(float(exp + LEEWAY))
        return token

    def wait_until_all_refused(self) -> None:
        """Sleep until the registry refuses every token issued so far (computed from their
        ``exp``, plus a second for the registry's whole-second clock): no timing luck."""
        if self.accepted_until:
            time.sleep(max(0.0, max(self.accepted_until) + 1.0 - time.time()))

    def start(self) -> TokenServer:
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                account: str | None = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if server_ref.users.get(user) != password:
                        server_ref.refused += 1
                        body = b'{"details":"invalid credentials"}'
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    account = user
                scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
                token = server_ref.issue(account, scopes)
                body = json.dumps(
                    {"token": token, "access_token": token, "expires_in": server_ref.reported_ttl}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def start_token_registry(workdir: Path, server: TokenServer) -> RunningRegistry:
    """A registry in ``auth: token`` mode trusting ``server`` (which must be started)."""
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = workdir / "token-signer.pem"
    bundle.write_bytes(server.cert_pem)
    extra = {
        "auth": {
            "token": {
                "realm": server.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(bundle),
            }
        }
    }
    return start_registry(workdir, extra=extra)
