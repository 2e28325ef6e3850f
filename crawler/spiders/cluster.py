"""The site spider as a cluster node: sites come from the shared schedule in Redis, requests go
through the shared scrapy-redis scheduler and duplicate filter, so any node may fetch any
site's pages and no URL is fetched twice in one visit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy_redis.spiders import RedisMixin

from crawler.schedule import SCHEDULE_KEY, SiteSchedule
from crawler.spiders.sites import SiteSpider


class ClusterSiteSpider(RedisMixin, SiteSpider):
    name = "sites-cluster"
    redis_key = SCHEDULE_KEY

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ClusterSiteSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup_redis(crawler)
        spider.schedule = SiteSchedule.from_env(spider.server)
        # scrapy-redis asks how many seeds wait before it lets an idle node stop.
        spider.count_size = lambda _key: spider.schedule.due()
        return spider

    async def start(self) -> AsyncIterator[Request]:
        for request in self.next_requests():
            yield request

    def next_requests(self) -> Iterator[Request]:
        """Start requests of the sites due now, claimed from the schedule.

        Scrapy schedules each request as it is yielded, so when the generator resumes the
        request is in the shared queue and the visit can be confirmed; a node that dies
        before that leaves only a claim, which runs out."""
        for visit in self.schedule.claim(self.redis_batch_size):
            request = self.site_request(visit.url, visit.visit, visit.max_pages)
            if request is not None:
                yield request
            self.schedule.confirm(visit)
