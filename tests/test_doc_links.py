"""Link check of README.md and every docs/*.md (issue 12: the API page "link-checked in CI").

Every relative link (inline ``[t](x)``, images, reference definitions ``[r]: x``, HTML
``href``/``src``) must name a file or directory of the checkout, and every ``#anchor`` must be a
heading of the page it points into, by GitHub's slug rules (github-slugger: the heading's text
lower-cased, everything but letters, digits, ``_``, ``-`` and spaces dropped, each space a
``-``; a repeated slug gets ``-1``, ``-2``, ...), or an explicit ``<a id|name="...">``.
Links with a scheme (``https:``, ``mailto:``) are not fetched: CI must not depend on the
internet. Links inside code blocks and code spans are text, not links.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import REPO_ROOT
from tests.test_docs import doc_files

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFDEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
_HTML_ANCHOR = re.compile(r"""<a\s+[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_LINE_ANCHOR = re.compile(r"^L\d+(-L\d+)?$")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):].strip():
                fence = None
            continue
        out.append((n, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's Markdown text (before de-duplication)."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", text)  # links: their text
    text = _CODE_SPAN.sub(lambda m: m.group(2).strip(), text)
    text = text.replace("*", "")
    text = text.strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub gives ``path``: heading slugs (repeats numbered) and HTML ids."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        out.update(_HTML_ANCHOR.findall(line))
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link in the prose of ``path``."""
    found: list[tuple[int, str]] = []
    for n, line in prose_lines(path.read_text(encoding="utf-8")):
        m = _REFDEF.match(line)
        if m:
            found.append((n, m.group(1)))
            continue
        text = _CODE_SPAN.sub("", line)
        found += [(n, t) for t in _INLINE.findall(text)]
        found += [(n, t) for t in _HTML.findall(text)]
    return found


def broken_links(path: Path, root: Path) -> list[str]:
    """What is wrong with the links of ``path`` (empty: nothing), one line each, naming the
    file, the line and the target."""
    problems: list[str] = []
    for line, target in links(path):
        where = f"{path.relative_to(root).as_posix()}:{line}: {target}"
        if not target or _SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path.resolve()
        if not dest.is_relative_to(root.resolve()):
            problems.append(f"{where}: points outside the repository")
            continue
        if not dest.exists():
            problems.append(f"{where}: no such file")
            continue
        if not anchor:
            continue
        if dest.suffix.lower() == ".md" and dest.is_file():
            if unquote(anchor).lower() not in anchors(dest):
                problems.append(f"{where}: no heading with anchor #{anchor} in {dest.name}")
        elif not _LINE_ANCHOR.match(anchor):
            problems.append(f"{where}: #{anchor} in a file that is not Markdown")
    return problems


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_links_resolve(doc: Path) -> None:
    problems = broken_links(doc, REPO_ROOT)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_doc_page_is_linked_from_readme() -> None:
    readme_targets = {(REPO_ROOT / t.partition("#")[0]).resolve() for _, t in links(REPO_ROOT / "README.md")}
    unlinked = [p.name for p in sorted((REPO_ROOT / "docs").glob("*.md")) if p.resolve() not in readme_targets]
    assert not unlinked, f"README.md does not link these docs pages: {unlinked}"


def test_slug_rules() -> None:
    """GitHub's slugs for headings this repository has (checked against github.com renders)."""
    assert slug("Many exports per transfer: `save` and `load`") == "many-exports-per-transfer-save-and-load"
    assert slug("`trivy:db` and `trivy:java-db`: the layout Trivy reads") == "trivydb-and-trivyjava-db-the-layout-trivy-reads"
    assert slug("Python API and the Export Center plugin") == "python-api-and-the-export-center-plugin"
    assert slug("What a pull and a verify check, every time") == "what-a-pull-and-a-verify-check-every-time"
    assert slug("[Link](x.md) text") == "link-text"
    assert slug("exit 7 (STRICT) / 10") == "exit-7-strict--10"
    assert slug("Größe_der Blöcke") == "größe_der-blöcke"


def test_checker_finds_what_is_broken(tmp_path: Path) -> None:
    """The checker goes red on a missing file, a missing anchor (also in another page), and
    leaves alone code, external links and repeated headings' numbered anchors."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B page\n\n## Same\n\n## Same\n\n<a id=\"custom\"></a>\n")
    (tmp_path / "x.py").write_text("pass\n")
    a = tmp_path / "a.md"
    a.write_text(
        "# Title: `code` here\n\n"
        "[ok](docs/b.md) [ok](docs/b.md#same-1) [ok](#title-code-here) [ok](docs/b.md#custom)\n"
        "[ok](x.py#L1) [ok](https://example.com/nowhere) ![img](docs/b.md)\n"
        "`[not a link](missing.md)`\n\n"
        "```sh\n[not a link](missing2.md)\n```\n\n"
        "[gone](docs/missing.md) [bad](docs/b.md#same-2) [bad](#nothing)\n"
        "[ref]: docs/nope.md\n"
        '<a href="../outside.md">x</a>\n'
    )
    problems = broken_links(a, tmp_path)
    targets = sorted(p.split(": ")[1] for p in problems)
    assert targets == sorted(["docs/missing.md", "docs/b.md#same-2", "#nothing", "docs/nope.md", "../outside.md"]), problems
