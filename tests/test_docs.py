"""Docs as tests: the commands in README.md and docs/*.md run here, so the docs cannot rot.

The convention (follow it in every doc):

* A fenced code block whose info string is ``sh`` is **executed**. The ``sh`` blocks of one
  file run in order, each by ``bash -e -o pipefail`` as its own process, all in the same
  fresh temporary working directory (files one block writes are there for the next; shell
  variables are not: set what a block needs in that block).
* In that directory ``stella-oci`` is on ``PATH`` (this checkout's code), and so is a
  ``python3`` that has it installed; ``examples/`` is a copy of the repository's examples,
  ``$EXAMPLES`` is the repository's ``examples/`` directory, ``$REPO_ROOT`` the checkout, ``$REGISTRY`` is the test registry's ``host:port`` (plain HTTP, loopback, no
  auth): write ``$REGISTRY/...``, never a fixed port. For the air-gap walkthrough there are two
  registries: ``$A`` (outside; the same registry as ``$REGISTRY``) and ``$B`` (inside: a second
  real registry started empty for each doc), and ``$WORK`` is the working directory itself. ``HOME`` is an empty temporary
  directory (so ``~/.docker/config.json`` is the doc's own), and no ``STELLA_OCI_*``,
  ``DOCKER_CONFIG`` or ``GITHUB_*`` variable leaks in from the machine.
* A block expected to fail starts with a comment line ``# expect-exit: N``: the block must
  exit with N (under ``-e`` that is the first failing command's status, so put the failing
  command last).
* Blocks with the info string ``console`` or ``text`` (or any other) are illustrations and
  are not run: commands that need the internet, real credentials or root (``bash .ci/run``),
  and sample output.

Every file is picked up automatically. ``bash scripts/quickstart.sh`` (README's quick start)
is run too, when the script exists, and must exit 0 and print its ``verified`` line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.support.registry import RegistryHandle, start_registry

BLOCK_TIMEOUT = 300.0
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_EXPECT = re.compile(r"^\s*#\s*expect-exit:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    code: str

    @property
    def expected_exit(self) -> int:
        for line in self.code.splitlines():
            if line.strip():
                m = _EXPECT.match(line)
                return int(m.group(1)) if m else 0
        return 0


def code_blocks(path: Path) -> list[Block]:
    """Fenced code blocks (CommonMark backtick or tilde fences) of a Markdown file."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group("fence"), i
        info = m.group("info").strip().split()[0] if m.group("info").strip() else ""
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = _FENCE.match(lines[i])
            if (
                close
                and close.group("fence")[0] == fence[0]
                and len(close.group("fence")) >= len(fence)
                and not close.group("info").strip()
            ):
                break
            body.append(lines[i])
            i += 1
        blocks.append(Block(path, start + 1, info, "\n".join(body) + "\n"))
        i += 1
    return blocks


def doc_files() -> list[Path]:
    files = [REPO_ROOT / "README.md"] if (REPO_ROOT / "README.md").exists() else []
    return files + sorted((REPO_ROOT / "docs").glob("*.md"))


def runnable(path: Path) -> list[Block]:
    return [b for b in code_blocks(path) if b.info == "sh"]


DOCS_WITH_COMMANDS = [p for p in doc_files() if runnable(p)]


def _doc_env(
    home: Path, bin_dir: Path, registry: RegistryHandle, inside: RegistryHandle, work: Path
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STELLA_OCI_", "GITHUB_", "RUNNER_", "INPUT_", "DOCKER_CONFIG"))
    }
    env.update(
        {
            "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
            "HOME": str(home),
            "REGISTRY": registry.host,
            "A": registry.host,
            "B": inside.host,
            "WORK": str(work),
            "EXAMPLES": str(REPO_ROOT / "examples"),
            "REPO_ROOT": str(REPO_ROOT),
            "NO_COLOR": "1",
            "TERM": "dumb",
            "COLUMNS": "200",
            "PYTHONUTF8": "1",
        }
    )
    return env


@pytest.fixture
def doc_sandbox(tmp_path: Path, registry: RegistryHandle) -> Iterator[tuple[Path, dict[str, str]]]:
    """The working directory and environment the convention promises (module docstring)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "stella-oci"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m stella_oci "$@"\n')
    wrapper.chmod(0o755)
    python = bin_dir / "python3"  # a wrapper, not a symlink: a venv is found from the real path
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    shutil.copytree(REPO_ROOT / "examples", work / "examples")
    inside = start_registry(tmp_path / "registry-b")
    try:
        yield work, _doc_env(home, bin_dir, registry, inside, work)
    finally:
        inside.stop()


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", block.code],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("doc", DOCS_WITH_COMMANDS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_doc_commands_run(doc: Path, doc_sandbox: tuple[Path, dict[str, str]]) -> None:
    work, env = doc_sandbox
    for block in runnable(doc):
        proc = run_block(block, work, env)
        where = f"{doc.relative_to(REPO_ROOT)}:{block.line}"
        assert proc.returncode == block.expected_exit, (
            f"{where}: the sh block exited {proc.returncode}, expected {block.expected_exit}\n"
            f"--- block\n{block.code}--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
        )


def test_convention_finds_blocks(tmp_path: Path) -> None:
    """The parser: sh blocks run, console/text do not, expect-exit is read, nested fences hold."""
    md = tmp_path / "x.md"
    md.write_text(
        "# t\n\n```sh\necho one\n```\n\n```console\n$ bash .ci/run\n```\n\n"
        "````sh\n# expect-exit: 3\n```\nexit 3\n````\n\n~~~text\nout\n~~~\n"
    )
    blocks = code_blocks(md)
    assert [(b.info, b.line) for b in blocks] == [("sh", 3), ("console", 7), ("sh", 11), ("text", 17)]
    run = runnable(md)
    assert [b.expected_exit for b in run] == [0, 3]
    assert run[1].code == "# expect-exit: 3\n```\nexit 3\n"


def test_every_doc_is_found() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in doc_files()}
    for required in (
        "docs/exit-codes.md",
        "docs/authentication.md",
        "docs/troubleshooting.md",
        "docs/github-action.md",
    ):
        assert required in names
        assert required in {p.relative_to(REPO_ROOT).as_posix() for p in DOCS_WITH_COMMANDS}, (
            f"{required} runs nothing"
        )


def test_quickstart_script(doc_sandbox: tuple[Path, dict[str, str]]) -> None:
    script = REPO_ROOT / "scripts" / "quickstart.sh"
    assert script.is_file()
    _, env = doc_sandbox
    proc = subprocess.run(
        ["bash", str(script)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    assert re.search(r"^verified ", proc.stdout + proc.stderr, re.M), proc.stdout + proc.stderr
