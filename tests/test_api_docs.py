"""Issue 12: "a generated API reference page in docs/ (from docstrings, built and link-checked
in CI)". docs/api.md is what ``python -m stella_oci.apidoc`` writes from ``stella_oci.__all__``
(so it cannot drift from the code), every exported name and every exception has its own
docstring, and the page's links are checked with the others (tests/test_doc_links.py)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest

import stella_oci
from stella_oci.apidoc import _errors, exported, own_doc, render
from tests.conftest import REPO_ROOT

API_MD = REPO_ROOT / "docs" / "api.md"


def test_committed_page_is_the_generated_one() -> None:
    assert API_MD.read_text(encoding="utf-8") == render(), (
        "docs/api.md is stale: run python -m stella_oci.apidoc and commit docs/api.md"
    )


def test_check_mode_and_output(tmp_path) -> None:
    """``--check`` exits 0 on the committed page and 1 on a changed one; a run writes the page."""
    env = {**_base_env(), "PYTHONPATH": str(REPO_ROOT)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stella_oci.apidoc", *args],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False, env=env,
        )
    assert run("--check").returncode == 0
    changed = tmp_path / "api.md"
    changed.write_text(API_MD.read_text(encoding="utf-8").replace("### push\n", "### pushed\n"))
    proc = run("--check", str(changed))
    assert proc.returncode == 1 and "stale" in proc.stderr
    fresh = tmp_path / "fresh.md"
    assert run(str(fresh)).returncode == 0
    assert fresh.read_text(encoding="utf-8") == API_MD.read_text(encoding="utf-8")


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.mark.parametrize("name", [n for n in stella_oci.__all__ if n != "__version__"])
def test_exported_name_has_its_own_docstring(name: str) -> None:
    """Its own: a result model inheriting ResultModel's docstring, or a dataclass's generated
    ``Name(field=...)`` text, does not count."""
    assert own_doc(getattr(stella_oci, name)).strip(), f"stella_oci.{name} has no docstring of its own"


def test_every_exception_has_a_docstring() -> None:
    errors = _errors()
    assert len(errors) >= 10
    assert [e.__name__ for e in errors if not own_doc(e).strip()] == []


def test_page_lists_every_export_and_exception() -> None:
    text = API_MD.read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\S+)$", text, re.M))
    missing = [n for n, _ in exported() if n not in headings]
    missing += [e.__name__ for e in _errors() if e.__name__ not in headings]
    assert missing == []
    # a result's fields are listed with their JSON keys, and the functions with their signatures
    assert "| `export_manifest_digest` | `exportManifestDigest` |" in text
    assert "| `cosign_tags` | `cosignTags` |" in text
    for name, fn in exported():
        if inspect.isfunction(fn):
            assert f"```python\n{name}(" in text
    assert "0x" not in text, "a memory address in the page: the output is not reproducible"


def test_own_doc_ignores_inherited_and_generated_docstrings() -> None:
    """The docstring check can fail: a model without its own docstring and a bare dataclass."""
    from dataclasses import dataclass

    from stella_oci.results import ResultModel

    class Bare(ResultModel):
        x: int

    @dataclass
    class Plain:
        y: int = 0

    assert own_doc(Bare) == "" and own_doc(Plain) == ""
    assert own_doc(stella_oci.push).startswith("Push an export bundle")
