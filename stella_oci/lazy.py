"""Package attributes imported on first use (PEP 562), from one table of name -> module.

``stella_oci``, ``stella_oci.signing`` and ``stella_oci.transport`` export names whose modules
are heavy (pydantic models, cryptography, requests); a package's ``__init__`` lists them in a
table and binds the two functions this returns as its module ``__getattr__`` and ``__dir__``.
Only the standard library is imported here: ``stella-oci --version`` loads this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: a name in ``table`` is imported from its
    module on first access and kept in ``namespace`` (the package's ``globals()``), so the
    next access does not come here; any other name is an AttributeError."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *table])

    return __getattr__, __dir__
