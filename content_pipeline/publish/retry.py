"""One publish call with its retries: 429, 5xx and dropped connections back off (Retry-After honoured, capped)
and try again, up to a bound; anything else is raised at once."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from content_pipeline.publish.targets import TargetUnavailable

T = TypeVar("T")
BASE_S = 1.0  # the first backoff; doubled on each retry, with jitter
MAX_WAIT_S = 60.0  # the longest wait, whatever a Retry-After asks


@dataclass
class Retried:
    """How many retries a call took, and the failures that caused them."""

    count: int = 0
    last_code: int | None = None


def backoff(attempt: int, retry_after: float | None) -> float:
    """The wait before retry `attempt` (0-based): the target's Retry-After when it gave one, else
    exponential with jitter; never longer than MAX_WAIT_S."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, MAX_WAIT_S)
    return min(BASE_S * 2**attempt * (0.5 + random.random() / 2), MAX_WAIT_S)


def with_retries(
    call: Callable[[], T], max_retries: int, retried: Retried, sleep: Callable[[float], None] = time.sleep
) -> T:
    """`call()`, tried again after each TargetUnavailable up to `max_retries` times (counted in `retried`);
    the last failure is raised."""
    for attempt in range(max_retries + 1):
        try:
            return call()
        except TargetUnavailable as exc:
            retried.last_code = exc.code
            if attempt == max_retries:
                raise
            retried.count += 1
            sleep(backoff(attempt, exc.retry_after))
    raise AssertionError("unreachable")
