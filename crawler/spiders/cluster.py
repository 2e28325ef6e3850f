"""The site spider as a cluster node: seeds come from Redis, requests go through the shared
scrapy-redis scheduler and duplicate filter, so any node may fetch any site's pages and no URL
is fetched twice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy_redis.spiders import RedisMixin

from crawler.spiders.sites import SiteSpider

SEEDS_KEY = "haechi:seeds"


class ClusterSiteSpider(RedisMixin, SiteSpider):
    name = "sites-cluster"
    redis_key = SEEDS_KEY

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ClusterSiteSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup_redis(crawler)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        for request in self.next_requests():
            yield request

    def make_request_from_data(self, data: bytes) -> Iterator[Request]:
        """A seed is {"url": ..., "max_pages": ...} (JSON) or a bare URL."""
        text = data.decode("utf-8", "replace").strip()
        seed = json.loads(text) if text.startswith("{") else {"url": text}
        if "max_pages" in seed:
            self.max_pages = int(seed["max_pages"])
        request = self.site_request(seed["url"])
        if request is not None:
            yield request
