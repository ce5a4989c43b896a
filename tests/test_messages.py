"""Messages (issue 12): each says what went wrong and what to do, with its own exit code, on
every verb. Against real registries: plain HTTP, and TLS with certificates from tests/support/tls."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bundles import copy_example
from tests.support.registry import RunningRegistry, start_registry
from tests.support.tls import make_ca, make_server_cert

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTE = "application/vnd.example.note.v1+json"


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningRegistry, Path]]:
    tmp = tmp_path_factory.mktemp("tls")
    ca, ca_cert, ca_key = make_ca(tmp / "ca")
    server = make_server_cert(tmp / "ca", ca_cert, ca_key)
    reg = start_registry(
        tmp / "reg",
        scheme="https",
        extra={"http": {"tls": {"certificate": str(server.cert), "key": str(server.key)}}},
    )
    yield reg, ca.cert
    reg.stop()


@pytest.fixture(scope="module")
def other_name_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningRegistry, Path]]:
    """TLS with a certificate for registry.example only (reached as 127.0.0.1: a name mismatch)."""
    tmp = tmp_path_factory.mktemp("tls-other")
    ca, ca_cert, ca_key = make_ca(tmp / "ca")
    server = make_server_cert(tmp / "ca", ca_cert, ca_key, hosts=("registry.example",))
    reg = start_registry(
        tmp / "reg",
        scheme="https",
        extra={"http": {"tls": {"certificate": str(server.cert), "key": str(server.key)}}},
    )
    yield reg, ca.cert
    reg.stop()


def every_verb(host: str, tmp_path: Path) -> list[list[str]]:
    """One command line per verb that talks to a registry at ``host``."""
    bundle = tmp_path / "bundle"
    if not bundle.exists():
        copy_example("mirror-full", bundle)
    note = tmp_path / "note.txt"
    note.write_text("x")
    repo = f"{host}/t/messages"
    digest = "sha256:" + "0" * 64
    return [
        ["push", str(bundle), f"{repo}:v1"],
        ["pull", f"{repo}:v1", "-o", str(tmp_path / "out")],
        ["verify", f"{repo}:v1"],
        ["inspect", f"{repo}:v1"],
        ["copy", f"{repo}:v1", f"oci:{tmp_path / 'layout'}:v1"],
        ["attach", f"{repo}:v1", str(note), "--artifact-type", NOTE],
        ["discover", f"{repo}:v1"],
        ["tags", repo],
        ["resolve", f"{repo}:v1"],
        ["tag", f"{repo}:v1", "v2"],
        ["delete", f"{repo}@{digest}"],
        ["manifest", f"{repo}:v1"],
        ["fetch", f"{repo}:v1", "export.json", "-o", str(tmp_path / "e.json")],
        ["login", host, "-u", "someone"],
    ]


def test_plain_http_to_a_tls_registry_on_every_verb(tls_registry, run_cli, tmp_path) -> None:
    reg, _ = tls_registry
    for args in every_verb(reg.host, tmp_path):
        code, out, err = run_cli(*args, "--plain-http", input="pw\n")
        assert code == 6, (args, code, err)
        assert f"registry {reg.host} speaks HTTPS only" in err, (args, err)
        assert "drop --plain-http" in err, (args, err)
        assert "HTTP 400" in err and "refused the request" not in err


def test_https_to_a_plain_http_registry_on_every_verb(registry, run_cli, tmp_path, tls_registry) -> None:
    _, ca = tls_registry  # --ca-file makes even a loopback registry HTTPS
    for args in every_verb(registry.host, tmp_path):
        code, out, err = run_cli(*args, "--ca-file", ca, input="pw\n")
        assert code == 6, (args, code, err)
        assert f"registry {registry.host}" in err and "does not seem to speak HTTPS" in err, (args, err)
        assert "--plain-http" in err, (args, err)


def test_loopback_tls_registry_without_flags_switches_to_https(tls_registry, run_cli, tmp_path) -> None:
    """A loopback registry is tried over HTTP first; its 'HTTPS only' answer (also to a HEAD,
    which has no body) switches to HTTPS, which then asks for the CA."""
    reg, ca = tls_registry
    bundle = copy_example("mirror-full", tmp_path / "b")
    code, _, err = run_cli("push", bundle, f"{reg.host}/t/switch:v1")
    assert code == 6 and "not trusted" in err and "--ca-file" in err, err
    code, out, err = run_cli("push", bundle, f"{reg.host}/t/switch:v1", "--ca-file", ca, "--digest-only")
    assert code == 0, err


def test_hostname_mismatch_names_the_name_and_not_the_ca(other_name_registry, run_cli, tmp_path) -> None:
    reg, ca = other_name_registry
    code, _, err = run_cli("resolve", f"{reg.host}/t/x:v1", "--ca-file", ca)
    assert code == 6, err
    assert "not valid for the name '127.0.0.1'" in err  # the whole name, not cut at the quote
    assert "name its certificate lists" in err
    assert "give the registry's CA certificate" not in err  # the CA was given, and it is right
    # and without the CA: untrusted, which does ask for it
    code, _, err = run_cli("resolve", f"{reg.host}/t/x:v1")
    assert code == 6 and "--ca-file" in err


def test_a_wrong_ca_file_is_named(tls_registry, other_name_registry, run_cli) -> None:
    reg, _ = tls_registry
    _, other_ca = other_name_registry
    code, _, err = run_cli("resolve", f"{reg.host}/t/x:v1", "--ca-file", other_ca)
    assert code == 6 and f"--ca-file {other_ca}" in err and "holds the CA" in err, err


def test_unusable_tls_files_are_exit_2_naming_option_and_file(tls_registry, run_cli, tmp_path) -> None:
    """Before: a missing --ca-file/--cert-file was 'internal error: OSError' (exit 1) and a file
    that is not PEM a vague 'TLS handshake failed' (exit 6) blaming the registry."""
    reg, ca = tls_registry
    ref = f"{reg.host}/t/tlsfiles:v1"
    missing = tmp_path / "missing.pem"
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a not a certificate")
    cases = [
        (["--ca-file", missing], f"--ca-file {missing}: no such file"),
        (["--ca-file", not_pem], f"--ca-file {not_pem}: no PEM CA certificate could be read"),
        (["--ca-file", ca, "--cert-file", missing], f"--cert-file {missing}: no such file"),
        (["--ca-file", ca, "--cert-file", ca, "--key-file", missing], f"--key-file {missing}: no such file"),
        (["--ca-file", ca, "--key-file", ca], f"--key-file {ca} without --cert-file"),
        (["--ca-file", ca, "--cert-file", ca], f"--cert-file {ca}: not a PEM client certificate with its"),
    ]
    for verb in (["inspect", ref], ["pull", ref, "-o", str(tmp_path / "out")]):
        for extra, message in cases:
            code, out, err = run_cli(*verb, *extra)
            assert code == 2, (verb, extra, code, err)
            assert message in err and "internal error" not in err and "Traceback" not in err, (extra, err)
            assert "hint: give" in err, err
        code, out, _ = run_cli(*verb, "--ca-file", missing, "--format", "json")
        assert code == 2 and json.loads(out)["error"]["kind"] == "invalid-input"
    assert not (tmp_path / "out").exists()
    # a good CA still works
    code, _, err = run_cli("resolve", ref, "--ca-file", ca)
    assert code == 4, err


def test_verify_of_a_missing_directory_or_a_file_says_so(registry, run_cli, tmp_path) -> None:
    """Before: 'verify ./nope' was "invalid reference './nope': '.' is not a registry
    host[:port]" and 'verify bundle/export.json' a complaint about an empty repository component."""
    bundle = copy_example("mirror-full", tmp_path / "bundle")
    for target, message, hint in [
        ("./nope", "./nope: no such bundle directory", "give the directory a pull wrote"),
        (str(tmp_path / "nope"), f"{tmp_path / 'nope'}: no such bundle directory", "a reference such as"),
        (str(bundle / "export.json"), "a file; verify takes a bundle directory", "the directory holding it"),
    ]:
        code, out, err = run_cli("verify", target)
        assert code == 2, (target, err)
        assert message in err and hint in err and "invalid reference" not in err, (target, err)
    code, out, err = run_cli("verify", bundle)  # the directory itself verifies
    assert code == 0, err
    code, _, err = run_cli("verify", f"{registry.host}/t/none:v1")  # a reference is still one
    assert code == 4, err


