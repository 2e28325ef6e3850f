"""The one retry with backoff (engines/retry.py): the attempts and pauses notices and alerts
have always had."""

from __future__ import annotations

import pytest

from engines.retry import with_backoff


def failing(times: int, error: Exception):
    calls: list[int] = []

    def call() -> str:
        calls.append(len(calls))
        if len(calls) <= times:
            raise error
        return "done"

    return call, calls


def test_waits_double_between_tries_and_the_result_comes_back() -> None:
    waits: list[float] = []
    call, calls = failing(2, OSError("busy"))
    assert with_backoff(call, attempts=3, first_wait=2.0, retry_on=(OSError,),
                        sleep=waits.append) == "done"
    assert waits == [2.0, 4.0] and len(calls) == 3


def test_the_last_failure_is_raised_with_no_pause_after_it() -> None:
    waits: list[float] = []
    call, calls = failing(5, OSError("down"))
    with pytest.raises(OSError, match="down"):
        with_backoff(call, attempts=3, first_wait=1.0, retry_on=(OSError,), sleep=waits.append)
    assert waits == [1.0, 2.0] and len(calls) == 3


def test_only_the_named_failures_are_retried() -> None:
    waits: list[float] = []
    call, calls = failing(1, KeyError("a bug, not a busy server"))
    with pytest.raises(KeyError):
        with_backoff(call, attempts=3, first_wait=1.0, retry_on=(OSError,), sleep=waits.append)
    assert waits == [] and len(calls) == 1
