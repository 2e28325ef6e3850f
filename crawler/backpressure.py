"""Back-pressure that counts files, not only bytes: a small file costs a crawl as much work as
a large one, so it must take as much of the scraper's budget.

Scrapy stops sending requests while the responses in its scraper (their callbacks and the
item pipelines, here: store, hash, match) weigh more than SCRAPER_SLOT_MAX_ACTIVE_SIZE bytes,
each weighing its size but at least 1 KB. That bounds the bytes waiting to be hashed, not the
files: a gallery of 12 KB thumbnails filled a 2 MB budget with 166 files, and each waited for
every one before it (profiled on the test web, 200 sites: a file waited 1.0 s for a hashing
process at the median, 2.7 s at p99, and the crawl's reactor was behind by as much). The
hashing and the match cost tens of milliseconds a file however small it is (the local stage's
verification most of all), so every response here weighs at least
SCRAPER_SLOT_MIN_RESPONSE_SIZE: with the defaults (2 MB, 256 KB) the scraper takes no new
requests once about 8 responses are in the pipelines (those already downloading still come
in), and a file's wait is bounded by the time to match that many.
"""

from __future__ import annotations

import logging

from scrapy import Spider, signals
from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class ResponseFloor:
    """A Scrapy extension: every response weighs at least SCRAPER_SLOT_MIN_RESPONSE_SIZE bytes
    in the scraper's budget. Scrapy reads the floor from its scraper slot's MIN_RESPONSE_SIZE
    when a response comes in and when it leaves; it is set once, when the spider opens, before
    the first response, so the two always agree."""

    def __init__(self, crawler: Crawler, floor: int) -> None:
        self.crawler = crawler
        self.floor = floor

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResponseFloor:
        extension = cls(crawler, crawler.settings.getint("SCRAPER_SLOT_MIN_RESPONSE_SIZE"))
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        return extension

    def spider_opened(self, spider: Spider) -> None:
        engine = self.crawler.engine
        slot = getattr(getattr(engine, "scraper", None), "slot", None)
        default = getattr(type(slot), "MIN_RESPONSE_SIZE", None)
        if not isinstance(default, int):
            # A Scrapy that weighs responses otherwise: the crawl goes on with its bytes budget.
            logger.warning("this Scrapy's scraper has no MIN_RESPONSE_SIZE; "
                           "SCRAPER_SLOT_MIN_RESPONSE_SIZE is not applied")
            return
        slot.MIN_RESPONSE_SIZE = max(default, self.floor)
