"""A registry under an attacker's control (issue 10, items 1, 2, 3, 7, 9, 13).

Each test starts the hostile peer itself (tests/support/hostile_server.py, a real HTTP(S)
server with scripted answers; where a real registry takes part it is the distribution
registry, reached through the hostile front) and runs the CLI as a child process. Each
asserts the exit code, that the message names the cause, that no secret appears in stdout
or stderr (text and JSON), that nothing is left at --output or in $TMPDIR, and, where
memory or time is the point, the child's peak RSS and wall time.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.bundles import make_bundle
from tests.support.hostile_server import Exchange, HostileServer
from tests.support.registry import RegistryHandle
from tests.support.tls import make_ca, make_server_cert

USER = "alice"
PASSWORD = "Hostile-Test-Pa55word-never-printed"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
RSS_LIMIT = 150 * 1000 * 1000

LAUNCHER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "sys.stderr.write('\\nMAXRSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


class Run:
    def __init__(self, code: int, out: str, err: str, rss: int, seconds: float) -> None:
        self.code, self.out, self.err, self.rss, self.seconds = code, out, err, rss, seconds

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Run]:
    """Run the CLI under a launcher that reports its peak RSS; $TMPDIR is a fresh directory
    (checked empty afterwards by :func:`assert_clean`); the password comes on stdin."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()

    def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None, password: bool = False) -> Run:
        full_env = dict(os.environ)
        for key in ("STELLA_OCI_USERNAME", "STELLA_OCI_PASSWORD", "STELLA_OCI_TIMEOUT", "STELLA_OCI_MIN_SPEED"):
            full_env.pop(key, None)
        full_env.update(
            {
                "NO_COLOR": "1",
                "TERM": "dumb",
                "TMPDIR": str(tmpdir),
                "DOCKER_CONFIG": str(tmp_path / "no-docker-config"),
                "STELLA_OCI_LEDGER": str(tmp_path / "ledger.sqlite"),
                **(env or {}),
            }
        )
        extra = ["-u", USER, "--password-stdin"] if password else []
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "stella_oci", *map(os.fspath, args), *extra],
            input=PASSWORD + "\n" if password else "",
            capture_output=True,
            text=True,
            env=full_env,
            cwd=tmp_path,
            timeout=180,
            check=False,
        )
        seconds = time.monotonic() - started
        err, _, tail = proc.stderr.rpartition("MAXRSS_KB=")
        return Run(proc.returncode, proc.stdout, err, int(tail.strip()) * 1024, seconds)

    return run


def assert_clean(run: Run, tmp_path: Path, output: Path | None = None) -> None:
    assert PASSWORD not in run.text, "the password leaked"
    assert BASIC.split(" ", 1)[1] not in run.text, "the basic credentials leaked"
    assert "Traceback" not in run.text
    assert run.code != 1, run.err
    assert list((tmp_path / "tmpdir").iterdir()) == [], "leftovers in $TMPDIR"
    if output is not None:
        assert not output.exists() or list(output.iterdir()) == [], "leftovers at --output"


def error_of(run: Run) -> dict[str, object]:
    doc = json.loads(run.out)
    err = doc["error"]
    assert isinstance(err, dict)
    return err


@pytest.fixture
def pushed(registry: RegistryHandle, fresh_repo: str, tmp_path: Path, run_cli: Callable[..., object]) -> str:
    """``repo:v1`` of a small bundle pushed to the real registry."""
    bundle = make_bundle(tmp_path / "bundle", {"data/a.bin": b"a" * 5000, "data/b.bin": 70_000})
    result = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    return fresh_repo


def serve(script: Callable[[Exchange], None], **kw: object) -> Iterator[HostileServer]:
    server = HostileServer(script, **kw).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- item 1: credentials


