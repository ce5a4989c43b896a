"""``python -m tests.support.ledger_barrier DIR NAME ARGS...``: ``python -m stella_oci ARGS``
with a barrier at the import ledger's generation check, for a test that runs two loads at once
(tests/test_airgap_generations.py, ``test_two_loads_at_once_one_generation``).

The CLI runs unchanged except for two observation points of :class:`~stella_oci.airgap.ledger.Ledger`:

* opening the ledger (the first ``Ledger(...)``: ``load`` opens it for its generation check,
  and the open itself takes the write lock a moment) creates ``DIR/NAME.entering`` first;
* the first ``generations()`` read creates ``DIR/NAME.read`` once it has its rows, then waits
  until the test creates ``DIR/go`` (at most :data:`WAIT_SECONDS`, then the process fails).

So the test knows where each process is and decides when they go on; :func:`release_when_racing`
is the test's side.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WAIT_SECONDS = 300.0
POLL_SECONDS = 0.01


def _wait_for(what: Callable[[], bool], seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(POLL_SECONDS)


def write_locked(ledger: Path) -> bool:
    """Whether another connection holds the ledger's write lock (``BEGIN IMMEDIATE`` at once
    fails); when nobody does, the probe's own transaction is rolled back at once."""
    conn = sqlite3.connect(str(ledger), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc).lower():
            return True
        raise
    else:
        conn.execute("ROLLBACK")
        return False
    finally:
        conn.close()


def release_when_racing(
    barrier: Path,
    names: tuple[str, str],
    ledger: Path,
    ended: Callable[[], str | None],
    seconds: float = WAIT_SECONDS,
) -> str:
    """Create ``barrier/go`` once both processes are inside the check, as far as the code lets
    them be: either both read the generations (nothing kept the second one out: they race), or
    one read them while holding the ledger's write lock and the other is at the lock's door.
    Returns which of the two it was (``both-read`` / ``one-waits``). ``ended()`` names a process
    that exited before (its output): then this fails at once instead of waiting."""
    seen: list[str] = []

    def racing() -> bool:
        gone = ended()
        if gone is not None:
            raise AssertionError(f"a load ended before the barrier: {gone}")
        read = [n for n in names if (barrier / f"{n}.read").exists()]
        if len(read) == 2:
            seen.append("both-read")
            return True
        if len(read) == 1:
            other = names[1 - names.index(read[0])]
            if (barrier / f"{other}.entering").exists() and write_locked(ledger):
                seen.append("one-waits")
                return True
        return False

    _wait_for(racing, seconds, f"the two loads did not both reach the generation check in {seconds:.0f}s")
    (barrier / "go").touch()
    return seen[-1]


def install(barrier: Path, name: str) -> None:
    from stella_oci.airgap.ledger import GenerationRecord, Ledger

    init = Ledger.__init__
    generations = Ledger.generations
    read_once: list[bool] = []

    def init_at_barrier(self: Ledger, *args: Any, **kwargs: Any) -> None:
        (barrier / f"{name}.entering").touch()
        init(self, *args, **kwargs)

    def generations_at_barrier(self: Ledger, **kwargs: Any) -> list[GenerationRecord]:
        rows = generations(self, **kwargs)
        if not read_once:
            read_once.append(True)
            (barrier / f"{name}.read").touch()
            _wait_for(lambda: (barrier / "go").exists(), WAIT_SECONDS, f"{name}: no {barrier / 'go'}")
        return rows

    Ledger.__init__ = init_at_barrier  # type: ignore[method-assign]
    Ledger.generations = generations_at_barrier  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    directory, name, *args = argv
    install(Path(directory), name)
    sys.argv = ["stella-oci", *args]
    from stella_oci.cli import run

    run()


if __name__ == "__main__":
    main(sys.argv[1:])
