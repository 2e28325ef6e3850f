"""Naming what went wrong with a fetch, so a run's summary counts errors by kind."""

from __future__ import annotations

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from engines.fetch import BLOCKED_ADDRESS, BlockedAddress

_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (DownloadTimeoutError, "timeout"),
    (TimeoutError, "timeout"),
    (DownloadConnectionRefusedError, "connection-refused"),
    (ConnectionRefusedError, "connection-refused"),
    (CannotResolveHostError, "dns"),
    (DownloadCancelledError, "too-large"),
    (ResponseDataLossError, "truncated-response"),
    (DownloadFailedError, "connection-failed"),
    (ConnectionError, "connection-failed"),
)


def failure_kind(failure: Failure | BaseException) -> str:
    """A short, stable name for the failure: the key it is counted under."""
    error = failure.value if isinstance(failure, Failure) else failure
    if isinstance(error, BlockedAddress):
        return BLOCKED_ADDRESS  # refused by the outbound policy: never fetched
    if isinstance(error, HttpError):
        status = error.response.status
        return f"http-{status // 100}xx"
    if isinstance(error, IgnoreRequest):
        return "too-large" if "DOWNLOAD_MAXSIZE" in str(error) else "ignored"
    for error_type, kind in _KINDS:
        if isinstance(error, error_type):
            return kind
    name = type(error).__name__
    if "Timeout" in name:
        return "timeout"
    if any(word in name for word in ("Connection", "ResponseFailed", "ResponseNeverReceived")):
        return "connection-failed"
    return name
