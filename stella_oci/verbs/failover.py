"""Mirror failover: several mirrors for one source, tried in order (as containers-registries.conf
and regclient do).

:func:`open_first_serving` opens each candidate mirror of a reference in turn and asks it to
resolve the reference's tag or digest; a mirror that cannot be reached, answers 5xx (after the
retries) or does not have the reference (404) is closed and the next one is asked. The first
that resolves is the source of the whole operation (every manifest and blob comes from it), and
:func:`served_by` says which one it was. The source registry itself is not tried: a mapping
means "read it from there" (inside an air gap the mirrors are the only way in).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

from stella_oci.errors import NotFoundError, RegistryError, StellaOciError, TransientError
from stella_oci.oci.reference import Reference
from stella_oci.targets.base import ReadOnlyTarget

_served: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def mark_served_by(target: ReadOnlyTarget, where: Reference) -> ReadOnlyTarget:
    """Remember that ``target`` (opened for a mirror) serves the reads."""
    _served[target] = f"{where.registry}/{where.repository}"
    return target


def served_by(target: object) -> str | None:
    """``host/repository`` of the mirror that served the reads from ``target``; None when no
    mirror was involved."""
    try:
        return _served.get(target)
    except TypeError:  # not weak-referenceable: never marked
        return None


def _fails_over(exc: StellaOciError) -> bool:
    """Connection failure and 5xx (both exit 10 after the retries) and 404 try the next mirror;
    anything else (a verification failure, refused credentials) is an answer, not an outage."""
    if isinstance(exc, (TransientError, NotFoundError)):
        return True
    status = exc.registry.status if isinstance(exc, RegistryError) and exc.registry else None
    return status is not None and status >= 500


def open_first_serving(
    candidates: Sequence[Reference], selector: str, opener: Callable[[Reference], ReadOnlyTarget]
) -> ReadOnlyTarget:
    """The first candidate mirror that resolves ``selector`` (see module docstring). When none
    does, the last mirror's error is raised, its message listing what each mirror answered."""
    failures: list[str] = []
    last: StellaOciError | None = None
    for where in candidates:
        target = opener(where)
        try:
            target.resolve(selector)
        except StellaOciError as exc:
            target.close()
            if not _fails_over(exc):
                raise
            failures.append(f"{where.registry}/{where.repository}: {exc.message}")
            last = exc
            continue
        except BaseException:
            target.close()
            raise
        return mark_served_by(target, where)
    assert last is not None
    last.message = f"no mirror served {selector}: " + "; ".join(failures)
    last.args = (last.message,)
    last.hint = last.hint or "check that one of the mirrors is up and holds the artifact"
    raise last


__all__ = ["mark_served_by", "open_first_serving", "served_by"]
