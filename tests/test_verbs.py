"""The everyday registry verbs (issue 12) against real registries: tags, resolve, tag, delete,
manifest, fetch, login and logout (htpasswd over TLS, and through a credential helper)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from stella_oci.export.annotations import ANN_MANIFEST_DIGEST  # noqa: F401 - import check
from tests.support.bundles import copy_example, read_export_json, write_export_json
from tests.support.fault_proxy import FaultProxy
from tests.support.registry import RunningRegistry, start_registry
from tests.support.tags_server import PagingTagsServer
from tests.support.tls import make_ca, make_server_cert

USER = "robot$verbs"
PASSWORD = "Verbs-pa55-never-printed"


def validate_output(command: str, doc: dict) -> None:
    import jsonschema

    from stella_oci.output_schemas import shipped

    jsonschema.Draft202012Validator(shipped(command)).validate(doc)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def cli_ok(run_cli, *args, **kw) -> str:
    code, out, err = run_cli(*args, **kw)
    assert code == 0, f"{args}: exit {code}\n{err}\n{out}"
    return out


def push(run_cli, example: str, ref: str, tmp_path: Path, created: str | None = None, name: str = "b") -> str:
    bundle = copy_example(example, tmp_path / name)
    if created is not None:  # another export: other id, other generatedAt (annotation created)
        doc = read_export_json(bundle)
        doc["generatedAt"] = created
        doc["exportId"] = f"{doc['exportId']}-{name}"
        doc.pop("integrity", None)
        write_export_json(bundle, doc)
        for sig in bundle.glob("*.dsse.json"):
            sig.unlink()
    return cli_ok(run_cli, "push", bundle, ref, "--digest-only", "--allow-unlisted").strip()


def raw_manifest(registry, repo: str, ref: str) -> requests.Response:
    return requests.get(
        f"{registry.url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )


# ----------------------------------------------------------------------------- resolve, manifest
def test_resolve_and_manifest(registry, fresh_repo, run_cli, tmp_path) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    digest = push(run_cli, "mirror-full", ref, tmp_path)
    out = cli_ok(run_cli, "resolve", ref)
    assert out == f"{registry.host}/{fresh_repo}@{digest}\n"
    doc = json.loads(cli_ok(run_cli, "resolve", ref, "--format", "json"))
    assert doc["digest"] == digest and doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"

    stored = raw_manifest(registry, fresh_repo, digest).content
    code, out, err = run_cli("manifest", ref, env={"PYTHONIOENCODING": "latin-1"})
    assert code == 0, err
    assert out.encode("latin-1") == stored and sha256(stored) == digest  # bytes as stored, no newline

    # oci-archive: too
    archive = tmp_path / "a.tar"
    cli_ok(run_cli, "copy", ref, f"oci-archive:{archive}:v1")
    assert cli_ok(run_cli, "resolve", f"oci-archive:{archive}:v1") == f"oci-archive:{archive}@{digest}\n"

    code, out, err = run_cli("resolve", f"{registry.host}/{fresh_repo}:nope")
    assert code == 4 and "nope" in err


def test_manifest_bytes_not_matching_the_digest_fail(registry, fresh_repo, run_cli, tmp_path) -> None:
    """A registry that stores other bytes under the digest asked for: exit 3, nothing printed."""
    root = registry.require_root()
    ref = f"{registry.host}/{fresh_repo}:v1"
    digest = push(run_cli, "mirror-full", ref, tmp_path)
    data = registry.blob_path(digest)
    original = data.read_bytes()
    data.write_bytes(original.replace(b'"schemaVersion":2', b'"schemaVersion": 2', 1))
    try:
        code, out, err = run_cli("manifest", f"{registry.host}/{fresh_repo}@{digest}")
        assert code == 3 and out == "", err
    finally:
        data.write_bytes(original)
    assert root


# ----------------------------------------------------------------------------- tags
def test_tags_paginated_filtered_sorted_by_created(registry, fresh_repo, run_cli, tmp_path) -> None:
    repo = f"{registry.host}/{fresh_repo}"
    # mirror-full: a trivy:* export also tags its export referrer's sha256-<hex> fallback index
    old = push(run_cli, "mirror-full", f"{repo}:2026-01-old", tmp_path, created="2026-01-01T00:00:00Z", name="a")
    new = push(run_cli, "mirror-full", f"{repo}:2026-11-new", tmp_path, created="2026-11-01T00:00:00Z", name="b")
    mid = push(run_cli, "mirror-full", f"{repo}:2026-06-mid", tmp_path, created="2026-06-01T00:00:00+02:00", name="c")
    cli_ok(run_cli, "tag", f"{repo}@{old}", "zz-also-old", "aa-also-old")

    expected = ["2026-01-old", "2026-06-mid", "2026-11-new", "aa-also-old", "zz-also-old"]
    paging = PagingTagsServer(registry.url)
    try:
        out = cli_ok(run_cli, "tags", f"{paging.host}/{fresh_repo}", "--page-size", "2")
        pages = list(paging.requests)
        tail = cli_ok(run_cli, "tags", f"{paging.host}/{fresh_repo}", "--page-size", "2", "--last", "2026-11-new")
    finally:
        paging.stop()
    assert out.splitlines() == expected
    # 5 tags, 2 a page: three requests, the Link of each followed
    assert pages == [
        f"/v2/{fresh_repo}/tags/list?n=2",
        f"/v2/{fresh_repo}/tags/list?n=2&last=2026-06-mid",
        f"/v2/{fresh_repo}/tags/list?n=2&last=aa-also-old",
    ]
    assert tail.splitlines() == ["aa-also-old", "zz-also-old"]
    # the distribution binary ignores n (every tag at once): read in one request
    assert cli_ok(run_cli, "tags", repo, "--page-size", "2").splitlines() == expected

    out = cli_ok(run_cli, "tags", repo, "--filter", "^2026-", "--sort", "created", "--format", "json")
    doc = json.loads(out)
    assert doc["tags"] == ["2026-11-new", "2026-06-mid", "2026-01-old"]
    assert [d["digest"] for d in doc["details"]] == [new, mid, old]
    # no tag matches: nothing on stdout (before: an empty line with --sort created)
    assert cli_ok(run_cli, "tags", repo, "--filter", "^none-", "--sort", "created") == ""
    assert cli_ok(run_cli, "tags", repo, "--filter", "^none-") == ""
    assert cli_ok(run_cli, "tags", repo, "--last", "2026-11-new").splitlines() == ["aa-also-old", "zz-also-old"]

    code, _, err = run_cli("tags", repo, "--filter", "(")
    assert code == 2 and "--filter" in err
    code, _, err = run_cli("tags", f"{repo}:v1")
    assert code == 2 and "without a tag" in err


def test_tags_of_an_oci_layout(registry, fresh_repo, run_cli, tmp_path) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(run_cli, "mirror-full", ref, tmp_path)
    layout = tmp_path / "layout"
    cli_ok(run_cli, "copy", ref, f"oci:{layout}:first", "--no-referrers")
    cli_ok(run_cli, "tag", f"oci:{layout}:first", "second")
    assert cli_ok(run_cli, "tags", f"oci:{layout}").splitlines() == ["first", "second"]


# ----------------------------------------------------------------------------- tag
def test_tag_moves_only_the_manifest(registry, fresh_repo, run_cli, tmp_path, monkeypatch) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    digest = push(run_cli, "mirror-full", ref, tmp_path)
    ledger = tmp_path / "ledger.sqlite3"
    proxy = FaultProxy(registry.host)
    try:
        out = cli_ok(
            run_cli, "tag", f"{proxy.host}/{fresh_repo}:v1", "stable", "latest", env={"STELLA_OCI_LEDGER": str(ledger)}
        )
        seen = [(r.method, r.path.split("?")[0]) for r in proxy.requests]
    finally:
        proxy.stop()
    assert f":stable -> {digest}" in out and f":latest -> {digest}" in out
    assert not any("/blobs/" in path for _, path in seen), seen  # no blob traffic at all
    puts = [path for method, path in seen if method == "PUT"]
    assert sorted(puts) == sorted(f"/v2/{fresh_repo}/manifests/{t}" for t in ("stable", "latest"))
    assert [m for m, _ in seen if m not in ("GET", "PUT", "HEAD")] == []
    assert not ledger.exists()  # no import recorded
    for t in ("stable", "latest"):
        r = raw_manifest(registry, fresh_repo, t)
        assert sha256(r.content) == digest

    code, _, err = run_cli("tag", ref, "bad tag!")
    assert code == 2 and "invalid tag" in err


# ----------------------------------------------------------------------------- delete
def test_delete_by_digest_and_tag_refused_without_force(registry, fresh_repo, run_cli, tmp_path) -> None:
    repo = f"{registry.host}/{fresh_repo}"
    digest = push(run_cli, "mirror-full", f"{repo}:v1", tmp_path)
    code, _, err = run_cli("delete", f"{repo}:v1")
    assert code == 2 and "--force" in err and "resolve" in err
    assert raw_manifest(registry, fresh_repo, digest).status_code == 200  # still there

    out = cli_ok(run_cli, "delete", f"{repo}@{digest}")
    assert out == f"deleted {repo}@{digest}\n"
    assert raw_manifest(registry, fresh_repo, digest).status_code == 404
    code, _, err = run_cli("delete", f"{repo}@{digest}")
    assert code == 4

    d2 = push(run_cli, "mirror-full", f"{repo}:v2", tmp_path, created="2026-11-02T00:00:00Z", name="c")
    doc = json.loads(cli_ok(run_cli, "delete", f"{repo}:v2", "--force", "--format", "json"))
    assert doc == {"reference": f"{repo}@{d2}", "digest": d2, "resolvedFrom": "v2"}
    assert raw_manifest(registry, fresh_repo, d2).status_code == 404


@pytest.fixture
def no_delete_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    reg = start_registry(tmp_path / "nodelete", extra={"storage": {
        "filesystem": {"rootdirectory": str(tmp_path / "nodelete" / "storage")}, "delete": {"enabled": False}}})
    yield reg
    reg.stop()


def test_delete_on_a_registry_with_deletes_disabled(no_delete_registry, run_cli, tmp_path) -> None:
    repo = f"{no_delete_registry.host}/t/nodelete"
    digest = push(run_cli, "mirror-full", f"{repo}:v1", tmp_path)
    code, out, err = run_cli("delete", f"{repo}@{digest}")
    assert code == 3, err  # the registry refused a well-formed request (RegistryError)
    assert "deletes disabled" in err and "405" in err and "storage.delete.enabled" in err
    assert raw_manifest(no_delete_registry, "t/nodelete", digest).status_code == 200


# ----------------------------------------------------------------------------- fetch
def test_fetch_one_file_verified_without_the_rest(registry, fresh_repo, run_cli, tmp_path) -> None:
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    ref = f"{registry.host}/{fresh_repo}:v1"
    cli_ok(run_cli, "push", bundle, ref)
    want = "data/index.json"
    layer_digest = sha256((bundle / want).read_bytes())
    proxy = FaultProxy(registry.host)
    try:
        out = cli_ok(run_cli, "fetch", f"{proxy.host}/{fresh_repo}:v1", want, cwd=tmp_path)
        blob_gets = [r.path for r in proxy.requests if r.method == "GET" and "/blobs/" in r.path]
    finally:
        proxy.stop()
    assert (tmp_path / "index.json").read_bytes() == (bundle / want).read_bytes()
    assert "index.json" in out
    export_digest = sha256((bundle / "export.json").read_bytes())
    assert sorted(p.rsplit("/", 1)[1] for p in blob_gets) == sorted([export_digest, layer_digest])

    code, out, err = run_cli("fetch", ref, "export.json", "-o", "-")
    assert code == 0 and json.loads(out) == read_export_json(bundle)

    # a tampered blob in the registry: exit 3, nothing written
    root = registry.require_root()
    blob = registry.blob_path(layer_digest)
    original = blob.read_bytes()
    blob.write_bytes(original[:-2] + b"!}")
    try:
        code, _, err = run_cli("fetch", ref, want, "-o", tmp_path / "bad.json")
        assert code == 3, err
        assert not (tmp_path / "bad.json").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad.json")]
    finally:
        blob.write_bytes(original)
    assert root
    code, _, err = run_cli("fetch", ref, "no/such/file")
    assert code == 4 and "data/index.json" in err


def test_outputs_in_a_missing_directory_are_refused_before_any_request(
    registry, fresh_repo, run_cli, tmp_path
) -> None:
    """fetch -o, have --output and save --output naming a directory that does not exist (or a
    file as directory): exit 2 naming it, no request made, nothing created (before: fetch made
    the directories up, have and save failed at the end with an internal error, exit 1)."""
    ref = f"{registry.host}/{fresh_repo}:v1"
    push(run_cli, "mirror-full", ref, tmp_path)
    proxy = FaultProxy(registry.host)
    try:
        via = f"{proxy.host}/{fresh_repo}:v1"
        missing = tmp_path / "no-such-dir" / "deeper"
        a_file = tmp_path / "a-file"
        a_file.write_bytes(b"x")
        cases = [
            (("fetch", via, "export.json", "-o", missing / "e.json"), f"the directory {missing} does not exist"),
            (("fetch", via, "export.json", "-o", a_file / "e.json"), f"{a_file} is not a directory"),
            (("have", proxy.host, fresh_repo, "--output", missing / "have.json"), f"the directory {missing} does not exist"),
            (("save", via, "--output", missing / "s.tar"), f"the directory {missing} does not exist"),
        ]
        for args, says in cases:
            code, out, err = run_cli(*args)
            assert code == 2, (args, code, err)
            assert says in err and "--output" in err, err
            assert "internal error" not in err
        assert proxy.requests == [], proxy.requests
        assert not (tmp_path / "no-such-dir").exists() and a_file.read_bytes() == b"x"
    finally:
        proxy.stop()


# ----------------------------------------------------------------------------- login / logout
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


def test_login_push_logout(tls_registry, run_cli, tmp_path) -> None:
    reg, ca = tls_registry
    config = tmp_path / "docker" / "config.json"
    common = ["--ca-file", str(ca), "--registry-config", str(config)]
    ref = f"{reg.host}/t/login:v1"
    bundle = copy_example("mirror-full", tmp_path / "bundle")

    code, out, err = run_cli("login", reg.host, "-u", USER, *common, input="wrong-password\n")
    assert code == 6 and not config.exists(), err
    assert "wrong-password" not in out + err

    out = cli_ok(run_cli, "login", reg.host, "-u", USER, "--password-stdin", *common, input=PASSWORD + "\n")
    assert f"logged in to {reg.host} as {USER}" in out and PASSWORD not in out
    out = cli_ok(run_cli, "login", reg.host, "-u", USER, *common, "--format", "json", input=PASSWORD + "\n")
    validate_output("login", json.loads(out))
    doc = json.loads(config.read_text())
    import base64

    assert base64.b64decode(doc["auths"][reg.host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    cli_ok(run_cli, "push", bundle, ref, *common)  # the stored credentials work

    doc = json.loads(cli_ok(run_cli, "logout", reg.host, "--registry-config", str(config), "--format", "json"))
    validate_output("logout", doc)
    assert doc["removedFrom"] == [f"config {config}"]
    out = cli_ok(run_cli, "logout", reg.host, "--registry-config", str(config))
    assert "no credentials stored" in out and reg.host not in json.loads(config.read_text())["auths"]
    code, _, err = run_cli("push", bundle, ref, *common)
    assert code == 6, err


def assert_credentials_refused(code: int, out: str, err: str, host: str, *secrets: str) -> None:
    """Exit 6 saying the user name or password was refused (not "requires authentication"),
    naming the registry and the fix; no secret printed."""
    assert code == 6, err
    assert f"registry {host} refused the user name or password of user {USER!r}" in err, err
    assert "requires authentication" not in err and "(registry login)" not in err, err
    assert "check the user name and password" in err and "--password-stdin" in err, err
    assert f"stella-oci login {host} -u USER --password-stdin" in err, err
    for secret in secrets:
        assert secret not in out + err, "a secret leaked"


def test_wrong_password_is_named_as_refused_credentials(tls_registry, run_cli, tmp_path) -> None:
    import base64

    reg, ca = tls_registry
    config = tmp_path / "docker" / "config.json"
    common = ["--ca-file", str(ca), "--registry-config", str(config)]
    wrong = "Wrong-pa55-never-printed"
    code, out, err = run_cli("login", reg.host, "-u", USER, "--password-stdin", *common, input=wrong + "\n")
    assert_credentials_refused(code, out, err, reg.host, wrong)
    assert "from --username/--password-stdin" in err and not config.exists()

    # wrong credentials stored in the Docker config: push and pull say the same, naming the file
    token = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    ref = f"{reg.host}/t/refused:v1"
    for args in (("push", bundle, ref), ("pull", ref, "-o", tmp_path / "out")):
        code, out, err = run_cli(*args, *common)
        assert_credentials_refused(code, out, err, reg.host, wrong, token)
        assert f"from {config}" in err, err


def test_wrong_password_at_a_token_service_is_named_as_refused(run_cli, tmp_path) -> None:
    from tests.support.token_server import TokenServer, start_token_registry

    server = TokenServer(users={USER: PASSWORD}).start()
    reg = start_token_registry(tmp_path / "treg", server)
    try:
        wrong = "Wrong-token-pa55-never-printed"
        config = tmp_path / "docker" / "config.json"
        code, out, err = run_cli(
            "login", reg.host, "-u", USER, "--registry-config", config, input=wrong + "\n"
        )
        assert_credentials_refused(code, out, err, reg.host, wrong)
        assert server.refused >= 1 and not server.issued and not config.exists()
        cli_ok(run_cli, "login", reg.host, "-u", USER, "--registry-config", config, input=PASSWORD + "\n")
    finally:
        reg.stop()
        server.stop()


def test_login_through_a_credential_helper(tls_registry, run_cli, tmp_path) -> None:
    reg, ca = tls_registry
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    store = tmp_path / "helper-store.json"
    helper = bin_dir / "docker-credential-verbstest"
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"path = {str(store)!r}\n"
        "try:\n    db = json.load(open(path))\nexcept FileNotFoundError:\n    db = {}\n"
        "action = sys.argv[1]\n"
        "data = sys.stdin.read()\n"
        "if action == 'store':\n    d = json.loads(data); db[d['ServerURL']] = d\n"
        "elif action == 'erase':\n    db.pop(data.strip(), None)\n"
        "elif action == 'get':\n"
        "    if data.strip() not in db:\n        print('credentials not found in native keychain'); sys.exit(1)\n"
        "    print(json.dumps(db[data.strip()])); sys.exit(0)\n"
        "json.dump(db, open(path, 'w'))\n"
    )
    helper.chmod(0o755)
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"credsStore": "verbstest"}))
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    common = ["--ca-file", str(ca), "--registry-config", str(config)]

    out = cli_ok(run_cli, "login", reg.host, "-u", USER, *common, input=PASSWORD + "\n", env=env)
    assert "docker-credential-verbstest" in out
    assert json.loads(store.read_text())[reg.host]["Secret"] == PASSWORD
    assert PASSWORD not in config.read_text()  # only the helper holds the secret
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    cli_ok(run_cli, "push", bundle, f"{reg.host}/t/helper:v1", *common, env=env)
    cli_ok(run_cli, "logout", reg.host, "--registry-config", str(config), env=env)
    assert json.loads(store.read_text()) == {}


def test_login_refuses_password_on_the_command_line_and_missing_user(run_cli, tmp_path) -> None:
    code, _, err = run_cli("login", "localhost:5000", input="x\n")
    assert code == 2 and "-u USER" in err
