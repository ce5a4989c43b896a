"""Writes docs/api.md, the Python API reference, from ``stella_oci.__all__`` and its docstrings.

    python -m stella_oci.apidoc                 # (re)write docs/api.md
    python -m stella_oci.apidoc --check         # exit 1 when docs/api.md is not what the code says

The page lists every exported function (signature, docstring), the option classes (their
fields and the fields' docstrings), every result model with its fields (Python attribute, JSON
key, type, description), the models those results contain, and the exceptions. It uses only
:mod:`inspect`, :mod:`ast` and pydantic's own field information: the output is Markdown that
GitHub renders as it is, and the same code gives the same bytes (tests/test_api_docs.py keeps
the committed page equal to it). pdoc and Sphinx were not used: both render HTML (a build step
and a hosted site for a page GitHub shows directly) and neither knows the JSON keys.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import itertools
import re
import sys
import textwrap
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stella_oci.errors import StellaOciError

DEFAULT_OUTPUT = Path("docs") / "api.md"
MAX_DEPTH = 8
"""How deep the walk from an exported result into the models it contains goes."""


_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc):`~?([^`]+)`")


def own_doc(obj: object) -> str:
    """The docstring ``obj`` itself has (not one inherited from a base class, not the
    signature a dataclass writes when there is none), dedented; "" when it has none."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if dataclasses.is_dataclass(obj) and isinstance(doc, str) and doc.startswith(f"{obj.__name__}("):
            return ""
    else:
        doc = getattr(obj, "__doc__", None)
    return _ROLE.sub(r"``\1``", inspect.cleandoc(doc)) if isinstance(doc, str) else ""


def exported() -> list[tuple[str, Any]]:
    """``stella_oci.__all__`` (without ``__version__``), each name with its object."""
    import stella_oci

    return [(name, getattr(stella_oci, name)) for name in stella_oci.__all__ if name != "__version__"]


def _is_model(obj: object) -> bool:
    from pydantic import BaseModel

    return inspect.isclass(obj) and issubclass(obj, BaseModel)


def _is_error(obj: object) -> bool:
    from stella_oci.errors import StellaOciError

    return inspect.isclass(obj) and issubclass(obj, StellaOciError)


def _annotation(ann: Any) -> str:
    if ann is inspect.Parameter.empty:
        return ""
    return ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))


def _default(cls: type | None, p: inspect.Parameter) -> str:
    """``repr`` of the default; a dataclass field's ``default_factory`` as the call it makes."""
    if cls is not None and dataclasses.is_dataclass(cls) and repr(p.default) == "<factory>":
        factory = {f.name: f.default_factory for f in dataclasses.fields(cls)}.get(p.name)
        if factory is dict:
            return "{}"
        if factory is list:
            return "[]"
        return f"{getattr(factory, '__name__', '?')}()"
    return repr(p.default)


def _signature(name: str, fn: Callable[..., Any], owner: type | None = None) -> str:
    """``name(params) -> return`` with the annotations as written; one parameter a line when long."""
    sig = inspect.signature(fn)
    params: list[str] = []
    star_done = False
    for p in sig.parameters.values():
        if owner is not None and p.name == "self":
            continue
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not star_done:
            params.append("*")
            star_done = True
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            star_done = True
        text = p.name
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            text = "*" + text
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            text = "**" + text
        ann = _annotation(p.annotation)
        if ann:
            text += f": {ann}"
        if p.default is not inspect.Parameter.empty:
            text += f" = {_default(owner, p)}" if ann else f"={_default(owner, p)}"
        params.append(text)
    ret = _annotation(sig.return_annotation)
    tail = f" -> {ret}" if ret and owner is None else ""
    one_line = f"{name}({', '.join(params)}){tail}"
    if len(one_line) <= 100:
        return one_line
    return f"{name}(\n" + "".join(f"    {p},\n" for p in params) + f"){tail}"