def test_redirect_target_401_gets_no_credentials(
    registry: RegistryHandle, pushed: str, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    """An S3/CDN-style blob redirect whose target answers 401 with its own Bearer realm: the
    registry's Basic credentials go neither to the target nor to its realm (exit 6)."""

    def cdn_script(ex: Exchange) -> None:
        if ex.path.startswith("/token"):
            ex.json(200, b'{"token": "cdn-token-xyz", "expires_in": 300}')
            return
        ex.reply(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{cdn.url}/token",service="cdn"'})

    cdn = HostileServer(cdn_script).start()

    def front(ex: Exchange) -> None:
        if ex.headers.get("Authorization") != BASIC:
            ex.reply(401, b"", {"WWW-Authenticate": 'Basic realm="front"'})
        elif ex.path == "/v2/":
            ex.reply(200, b"{}")
        elif "/blobs/" in ex.path and ex.method == "GET":
            ex.redirect(f"{cdn.url}/bucket/{ex.path.rsplit('/', 1)[1]}?X-Amz-Signature=abc", 307)
        else:
            ex.forward(registry.url)

    out = tmp_path / "out"
    try:
        with HostileServer(front) as reg:
            run = cli("pull", f"{reg.host}/{pushed}:v1", "-o", out, "--format", "json", password=True)
            assert run.code == 6, run.text
            err = error_of(run)
            assert cdn.host in str(err["message"]) and "never to another host" in str(err["message"])
            assert reg.authorizations() and set(reg.authorizations()) == {BASIC}  # the registry got them
            assert any(s.path.startswith("/bucket/") for s in cdn.seen)  # the redirect was followed...
            assert cdn.authorizations() == []  # ...without credentials
            assert not any(s.path.startswith("/token") for s in cdn.seen)  # and its realm never asked
            assert_clean(run, tmp_path, out)
    finally:
        cdn.stop()


def test_https_registry_with_http_realm_gets_no_credentials(tmp_path: Path, cli: Callable[..., Run]) -> None:
    """An HTTPS registry naming an http:// token realm: exit 6 with a hint, nothing sent to
    the realm; with --insecure the credentials go there (the refusal is what the test sees)."""
    ca, ca_cert, ca_key = make_ca(tmp_path / "ca")
    server_cert = make_server_cert(tmp_path / "ca", ca_cert, ca_key)

    def realm_script(ex: Exchange) -> None:
        ex.json(403, b'{"details": "no"}')

    with HostileServer(realm_script) as realm:

        def front(ex: Exchange) -> None:
            ex.reply(401, b"", {"WWW-Authenticate": f'Bearer realm="{realm.url}/token",service="reg"'})

        with HostileServer(front, tls=server_cert) as reg:
            out = tmp_path / "out"
            ref = f"{reg.host}/acme/exports:v1"
            run = cli("pull", ref, "-o", out, "--ca-file", ca.cert, password=True)
            assert run.code == 6, run.text
            assert "plain HTTP" in run.err and "--insecure" in run.err
            assert realm.seen == []
            assert_clean(run, tmp_path, out)

            run = cli("pull", ref, "-o", out, "--ca-file", ca.cert, "--insecure", password=True)
            assert run.code == 6, run.text
            assert realm.authorizations() == [BASIC]
            assert_clean(run, tmp_path, out)


# ----------------------------------------------------------------------------- item 2: bounded reads


@pytest.mark.parametrize("where", ["manifest-404", "token", "401", "redirect"])
def test_endless_small_answer_does_not_grow_memory(where: str, tmp_path: Path, cli: Callable[..., Run]) -> None:
    """An error body, a token answer, a 401 body or a redirect body that never ends is read
    up to a cap: the child stays under 150 MB and ends quickly with its named exit."""

    def script(ex: Exchange) -> None:
        if where == "manifest-404":
            ex.endless(404, {"Content-Type": "application/json"})
        elif where == "token":
            if ex.path.startswith("/token"):
                ex.endless(200, {"Content-Type": "application/json"})
            else:
                ex.reply(401, b"", {"WWW-Authenticate": f'Bearer realm="{server.url}/token",service="reg"'})
        elif where == "401":
            ex.endless(401, {"WWW-Authenticate": 'Basic realm="x"'})
        elif ex.path.endswith("/gone"):
            ex.reply(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "gone"}]}')
        else:
            ex.endless(302, {"Location": "/v2/acme/exports/manifests/gone"})

    server = HostileServer(script).start()
    try:
        out = tmp_path / "out"
        run = cli("pull", f"{server.host}/acme/exports:v1", "-o", out, password=True)
        expected = {"manifest-404": 4, "token": 6, "401": 6, "redirect": 4}[where]
        assert run.code == expected, run.text
        assert run.rss < RSS_LIMIT, f"peak RSS {run.rss / 1e6:.0f} MB"
        assert run.seconds < 60
        assert server.sent_bytes < 1024**3  # (the server was not read to its end)
        assert_clean(run, tmp_path, out)
    finally:
        server.stop()


