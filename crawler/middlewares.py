"""Downloader middlewares of the crawler."""

from __future__ import annotations

import asyncio
import random

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Request, Response


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry, but each retry waits longer (exponential backoff with jitter).

    A struggling host that answers 503 or drops connections gets breathing room instead of an
    immediate second and third hit. The wait holds no download slot of its site.
    """

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.base_delay = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.max_delay = settings.getfloat("RETRY_BACKOFF_MAX", 30.0)

    async def _wait(self, retry: Request | None) -> None:
        if retry is None:
            return
        attempt = retry.meta.get("retry_times", 1)
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def process_response(self, request: Request, response: Response
                               ) -> Request | Response:
        result = super().process_response(request, response)
        if isinstance(result, Request):
            await self._wait(result)
        return result

    async def process_exception(self, request: Request, exception: Exception
                                ) -> Request | Response | None:
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            await self._wait(result)
        return result