def _source_annotations(cls: type) -> dict[str, str]:
    """Field name -> the annotation as written in the source (``from __future__ import
    annotations`` keeps them strings), base classes first so that subclasses win."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for key, value in inspect.get_annotations(klass).items():
            out[key] = value if isinstance(value, str) else getattr(value, "__name__", repr(value))
    return out


def _attribute_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings (a string right after ``name: type = ...``) of ``cls`` and its
    bases, read from their source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ == "builtins" or not klass.__module__.startswith("stella_oci"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in itertools.pairwise(body):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def _anchor(name: str) -> str:
    return name.lower()


def _type_cell(text: str, documented: set[str]) -> str:
    """The type as written; the documented models it names link to their sections."""
    names = [n for n in re.findall(r"[A-Za-z_]\w*", text) if n in documented]
    if not names:
        return _code(text)
    return re.sub(
        r"[A-Za-z_]\w*",
        lambda m: f"[{m.group(0)}](#{_anchor(m.group(0))})" if m.group(0) in documented else m.group(0),
        _cell(text),
    )


def _model_section(cls: type, contained: set[str]) -> list[str]:
    from pydantic import BaseModel

    assert issubclass(cls, BaseModel)
    lines = [f"### {cls.__name__}", ""]
    doc = own_doc(cls)
    if doc:
        lines += [doc, ""]
    annotations = _source_annotations(cls)
    if not cls.model_fields:
        return lines
    lines += ["| attribute | JSON key | type | description |", "|---|---|---|---|"]
    for name, info in cls.model_fields.items():
        key = info.serialization_alias or info.alias or name
        desc = info.description or ""
        lines.append(
            f"| `{name}` | `{key}` | {_type_cell(annotations.get(name, '?'), contained)} | {_cell(desc)} |"
        )
    lines.append("")
    return lines


def _dataclass_section(cls: type, documented: set[str]) -> list[str]:
    lines = [f"### {cls.__name__}", ""]
    init = cls.__init__  # type: ignore[misc]
    lines += ["```python", _signature(cls.__name__, init, owner=cls), "```", ""]
    doc = own_doc(cls)
    if doc:
        lines += [doc, ""]
    docs = _attribute_docs(cls)
    annotations = _source_annotations(cls)
    fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
    if fields:
        lines += ["| field | type | description |", "|---|---|---|"]
        for f in fields:
            ann = _type_cell(annotations.get(f.name, "?"), documented)
            lines.append(f"| `{f.name}` | {ann} | {_cell(docs.get(f.name, ''))} |")
        lines.append("")
    return lines


def _function_section(name: str, fn: Callable[..., Any], documented: set[str]) -> list[str]:
    lines = [f"### {name}", "", "```python", _signature(name, fn), "```", ""]
    ret = inspect.signature(fn).return_annotation
    if isinstance(ret, str) and ret in documented:
        lines += [f"Returns [`{ret}`](#{_anchor(ret)}).", ""]
    doc = own_doc(fn)
    if doc:
        lines += [doc, ""]
    return lines


def _contained_models(roots: list[type], depth: int = 0) -> Iterator[type]:
    """Every pydantic model a field of ``roots`` holds (``list[X]``, ``X | None``, ...),
    recursively, each once."""
    seen: set[type] = set(roots)
    todo = list(roots)
    while todo and depth < MAX_DEPTH:
        depth += 1
        nxt: list[type] = []
        for cls in todo:
            for info in cls.model_fields.values():  # type: ignore[attr-defined]
                for t in _types_in(info.annotation, 0):
                    if _is_model(t) and t not in seen:
                        seen.add(t)
                        nxt.append(t)
                        yield t
        todo = nxt


def _types_in(annotation: Any, depth: int) -> Iterator[Any]:
    if depth > MAX_DEPTH:
        return
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _types_in(arg, depth + 1)


def _errors() -> list[type[StellaOciError]]:
    """``StellaOciError`` and every subclass ``stella_oci.errors`` defines: the base first, then
    by exit code."""
    errors = importlib.import_module("stella_oci.errors")
    base: type[StellaOciError] = errors.StellaOciError
    found: list[type[StellaOciError]] = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, base) and obj.__module__ == errors.__name__
    ]
    return sorted(found, key=lambda c: (c is not base, c.exit_code, c.__name__))


def render() -> str:
    """The whole page (Markdown)."""
    names = exported()
    functions = [(n, o) for n, o in names if inspect.isfunction(o)]
    models = [o for _, o in names if _is_model(o)]
    options = [o for _, o in names if inspect.isclass(o) and not _is_model(o) and not _is_error(o)]
    contained = sorted(_contained_models(models), key=lambda c: c.__name__)
    documented = {c.__name__ for c in [*models, *contained, *options]}
    errors = _errors()

    out = [
        "# Python API reference",
        "",
        "<!-- Generated by `python -m stella_oci.apidoc` from the docstrings; do not edit by hand.",
        "     tests/test_api_docs.py fails when this page and the code disagree. -->",
        "",
        "Everything below is importable from `stella_oci` (its `__all__`); other modules are",
        "internal. Every function is the CLI command of the same name and returns a typed result",
        "whose JSON form (`result.model_dump(mode=\"json\", by_alias=True)`) is that command's",
        "`--format json` document ([output.md](output.md)). Failures raise",
        "[`StellaOciError`](#stellaocierror) subclasses whose `exit_code` is the CLI's exit code",
        "([exit-codes.md](exit-codes.md)).",
        "",
        "The page is generated by `python -m stella_oci.apidoc` (the standard library's `inspect` and",
        "`ast` over the docstrings and pydantic's field information) rather than pdoc or Sphinx:",
        "those render HTML for a hosted site, this is Markdown GitHub shows as it is, and it lists",
        "each result field's JSON key.",
        "",
        "## Functions",
        "",
    ]
    for name, fn in sorted(functions):
        out += _function_section(name, fn, documented)
    out += ["## Options", ""]
    for cls in sorted(options, key=lambda c: c.__name__):
        out += _dataclass_section(cls, documented)
    out += ["## Results", ""]
    for cls in sorted(models, key=lambda c: c.__name__):
        out += _model_section(cls, documented)
    out += ["## Types inside the results", ""]
    for cls in contained:
        out += _model_section(cls, documented)
    out += [
        "## Exceptions",
        "",
        "Import them from `stella_oci.errors`; catch `StellaOciError` for all of them.",
        "",
    ]
    for cls in errors:
        bases = ", ".join(b.__name__ for b in cls.__bases__)
        out += [f"### {cls.__name__}", "", f"`{cls.__name__}({bases})`: exit code {cls.exit_code}, "
                f"kind `{cls.kind}`.", ""]
        doc = own_doc(cls)
        if doc:
            out += [doc, ""]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    rest = [a for a in args if a != "--check"]
    path = Path(rest[0]) if rest else DEFAULT_OUTPUT
    text = render()
    if check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            print(f"{path} is stale: run python -m stella_oci.apidoc", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
