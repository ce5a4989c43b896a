"""Errors that say where: which side of a transfer failed, what the registry answered, and a
hint naming options that exist. Registry misbehaviour is exit 3 (or 10), never exit 2."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import stella_oci
from stella_oci.cli import main as cli_main
from stella_oci.cli.hints import OPTIONS_NAMED, REGISTRY_CODE_HINTS, TLS_HINTS, hint_for
from stella_oci.errors import (
    NotFoundError,
    RegistryAnswer,
    RegistryError,
    StellaOciError,
    VerificationError,
    on_side,
    sided,
)
from stella_oci.transport import RegistryClient, TransportOptions
from tests.conftest import RunCli
from tests.support.bundles import copy_example
from tests.support.fault_proxy import FaultProxy, StatusRule
from tests.support.registry import RunningRegistry, start_registry
from tests.support.tls import make_ca, make_client_cert, make_server_cert

PACKAGE = Path(stella_oci.__file__).resolve().parent
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def error_doc(out: str) -> dict:
    doc = json.loads(out)
    assert set(doc) >= {"error"}, doc
    return doc["error"]


# ----------------------------------------------------------------------------- the model


def test_innermost_side_wins_and_is_shown() -> None:
    with pytest.raises(VerificationError) as info, on_side("destination"), on_side("source"):
        raise VerificationError("blob x: content hashes to y")
    err = info.value
    assert err.side == "source"
    assert str(err) == "source: blob x: content hashes to y"
    assert err.to_json()["error"]["side"] == "source"
    assert "side" not in VerificationError("m").to_json()["error"]


def test_sided_marks_the_wrapped_context_not_the_body() -> None:
    class Opens:
        def __init__(self, fail_enter: bool) -> None:
            self.fail_enter = fail_enter

        def __enter__(self) -> str:
            if self.fail_enter:
                raise NotFoundError("blob gone")
            return "chunks"

        def __exit__(self, *exc: object) -> None:
            return None

    with pytest.raises(NotFoundError) as opened:
        with sided("source", Opens(fail_enter=True)):
            pass
    assert opened.value.side == "source"
    # an error of the consumer (the destination's upload) inside the block is not the source's
    with pytest.raises(RegistryError) as body, on_side("destination"):
        with sided("source", Opens(fail_enter=False)) as chunks:
            assert chunks == "chunks"
            raise RegistryError("PUT refused")
    assert body.value.side == "destination"


def test_registry_answer_in_json() -> None:
    err = RegistryError("m", registry=RegistryAnswer("r.example", 400, ("MANIFEST_INVALID",)), side="destination")
    assert err.exit_code == 3
    assert err.to_json()["error"]["registry"] == {"host": "r.example", "status": 400, "codes": ["MANIFEST_INVALID"]}
    assert hint_for(err) == REGISTRY_CODE_HINTS["MANIFEST_INVALID"]


# ----------------------------------------------------------------------------- hints name real options


def _all_options() -> set[str]:
    names: set[str] = set()

    def walk(cmd: click.Command) -> None:
        for p in cmd.params:
            names.update(o for o in [*p.opts, *p.secondary_opts] if o.startswith("--"))
        if isinstance(cmd, click.Group):  # the top level loads its commands lazily: ask it for each
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, name
                walk(sub)

    walk(cli_main)
    return names | {"--help", "--version"}


#: options of other tools that hints quote (``cosign public-key --key KEY``)
FOREIGN_OPTIONS = {"--key", "--bundle", "--new-bundle-format"}  # cosign's, named in hints as cosign options


def _hint_strings() -> Iterator[tuple[str, str]]:
    """Every string literal given as ``hint=`` anywhere in the package, and all of cli/hints.py."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "hint":
                for const in ast.walk(node.value):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        yield f"{path.name}:{node.lineno}", const.value
    hints = PACKAGE / "cli" / "hints.py"
    for node in ast.walk(ast.parse(hints.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield "cli/hints.py", node.value


def test_every_option_a_hint_names_exists() -> None:
    options = _all_options()
    assert "--cert-file" in options and "--client-cert" not in options
    named = {(where, opt) for where, text in _hint_strings() for opt in re.findall(r"--[a-z][a-z0-9-]+", text)}
    assert ("cli/hints.py", "--cert-file") in named
    missing = sorted((where, opt) for where, opt in named if opt not in options | FOREIGN_OPTIONS)
    assert missing == []
    assert set(OPTIONS_NAMED) <= options
    assert all("--client-cert" not in h for h in TLS_HINTS.values())


# ----------------------------------------------------------------------------- TLS against a real registry


@pytest.fixture
def mtls_registry(tmp_path: Path) -> Iterator[tuple[RunningRegistry, Path, Path, Path]]:
    """A registry that requires a client certificate signed by its CA: (registry, ca, cert, key)."""
    ca, ca_cert, ca_key = make_ca(tmp_path / "ca")
    server = make_server_cert(tmp_path / "ca", ca_cert, ca_key)
    client = make_client_cert(tmp_path / "ca", ca_cert, ca_key)
    reg = start_registry(
        tmp_path / "mtls",
        scheme="https",
        extra={"http": {"tls": {"certificate": str(server.cert), "key": str(server.key), "clientcas": [str(ca.cert)]}}},
        probe_cert=(str(client.cert), str(client.key)),
    )
    yield reg, ca.cert, client.cert, client.key
    reg.stop()


def test_mutual_tls_hint_names_cert_file(
    mtls_registry: tuple[RunningRegistry, Path, Path, Path], run_cli: RunCli, tmp_path: Path
) -> None:
    reg, ca, cert, key = mtls_registry
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    target = f"{reg.host}/errors/mtls:v1"
    code, out, err = run_cli("push", bundle, target, "--ca-file", ca, "--format", "json")
    assert code == 6, out + err
    e = error_doc(out)
    assert e["kind"] == "auth-refused" and e["side"] == "destination"
    assert e["registry"] == {"host": reg.host}
    assert "--cert-file FILE --key-file FILE" in e["hint"] and "--client-cert" not in out
    # the options the hint names are the fix
    code, out, err = run_cli("push", bundle, target, "--ca-file", ca, "--cert-file", cert, "--key-file", key)
    assert code == 0, out + err
    code, out, err = run_cli("inspect", target, "--ca-file", ca)
    assert code == 6
    assert err.startswith("stella-oci: error: source: TLS handshake with registry")
    assert "hint: this registry requires mutual TLS: give a client certificate it trusts with --cert-file" in err


# ----------------------------------------------------------------------------- registry misbehaviour


@pytest.fixture
def proxy(registry: RunningRegistry) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.host)
    yield p
    p.stop()


def test_registry_refusing_a_manifest_is_exit_3_with_its_code(registry: RunningRegistry) -> None:
    """The real registry's own 400 MANIFEST_INVALID: a RegistryError (exit 3), not input (2)."""
    with RegistryClient(registry.host, TransportOptions()) as client:
        with pytest.raises(StellaOciError) as info:
            client.put_manifest("errors/invalid", "v1", b"{not json", OCI_MANIFEST)
    err = info.value
    assert isinstance(err, RegistryError) and err.exit_code == 3
    assert err.registry == RegistryAnswer(registry.host, 400, ("MANIFEST_INVALID",))
    assert "MANIFEST_INVALID" in err.message
    assert hint_for(err) == REGISTRY_CODE_HINTS["MANIFEST_INVALID"]


@pytest.mark.parametrize("status", [400, 405, 409, 501])
def test_odd_registry_answers_are_never_exit_2(
    registry: RunningRegistry, proxy: FaultProxy, run_cli: RunCli, fresh_repo: str, tmp_path: Path, status: int
) -> None:
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    code, out, err = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 0, err
    proxy.rules.append(StatusRule(status, method="GET", path_contains="/manifests/", times=-1))
    code, out, err = run_cli("inspect", f"{proxy.host}/{fresh_repo}:v1", "--format", "json")
    assert code == 3, out + err
    e = error_doc(out)
    assert e["kind"] == "verification-failed" and e["side"] == "source"
    assert e["registry"] == {"host": proxy.host, "status": status}
    assert e["hint"]


def test_copy_says_which_side_failed(
    registry: RunningRegistry, proxy: FaultProxy, run_cli: RunCli, fresh_repo: str, tmp_path: Path
) -> None:
    bundle = copy_example("trivy-db", tmp_path / "bundle")
    code, out, err = run_cli("push", bundle, f"{registry.host}/{fresh_repo}:v1")
    assert code == 0, err
    # the destination refuses the manifest
    proxy.rules.append(StatusRule(400, method="PUT", path_contains="/manifests/", times=-1))
    code, out, err = run_cli(
        "copy", f"{registry.host}/{fresh_repo}:v1", f"{proxy.host}/{fresh_repo}-copy:v1", "--format", "json"
    )
    assert code == 3, out + err
    e = error_doc(out)
    assert e["side"] == "destination" and e["registry"]["status"] == 400
    assert any(r.method == "PUT" and r.outcome == "answered 400" for r in proxy.requests)
    # the source refuses its blobs
    proxy.rules[:] = [StatusRule(400, method="GET", path_contains="/blobs/", times=-1)]
    code, out, err = run_cli(
        "copy", f"{proxy.host}/{fresh_repo}:v1", f"{registry.host}/{fresh_repo}-copy2:v1", "--format", "json"
    )
    assert code == 3, out + err
    e = error_doc(out)
    assert e["side"] == "source" and e["registry"] == {"host": proxy.host, "status": 400}