# ----------------------------------------------------------------------------- item 3: deadlines


def test_trickling_headers_end_in_exit_10(tmp_path: Path, cli: Callable[..., Run]) -> None:
    """Headers arriving one byte every 0.5 s (never a read timeout): each try is aborted at
    --timeout, retried, then exit 10 naming the limit, in bounded time."""

    def script(ex: Exchange) -> None:
        ex.trickle_headers(0.5)

    server = HostileServer(script).start()
    try:
        out = tmp_path / "out"
        run = cli("pull", f"{server.host}/acme/exports:v1", "-o", out, "--timeout", "1.5", "--format", "json")
        assert run.code == 10, run.text
        message = str(error_of(run)["message"])
        assert "within 1.5 s" in message and "--timeout" in message and "tries" in message
        assert len(server.seen) >= 3  # retried
        assert run.seconds < 45
        assert_clean(run, tmp_path, out)
    finally:
        server.stop()


def test_trickling_blob_body_ends_in_exit_10(
    registry: RegistryHandle, pushed: str, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    """A blob body arriving one byte every 0.5 s: aborted below --min-speed, resumed (the few
    bytes moved earn no fresh retry budget), then exit 10 naming the limit; nothing left."""

    def front(ex: Exchange) -> None:
        if "/blobs/" in ex.path and ex.method == "GET":
            ex.trickle_body(200, 70_000, 0.5, {"Content-Type": "application/octet-stream"})
        else:
            ex.forward(registry.url)

    server = HostileServer(front).start()
    try:
        out = tmp_path / "out"
        run = cli(
            "pull",
            f"{server.host}/{pushed}:v1",
            "-o",
            out,
            "--min-speed",
            "1000",
            env={"STELLA_OCI_SPEED_WINDOW": "1"},
        )
        assert run.code == 10, run.text
        assert "--min-speed" in run.err and "slower than 1000 bytes/s" in run.err
        assert run.seconds < 60
        assert_clean(run, tmp_path, out)
    finally:
        server.stop()


# ----------------------------------------------------------------------------- item 9: named exits


@pytest.mark.parametrize(
    ("case", "code", "needle"),
    [
        ("loop", 10, "redirected more than 10 times"),
        ("file", 6, "not a usable http(s) URL"),
        ("ftp", 6, "not a usable http(s) URL"),
        ("bad-port", 6, "not a usable http(s) URL"),
        ("bad-host", 6, "not a usable http(s) URL"),
        ("expires-huge", 6, "expires_in 1000000000000000000"),
        ("expires-negative", 6, "expires_in -5 is negative"),
        ("expires-string", 6, "expires_in 'soon' is a JSON str"),
        ("expires-float-inf", 6, "expires_in"),
        ("expires-nan", 6, "NaN is not valid JSON"),
    ],
)
def test_hostile_transport_answers_have_named_exits(
    case: str, code: int, needle: str, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    expires = {
        "expires-huge": "1" + "0" * 400,
        "expires-negative": "-5",
        "expires-string": '"soon"',
        "expires-float-inf": "1e400",
        "expires-nan": "NaN",
    }

    def script(ex: Exchange) -> None:
        if case == "loop":
            ex.redirect(ex.path, 302)
        elif case == "file":
            ex.redirect("file:///etc/passwd", 302)
        elif case == "ftp":
            ex.redirect("ftp://127.0.0.1/x", 301)
        elif case == "bad-port":
            ex.redirect("http://127.0.0.1:99999/x", 302)
        elif case == "bad-host":
            ex.redirect("http://[::1/x", 302)
        elif ex.path.startswith("/token"):
            ex.json(200, b'{"token": "tok-abcdef-123456", "expires_in": ' + expires[case].encode() + b"}")
        else:
            ex.reply(401, b"", {"WWW-Authenticate": f'Bearer realm="{server.url}/token",service="reg"'})

    server = HostileServer(script).start()
    try:
        out = tmp_path / "out"
        run = cli("pull", f"{server.host}/acme/exports:v1", "-o", out, "--format", "json", password=True)
        assert run.code == code, run.text
        assert needle in str(error_of(run)["message"])
        assert "tok-abcdef-123456" not in run.text
        assert run.seconds < 60
        assert_clean(run, tmp_path, out)
    finally:
        server.stop()


# ----------------------------------------------------------------------------- item 7: secrets in references


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    "how",
    ["reference", "reference-scheme", "reference-port-only", "mirror-arg", "mirror-arg-no-equals", "mirror-config"],
)
def test_credentials_in_references_are_refused_unprinted(
    how: str, fmt: str, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    secret_ref = f"{USER}:{PASSWORD}@registry.example:5000/acme/exports:v1"
    ref = "registry.example:5000/acme/exports:v1"
    extra: list[str] = []
    if how == "reference":
        ref = secret_ref
    elif how == "reference-scheme":
        ref = "https://" + secret_ref
    elif how == "reference-port-only":
        ref = f"{USER}:{PASSWORD}@registry.example:5000"
    elif how == "mirror-arg":
        extra = ["--registry-mirror", f"registry.example:5000={USER}:{PASSWORD}@mirror.example:5000"]
    elif how == "mirror-arg-no-equals":
        extra = ["--registry-mirror", f"{USER}:{PASSWORD}@mirror.example:5000"]
    else:
        config = tmp_path / "mirrors.json"
        config.write_text(json.dumps({"mirrors": {"registry.example:5000": f"{USER}:{PASSWORD}@mirror.example"}}))
        extra = ["--mirror-config", str(config)]
    out = tmp_path / "out"
    run = cli("pull", ref, "-o", out, "--offline", "--format", fmt, *extra)
    assert run.code == 2, run.text
    message = str(error_of(run)["message"]) if fmt == "json" else run.err
    assert "credentials" in message and "***@" in message
    assert "--password-stdin" in run.text
    assert_clean(run, tmp_path, out)


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("password", ["p@ss-Never-Printed-1", "pa/ss-Never-Printed-2", "pa:ss-Never-Printed-3"])
@pytest.mark.parametrize("scheme", ["", "https://"])
def test_a_password_holding_at_slash_or_colon_is_refused_unprinted(
    password: str, scheme: str, fmt: str, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    """Before: the credentials ended at the first '@' (the rest of a 'p@ss' password was
    printed) and a '/' in the password hid the credentials altogether (the whole reference,
    password included, was echoed in a 'not a digest' message)."""
    ref = f"{scheme}{USER}:{password}@registry.example:5000/acme/exports:v1"
    run = cli("inspect", ref, "--offline", "--format", fmt)
    assert run.code == 2, run.text
    message = str(error_of(run)["message"]) if fmt == "json" else run.err
    assert "carries credentials" in message and f"'{scheme}***@registry.example:5000/acme/exports:v1'" in message
    assert "Never-Printed" not in run.text and USER not in run.text
    assert_clean(run, tmp_path)


def test_tag_and_digest_are_not_mistaken_for_credentials() -> None:
    from stella_oci.oci.reference import parse_reference

    digest = "sha256:" + "ab" * 32
    ref = parse_reference(f"alpine:3.19@{digest}")
    assert (ref.repository, ref.tag, ref.digest) == ("library/alpine", "3.19", digest)


@pytest.mark.parametrize("text", ["oci:ws@2:v1", "oci:./ci/ws@2/layout:v1", "oci-archive:build@3.tar:v1"])
def test_an_at_sign_in_a_layout_path_is_not_credentials(text: str) -> None:
    """A CI workspace is often 'ws@2' (Jenkins): an oci:/oci-archive: path may hold '@'."""
    from stella_oci.oci.reference import parse_reference

    ref = parse_reference(text)
    assert ref.transport in ("oci", "oci-archive") and ref.tag == text.rsplit(":", 1)[1]
    assert ref.path == text.split(":", 1)[1].rsplit(":", 1)[0]



def test_blob_redirect_to_storage_is_followed_without_credentials(
    registry: RegistryHandle, pushed: str, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    """The normal S3/CDN case: blob GETs redirected to another host (with a pre-signed URL)
    are followed, the storage host gets no Authorization, and the pull verifies and succeeds."""

    def storage_script(ex: Exchange) -> None:
        digest = ex.path.split("?", 1)[0].rsplit("/", 1)[1]
        ex.path = f"/v2/{pushed}/blobs/{digest}"
        ex.forward(registry.url)

    with HostileServer(storage_script) as storage:

        def front(ex: Exchange) -> None:
            if ex.headers.get("Authorization") != BASIC:
                ex.reply(401, b"", {"WWW-Authenticate": 'Basic realm="front"'})
            elif "/blobs/" in ex.path and ex.method == "GET":
                digest = ex.path.rsplit("/", 1)[1]
                ex.redirect(f"{storage.url}/bucket/{digest}?X-Amz-Signature=s3cr3tsig", 302)
            else:
                ex.forward(registry.url)

        with HostileServer(front) as reg:
            out = tmp_path / "out"
            run = cli("pull", f"{reg.host}/{pushed}:v1", "-o", out, "--format", "json", password=True)
            assert run.code == 0, run.text
            assert (out / "data" / "a.bin").read_bytes() == b"a" * 5000
            assert len([s for s in storage.seen if s.path.startswith("/bucket/")]) >= 2
            assert storage.authorizations() == []
            assert "s3cr3tsig" not in run.text
            assert PASSWORD not in run.text


def test_upload_to_a_peer_that_stops_reading_ends_in_exit_10(tmp_path: Path, cli: Callable[..., Run]) -> None:
    """A registry that opens the upload, then reads nothing of the body: the large blob's
    upload is held to --min-speed, the small ones (whose bodies fit in the socket buffers) to
    --timeout while they wait for the answer; aborted, retried, then exit 10 naming the
    limit, in bounded time."""

    def script(ex: Exchange) -> None:
        if ex.method == "POST":
            ex.reply(202, b"", {"Location": "/v2/acme/exports/blobs/uploads/u1"})
        elif ex.method in ("PUT", "PATCH") and "/blobs/uploads/" in ex.path:
            ex.stall()
        else:
            ex.reply(404, b'{"errors": [{"code": "BLOB_UNKNOWN", "message": "no"}]}')

    bundle = make_bundle(tmp_path / "bundle", {"data/big.bin": 40 * 1024 * 1024})
    with HostileServer(script) as server:
        run = cli(
            "push",
            bundle,
            f"{server.host}/acme/exports:v1",
            "--min-speed",
            "100000",
            "--timeout",
            "5",
            "--format",
            "json",
            env={"STELLA_OCI_SPEED_WINDOW": "1"},
        )
    assert run.code == 10, run.text
    message = str(error_of(run)["message"])
    assert "slower than 100000 bytes/s" in message and "--min-speed" in message
    print(f"push against a stalled upload: exit 10 after {run.seconds:.1f} s")
    assert run.seconds < 60
    assert run.rss < RSS_LIMIT
    assert_clean(run, tmp_path)