def test_airgap_status_of_a_mistyped_ledger_is_exit_2_and_creates_nothing(run_cli, tmp_path) -> None:
    """Before: 'airgap status --ledger typo.sqlite3' created an empty ledger there and said 'no
    imports recorded', exit 0 (a monitoring job read an empty, healthy site)."""
    typo = tmp_path / "ledgr.sqlite3"
    for args in (["status"], ["status", "--format", "prometheus"], ["history"]):
        code, out, err = run_cli("airgap", *args, "--ledger", typo)
        assert code == 2, (args, code, out, err)
        assert f"import ledger {typo} (--ledger): no such file" in err and "hint: give the ledger" in err, err
        assert out == "" and not typo.exists()
    code, out, err = run_cli("airgap", "status", env={"STELLA_OCI_LEDGER": str(typo)})
    assert code == 2 and "(STELLA_OCI_LEDGER): no such file" in err and not typo.exists(), err


# ----------------------------------------------------------------------------- credentials options
def test_username_password_options_say_what_to_do(registry, run_cli, tmp_path) -> None:
    ref = f"{registry.host}/t/creds:v1"
    code, _, err = run_cli("inspect", ref, "-u", "bob")
    assert code == 2 and "-u bob given without a password" in err and "--password-stdin" in err
    assert "STELLA_OCI_PASSWORD" in err
    code, _, err = run_cli("inspect", ref, "--password-stdin", input="s3cret\n")
    assert code == 2 and "no user name" in err and "-u USER" in err
    assert "s3cret" not in err
    code, out, err = run_cli("inspect", ref, "-p", "s3cret")
    assert code == 2 and "--password-stdin" in err and "shell" in err
    assert "s3cret" not in err + out
    code, out, err = run_cli("inspect", ref, "--password=s3cret", "--format", "json")
    assert code == 2 and json.loads(out)["error"]["code"] == 2 and "s3cret" not in out
    # -u completed by STELLA_OCI_PASSWORD is fine (an anonymous registry: then a plain not-found)
    code, _, err = run_cli("inspect", ref, "-u", "bob", env={"STELLA_OCI_PASSWORD": "x"})
    assert code == 4, err


