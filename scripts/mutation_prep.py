"""Mark the lines of a module that mutation testing must not mutate (``# pragma: no mutate``).

Run by ``scripts/mutation.sh`` on a throw-away copy of the tree, never on the working tree.
Two kinds of lines are excluded, both without effect on what stella-oci decides:

* the span of every ``raise`` statement: the exception's message, hint and details text.
  The condition that decides *whether* to raise is on the ``if`` line before it and stays
  mutated; the class raised is not something mutmut changes;
* lines whose only mutable tokens sit inside type annotations: with
  ``from __future__ import annotations`` annotations are never evaluated, so ``str | None``
  mutated to ``str & None`` cannot change behaviour.

Usage: python scripts/mutation_prep.py FILE...  (prints how many lines each file got)
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

PRAGMA = "# pragma: no mutate"
MUTABLE_NAMES = {"True", "False", "None", "and", "or", "not", "in", "is", "break", "continue"}


def _annotation_spans(tree: ast.AST) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    spans = []
    for node in ast.walk(tree):
        anns: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            anns.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            anns.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            anns.append(node.annotation)
        for ann in anns:
            if ann is not None and ann.end_lineno is not None and ann.end_col_offset is not None:
                spans.append(((ann.lineno, ann.col_offset), (ann.end_lineno, ann.end_col_offset)))
    return spans


def _inside(pos: tuple[int, int], spans: list[tuple[tuple[int, int], tuple[int, int]]]) -> bool:
    return any(start <= pos < end for start, end in spans)


def lines_to_skip(source: str) -> set[int]:
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.end_lineno is not None:
            skip.update(range(node.lineno, node.end_lineno + 1))
    spans = _annotation_spans(tree)
    mutable_in_ann: set[int] = set()
    mutable_outside: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        mutable = (
            tok.type in (tokenize.NUMBER, tokenize.STRING)
            or (tok.type == tokenize.OP and tok.string not in "()[]{},:.;=@->")
            or (tok.type == tokenize.NAME and tok.string in MUTABLE_NAMES)
        )
        if not mutable:
            continue
        (mutable_in_ann if _inside(tok.start, spans) else mutable_outside).add(tok.start[0])
    skip.update(mutable_in_ann - mutable_outside)
    return skip


def mark(path: Path) -> int:
    source = path.read_text(encoding="utf-8")
    skip = lines_to_skip(source)
    out = []
    for number, line in enumerate(source.splitlines(), start=1):
        if number in skip and line.strip() and PRAGMA not in line and not line.rstrip().endswith("\\"):
            # a comment after a string continuation is fine; inside a triple-quoted string it is not
            line = f"{line}  {PRAGMA}"
        out.append(line)
    marked = "\n".join(out) + "\n"
    ast.parse(marked)  # still Python (a pragma inside a multi-line string would break nothing, but check)
    path.write_text(marked, encoding="utf-8")
    return len(skip)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"{arg}: {mark(Path(arg))} lines not mutated (raise statements, annotations)")
