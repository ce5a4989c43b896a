"""Authentication against real registries: bearer tokens, htpasswd over TLS, credential helpers.

Every test also checks that no password or token used shows up in an exception or a log line.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from stella_oci.cli.hints import hint_for
from stella_oci.errors import AuthError, TlsError
from stella_oci.oci.digest import iter_file
from stella_oci.transport import RegistryClient, RetryPolicy, TransportOptions, redact
from tests.support.registry import RunningRegistry, start_registry
from tests.support.registry_api import list_tags, ping
from tests.support.tls import make_ca, make_server_cert
from tests.support.token_server import TokenServer, start_token_registry
from tests.test_transport_basic import OCI_MANIFEST, MiB, file_opener, make_blob, read_blob

USER = "robot$ci-pusher"
PASSWORD = "Pa55-w0rd-never-printed"
WRONG = "wrong-pass-never-printed"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for var in ("STELLA_OCI_USERNAME", "STELLA_OCI_PASSWORD", "GITHUB_TOKEN", "GITHUB_ACTOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    caplog.set_level(logging.DEBUG)


def assert_no_secret(text: str, *secrets: str) -> None:
    for s in (PASSWORD, WRONG, *secrets):
        assert s not in text, "a secret leaked"
    assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in text


def push_sample(client: RegistryClient, repo: str, tmp_path: Path, size: int = 300_000) -> tuple[str, bytes]:
    path, digest = make_blob(tmp_path / f"blob-{repo.replace('/', '_')}", size, seed=size)
    assert client.upload_blob(repo, digest, size, file_opener(path)) == "uploaded"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest, "size": size},
            "layers": [],
        }
    ).encode()
    client.put_manifest(repo, "v1", manifest, OCI_MANIFEST)
    return digest, path.read_bytes()


# ----------------------------------------------------------------------------- bearer tokens


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer(users={USER: PASSWORD}, anonymous_pull=True).start()
    yield server
    server.stop()


@pytest.fixture
def token_registry(tmp_path: Path, token_server: TokenServer) -> Iterator[RunningRegistry]:
    reg = start_token_registry(tmp_path / "treg", token_server)
    yield reg
    reg.stop()


def test_token_auth_push_and_pull(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = RegistryClient(token_registry.host, TransportOptions(username=USER, password=PASSWORD))
    digest, data = push_sample(client, "tok/app", tmp_path)
    assert any("repository:tok/app:pull,push" in i["scopes"] for i in token_server.issued)
    assert all(i["account"] == USER for i in token_server.issued)
    # tokens are cached per scope: a handful, not one per request
    assert len(token_server.issued) <= 3
    anon = RegistryClient(token_registry.host, TransportOptions())
    assert read_blob(anon, "tok/app", digest) == data
    assert anon.get_manifest("tok/app", "v1", [OCI_MANIFEST]).media_type == OCI_MANIFEST
    with pytest.raises(AuthError) as exc:
        push_sample(anon, "tok/other", tmp_path, size=1000)
    msg = str(exc.value)
    assert exc.value.exit_code == 6
    assert token_registry.host in msg and "repository:tok/other:pull,push" in msg
    assert "STELLA_OCI_USERNAME" in msg and "config.json" in msg
    assert_no_secret(msg + caplog.text, *token_server.tokens)


def test_token_wrong_password(
    token_registry: RunningRegistry, token_server: TokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = RegistryClient(token_registry.host, TransportOptions(username=USER, password=WRONG))
    with pytest.raises(AuthError) as exc:
        list_tags(client, "tok/app")
    assert token_server.refused >= 1
    msg = str(exc.value)
    assert f"refused the user name or password of user {USER!r} from --username/--password-stdin" in msg  # an option that exists
    assert_no_secret(msg + caplog.text + repr(exc.value.details), *token_server.tokens)


def test_token_expiring_mid_upload_is_refreshed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The client is told every token lives 300 s; the registry accepts the first ones 3-4 s.
    # Before the second part of the upload goes out, the test waits until the registry
    # refuses every token issued so far (computed from their exp, not guessed), so that
    # PATCH meets a 401 and must fetch a new token and resend the part. Tokens issued after
    # that live long, so nothing else depends on timing.
    server = TokenServer(users={USER: PASSWORD}, registry_ttl=4, reported_ttl=300).start()
    reg = start_token_registry(tmp_path / "short", server)
    try:
        size = 5 * MiB + 99
        path, digest = make_blob(tmp_path / "slow", size, seed=21)
        issued_before_wait: list[int] = []

        @contextlib.contextmanager
        def opener(offset: int) -> Iterator[Iterator[bytes]]:
            if offset >= MiB and not issued_before_wait:
                issued_before_wait.append(len(server.issued))
                server.registry_ttl = 300
                server.wait_until_all_refused()
            yield iter_file(path, offset, 256 * 1024)

        opts = TransportOptions(
            username=USER,
            password=PASSWORD,
            chunk_size=MiB,
            retry=RetryPolicy(attempts=6, base_delay=0.05, max_delay=1, total_seconds=15),
        )
        client = RegistryClient(reg.host, opts)
        assert client.upload_blob("tok/slow", digest, size, opener) == "uploaded"
        assert issued_before_wait, "the upload never reached its second part"
        assert len(server.issued) > issued_before_wait[0]  # refreshed during the upload
        stored = reg.blob_path(digest)
        assert stored.stat().st_size == size
        assert "sha256:" + hashlib.sha256(stored.read_bytes()).hexdigest() == digest
        assert_no_secret(caplog.text, *server.tokens)
    finally:
        reg.stop()
        server.stop()


def test_token_refused_right_after_issue_reads_as_expired(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Every token is already expired when issued (a token service whose clock runs behind):
    # the credentials were fine (the token service accepted them), the token was not.
    server = TokenServer(users={USER: PASSWORD}, registry_ttl=-5).start()
    reg = start_token_registry(tmp_path / "expired", server)
    try:
        client = RegistryClient(reg.host, TransportOptions(username=USER, password=PASSWORD))
        with pytest.raises(AuthError) as exc:
            list_tags(client, "tok/app")
        msg = str(exc.value)
        assert exc.value.exit_code == 6
        assert "token expired" in msg and "just issued" in msg and "clocks" in msg
        assert "were refused" not in msg
        assert exc.value.details["reason"] == "token expired"
        assert server.refused == 0 and len(server.issued) == 2  # fetched again once, then named
        assert_no_secret(msg + caplog.text, *server.tokens)
    finally:
        reg.stop()
        server.stop()


# ----------------------------------------------------------------------------- htpasswd over TLS


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[RunningRegistry, Path]]:
    ca, ca_cert, ca_key = make_ca(tmp_path / "ca")
    server = make_server_cert(tmp_path / "ca", ca_cert, ca_key)
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"{USER}:{hashed}\n")
    reg = start_registry(
        tmp_path / "tlsreg",
        scheme="https",
        extra={
            "auth": {"htpasswd": {"realm": "stella-test", "path": str(htpasswd)}},
            "http": {"tls": {"certificate": str(server.cert), "key": str(server.key)}},
        },
    )
    yield reg, ca.cert
    reg.stop()


def test_htpasswd_tls_with_ca_file(
    tls_registry: tuple[RunningRegistry, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reg, ca = tls_registry
    client = RegistryClient(reg.host, TransportOptions(ca_file=str(ca), username=USER, password=PASSWORD))
    assert client.scheme == "https"
    digest, data = push_sample(client, "basic/app", tmp_path)
    assert read_blob(client, "basic/app", digest) == data
    assert_no_secret(caplog.text)


def test_htpasswd_without_credentials_is_auth_error(
    tls_registry: tuple[RunningRegistry, Path], caplog: pytest.LogCaptureFixture
) -> None:
    reg, ca = tls_registry
    client = RegistryClient(reg.host, TransportOptions(ca_file=str(ca)))
    with pytest.raises(AuthError) as exc:
        client.get_manifest("basic/app", "v1", [OCI_MANIFEST])
    msg = str(exc.value)
    assert exc.value.exit_code == 6
    assert reg.host in msg and "repository:basic/app:pull" in msg and "no credentials" in msg
    assert "no-docker-config" in msg  # names where it looked
    wrong = RegistryClient(reg.host, TransportOptions(ca_file=str(ca), username=USER, password=WRONG))
    with pytest.raises(AuthError) as exc2:
        ping(wrong)
    assert "refused" in str(exc2.value)
    assert_no_secret(str(exc2.value) + caplog.text)


def test_tls_without_ca_names_ca_file(
    tls_registry: tuple[RunningRegistry, Path], caplog: pytest.LogCaptureFixture
) -> None:
    reg, _ = tls_registry
    client = RegistryClient(reg.host, TransportOptions(username=USER, password=PASSWORD))
    with pytest.raises(AuthError) as exc:
        ping(client)
    msg = str(exc.value)
    assert exc.value.exit_code == 6
    assert isinstance(exc.value, TlsError) and exc.value.problem == "untrusted"
    assert "certificate verify failed" in msg and reg.host in msg
    hint = hint_for(exc.value) or ""  # the CLI's hint names the options
    assert "--ca-file" in hint and "--insecure" in hint
    # --insecure skips verification (still HTTPS)
    insecure = RegistryClient(reg.host, TransportOptions(insecure=True, username=USER, password=PASSWORD))
    ping(insecure)
    assert insecure.scheme == "https"
    assert_no_secret(msg + caplog.text)


# ----------------------------------------------------------------------------- credential sources


def write_helper(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    helper = bin_dir / "docker-credential-testhelper"
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "action = sys.argv[1]\n"
        "host = sys.stdin.read().strip()\n"
        f"open({str(log)!r}, 'a').write(action + ' ' + host + '\\n')\n"
        "if host.startswith('unknown'):\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        f"print(json.dumps({{'ServerURL': host, 'Username': {USER!r}, 'Secret': {PASSWORD!r}}}))\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_credential_helper_from_config(
    tls_registry: tuple[RunningRegistry, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg, ca = tls_registry
    bin_dir = tmp_path / "bin"
    log = tmp_path / "helper.log"
    write_helper(bin_dir, log)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"credHelpers": {reg.host: "testhelper"}}))
    client = RegistryClient(reg.host, TransportOptions(ca_file=str(ca), registry_config=str(config)))
    digest, data = push_sample(client, "helper/app", tmp_path)
    assert read_blob(client, "helper/app", digest) == data
    assert log.read_text().splitlines() == [f"get {reg.host}"]  # asked once, for this host
    assert_no_secret(caplog.text)


def test_docker_config_auths_and_env(
    tls_registry: tuple[RunningRegistry, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, ca = tls_registry
    config = tmp_path / "d2" / "config.json"
    config.parent.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {f"https://{reg.host}": {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config.parent))
    ping(RegistryClient(reg.host, TransportOptions(ca_file=str(ca))))
    # username/password fields
    config.write_text(json.dumps({"auths": {reg.host: {"username": USER, "password": PASSWORD}}}))
    ping(RegistryClient(reg.host, TransportOptions(ca_file=str(ca))))
    # the environment wins over a config with wrong credentials
    config.write_text(json.dumps({"auths": {reg.host: {"username": USER, "password": WRONG}}}))
    with pytest.raises(AuthError) as exc:
        ping(RegistryClient(reg.host, TransportOptions(ca_file=str(ca))))
    assert "auths" in str(exc.value)
    monkeypatch.setenv("STELLA_OCI_USERNAME", USER)
    monkeypatch.setenv("STELLA_OCI_PASSWORD", PASSWORD)
    ping(RegistryClient(reg.host, TransportOptions(ca_file=str(ca))))
    assert_no_secret(str(exc.value))


# ----------------------------------------------------------------------------- redaction


def test_redact_removes_secrets() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    texts = [
        f"Authorization: Bearer {token}",
        "{'Authorization': 'Basic cm9ib3QkY2k6cGFzc3dvcmQ='}",
        f'{{"token": "{token}", "expires_in": 60}}',
        "https://robot$ci:hunter2-secret@registry.example/v2/",
        "https://storage.example/blob?X-Amz-Signature=abcdef123456&X-Amz-Credential=AKIA/x&ok=1",
        "GET /token?service=x&access_token=abcdefabcdef",
        '{"password": "hunter2-secret"}',
    ]
    for text in texts:
        out = redact(text)
        assert token not in out
        assert "hunter2-secret" not in out
        assert "cm9ib3QkY2k6cGFzc3dvcmQ=" not in out
        assert "abcdef123456" not in out and "abcdefabcdef" not in out
    assert "ok=1" in redact(texts[4])
    assert redact("plain message about registry.example") == "plain message about registry.example"
    assert "sekrit-value-1" not in redact("x sekrit-value-1 y", ["sekrit-value-1"])


def test_one_client_shared_by_threads(
    token_registry: RunningRegistry, token_server: TokenServer, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = RegistryClient(
        token_registry.host, TransportOptions(username=USER, password=PASSWORD, chunk_size=MiB)
    )
    blobs = [make_blob(tmp_path / f"t{i}", MiB + 1000 * i, seed=100 + i) for i in range(5)]

    def push(item: tuple[Path, str]) -> str:
        path, digest = item
        return client.upload_blob("threads/app", digest, path.stat().st_size, file_opener(path, 256 * 1024))

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(push, blobs)) == ["uploaded"] * 5
    for path, digest in blobs:
        assert token_registry.blob_path(digest).read_bytes() == path.read_bytes()
    # tokens shared, not one per request: one for the probes (pull), one for the uploads
    # (pull,push), whatever the threads interleave
    assert sorted(" ".join(i["scopes"]) for i in token_server.issued) == [
        "repository:threads/app:pull",
        "repository:threads/app:pull,push",
    ], token_server.issued
