"""A Scrapy extension that shows a live progress line while a crawl runs (terminals only)."""

from __future__ import annotations

import sys

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from tqdm import tqdm


class ProgressExtension:
    """Counts pages and files on one tqdm line; enabled by HAECHI_PROGRESS and a terminal."""

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats
        self.bar = tqdm(desc="crawling", unit=" responses", file=sys.stderr, leave=False,
                        dynamic_ncols=True)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressExtension:
        if not crawler.settings.getbool("HAECHI_PROGRESS") or not sys.stderr.isatty():
            raise NotConfigured
        extension = cls(crawler)
        crawler.signals.connect(extension.response_received, signals.response_received)
        crawler.signals.connect(extension.spider_closed, signals.spider_closed)
        return extension

    def response_received(self) -> None:
        get = self.stats.get_value
        errors = sum(v for k, v in self.stats.get_stats().items()
                     if k.startswith("haechi/errors/"))
        self.bar.set_postfix(sites=get("haechi/sites", 0), pages=get("haechi/pages", 0),
                             files=get("haechi/files", 0), matches=get("haechi/matches", 0),
                             errors=errors, refresh=False)
        self.bar.update()

    def spider_closed(self) -> None:
        self.bar.close()
