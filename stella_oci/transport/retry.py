"""Backoff arithmetic for :class:`~stella_oci.transport.options.RetryPolicy`.

Exponential backoff with full jitter: before retry ``n`` (0-based) wait a uniformly random
time in ``[0, min(max_delay, base_delay * 2**n)]``; when the registry sent ``Retry-After``
(seconds or an HTTP date) wait exactly that long instead (capped at ``max_delay``). A
:class:`RetryBudget` refuses a further try once ``attempts`` tries were made or the next
wait would end after ``total_seconds`` from the first try.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field

from stella_oci.transport.options import RetryPolicy

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(policy: RetryPolicy, retry_index: int, retry_after: float | None = None) -> float:
    """How long to wait before retry number ``retry_index`` (0 = the first retry)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_delay)
    ceiling = min(policy.max_delay, policy.base_delay * (2**retry_index))
    return random.uniform(0.0, ceiling)


@dataclass
class RetryBudget:
    """Counts the tries of one logical operation against a :class:`RetryPolicy`."""

    policy: RetryPolicy
    started: float = field(default_factory=time.monotonic)
    tries: int = 0

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Record a failed try; the time to sleep before the next one, or None when exhausted."""
        self.tries += 1
        if self.tries >= self.policy.attempts:
            return None
        delay = backoff_delay(self.policy, self.tries - 1, retry_after)
        if delay > self.remaining():
            return None
        return delay

    def restart_if_unused(self) -> None:
        """Start the clock again when no try failed yet (a wait before the first try, such as
        a rate limit's, is not retry time)."""
        if self.tries == 0:
            self.started = time.monotonic()

    def remaining(self) -> float:
        return self.policy.total_seconds - (time.monotonic() - self.started)

    def sleep(self, delay: float) -> None:
        time.sleep(delay)