def test_missing_registry_config_is_an_error(registry, run_cli, tmp_path) -> None:
    missing = tmp_path / "nope" / "config.json"
    code, _, err = run_cli("inspect", f"{registry.host}/t/x:v1", "--registry-config", missing)
    assert code == 2 and f"--registry-config {missing}: no such file" in err


# ----------------------------------------------------------------------------- air gap
def test_time_anchor_without_staleness_config_is_refused(registry, fresh_repo, run_cli, tmp_path) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, _, err = run_cli("push", copy_example("mirror-full", tmp_path / "b"), ref)
    assert code == 0, err
    anchor = EXAMPLES / "airgap" / "time-anchor.json"
    code, _, err = run_cli("verify", ref, "--time-anchor", anchor)
    assert code == 2 and "without --staleness-config" in err, err
    code, _, err = run_cli(
        "verify", ref, "--time-anchor", anchor, "--staleness-config", EXAMPLES / "airgap" / "staleness-strict.json"
    )
    assert code == 0, err


def test_exit_7_says_the_clock_was_the_unverified_system_clock(registry, fresh_repo, run_cli, tmp_path) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, _, err = run_cli("push", copy_example("mirror-full", tmp_path / "b"), ref)
    assert code == 0, err
    strict = EXAMPLES / "airgap" / "staleness-strict.json"
    code, _, err = run_cli("verify", ref, "--staleness-config", strict)  # 2026-11-20 export, clock later
    assert code == 7, err
    assert "system clock" in err and "unverified" in err and "--time-anchor" in err
    late = EXAMPLES / "airgap" / "time-anchor-8-days-later.json"
    code, _, err = run_cli("verify", ref, "--staleness-config", strict, "--time-anchor", late)
    assert code == 7 and "system clock" not in err, err


# ----------------------------------------------------------------------------- files
def test_copy_to_a_gz_named_archive_is_refused(registry, fresh_repo, run_cli, tmp_path) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, _, err = run_cli("push", copy_example("mirror-full", tmp_path / "b"), ref)
    assert code == 0, err
    for name in ("x.tar.gz", "x.tgz", "x.tar.zst"):
        code, _, err = run_cli("copy", ref, f"oci-archive:{tmp_path / name}:v1")
        assert code == 2 and "uncompressed tar" in err and "x.tar" in err, err
        assert not (tmp_path / name).exists()


def test_a_deleted_file_in_a_pulled_bundle_is_exit_3(registry, fresh_repo, run_cli, tmp_path) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    code, _, err = run_cli("push", copy_example("mirror-full", tmp_path / "b"), ref)
    assert code == 0, err
    got = tmp_path / "got"
    code, _, err = run_cli("pull", ref, "-o", got)
    assert code == 0, err
    modified = tmp_path / "modified"
    shutil.copytree(got, modified)
    (modified / "data" / "index.json").write_text("{}")
    code, _, err = run_cli("verify", modified)
    assert code == 3, err
    (got / "data" / "index.json").unlink()
    code, _, err = run_cli("verify", got)
    assert code == 3 and "missing" in err and "data/index.json" in err, err


# ----------------------------------------------------------------------------- the command itself
def test_bare_command_prints_help_and_version_works(run_cli) -> None:
    code, out, err = run_cli()
    assert code == 0 and "Usage:" in out and "push" in out and "tags" in out, err
    code, out, err = run_cli("version")
    assert code == 0 and out.startswith("stella-oci, version "), err
    code2, out2, _ = run_cli("--version")
    assert (code2, out2) == (0, out)
    code, out, _ = run_cli("version", "--format", "json")
    assert code == 0 and json.loads(out)["version"] == out2.split()[-1]


def test_usage_hint_names_the_command_click_resolved(run_cli) -> None:
    """Before: the hint was the first argument without a dash: 'stella-oci pusx --help' (no such
    command), 'stella-oci json --help' (an option's value), 'stella-oci airgap --help' (the
    subcommand dropped)."""
    cases = [
        (["pusx"], "see: stella-oci --help"),
        (["--format", "json", "pull"], "see: stella-oci --help"),
        (["airgap", "status", "--bogus"], "see: stella-oci airgap status --help"),
        (["time-anchor", "verify"], "see: stella-oci time-anchor verify --help"),
        (["push", "--bogus"], "see: stella-oci push --help"),
    ]
    for args, hint in cases:
        code, out, err = run_cli(*args)
        assert code == 2, (args, code, out, err)
        assert hint in out + err, (args, out, err)
