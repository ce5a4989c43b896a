"""--retries / --retry-max-time (and STELLA_OCI_RETRIES / STELLA_OCI_RETRY_MAX_TIME) set the
retry budget of every step: counted in tries the CLI reports, and bounded in time."""

from __future__ import annotations

import socket
import time

from stella_oci.cli.common import retry_policy
from stella_oci.transport import RetryPolicy
from tests.conftest import RunCli


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_retry_policy_from_options() -> None:
    assert retry_policy(None, None) == RetryPolicy()
    p = retry_policy(0, None)
    assert p.attempts == 1
    p = retry_policy(20, 120)
    assert (p.attempts, p.total_seconds) == (21, 120)
    assert retry_policy(30, None).total_seconds == 30 * RetryPolicy().max_delay
    p = retry_policy(None, 1.5)
    assert p.total_seconds == 1.5 and p.max_delay <= 1.5


def test_retries_option_sets_the_number_of_tries(run_cli: RunCli) -> None:
    ref = f"127.0.0.1:{_dead_port()}/x/y:v1"
    code, _, err = run_cli("inspect", ref, "--retries", "2", "--retry-max-time", "30", "-q")
    assert code == 10, err
    assert "gave up after 3 tries" in err, err
    code, _, err = run_cli("inspect", ref, "-q", env={"STELLA_OCI_RETRIES": "0"})
    assert code == 10, err
    assert "gave up after 1 try in" in err, err


def test_retry_max_time_bounds_the_wait(run_cli: RunCli) -> None:
    ref = f"127.0.0.1:{_dead_port()}/x/y:v1"
    start = time.monotonic()
    code, _, err = run_cli(
        "inspect", ref, "-q", env={"STELLA_OCI_RETRIES": "1000", "STELLA_OCI_RETRY_MAX_TIME": "1"}
    )
    elapsed = time.monotonic() - start
    assert code == 10, err
    # 1000 retries allowed, but no wait may end more than 1 s after the first try
    assert elapsed < 15, elapsed
    tries = int(err.split("gave up after ", 1)[1].split(" ", 1)[0])
    assert 2 <= tries < 1000, err
    code, _, err = run_cli("inspect", ref, "-q", "--retries", "-1")
    assert code == 2, err
