"""Trying a delivery again after a pause that doubles: a mail server or a webhook that fails
once is often only busy, and hammering it would not help.

Notices (takedown/sending.py) and grooming alerts (grooming/alerts.py) are retried here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def with_backoff(call: Callable[[], T], *, attempts: int, first_wait: float,
                 retry_on: tuple[type[Exception], ...],
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`'s result, trying up to `attempts` times and waiting `first_wait`, then twice
    that, and so on between tries; the last failure is raised as it is (the caller words
    it). Only `retry_on` is retried: anything else is not a passing fault."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    for attempt in range(attempts - 1):
        try:
            return call()
        except retry_on:
            sleep(first_wait * 2**attempt)
    return call()
