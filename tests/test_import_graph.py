"""The package's import graph has no cycle (every import counts: module level, inside
functions, under TYPE_CHECKING), and the neutral layers do not import StellaOps code."""

from __future__ import annotations

import ast
from pathlib import Path

import stella_oci

PACKAGE = Path(stella_oci.__file__).resolve().parent


def module_graph() -> dict[str, set[str]]:
    mods: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                    for a in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    graph = module_graph()
    assert "stella_oci.airgap.metrics" in graph["stella_oci.airgap.ledger"]
    assert cycles(graph) == []


def test_neutral_modules_import_no_stellaops_code() -> None:
    graph = module_graph()
    for neutral in ("stella_oci.jsonio", "stella_oci.schemas"):
        assert not {m for m in graph[neutral] if m.startswith(("stella_oci.export", "stella_oci.airgap"))}


def test_oci_and_transport_do_not_import_export() -> None:
    graph = module_graph()
    assert len(graph) > 40  # really read the package
    wrong = sorted(
        (m, d)
        for m, deps in graph.items()
        if m.startswith(("stella_oci.oci", "stella_oci.transport"))
        for d in deps
        if d.startswith(("stella_oci.export", "stella_oci.airgap"))
    )
    assert wrong == []
