"""Item pipelines of the crawler: put fetched bytes in the object store and record the fetch.

Matching is not done here: the matcher adds its own pipeline after this one (the data flows
crawl → store → hash), wired by the ITEM_PIPELINES setting.
"""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy.crawler import Crawler

from crawler.items import FetchedMedia, SiteFacts
from crawler.records import CrawlRecords
from engines.objects import LocalStore, ObjectStore, media_key, open_store


class StorePipeline:
    """Stores each fetched file once by its SHA-256 and writes its fetched-file row."""

    def __init__(self, crawler: Crawler, store: ObjectStore, records: CrawlRecords) -> None:
        self.crawler = crawler
        self.store = store
        self.records = records

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings
        return cls(
            crawler,
            open_store(settings.get("HAECHI_STORE") or None),
            CrawlRecords.open(settings.get("DATABASE_URL") or None),
        )

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, SiteFacts):
            self.records.record_site(item)
        elif isinstance(item, FetchedMedia):
            key = media_key(item.sha256)
            try:
                if isinstance(self.store, LocalStore):
                    written = self.store.put(key, item.body or b"")
                else:  # a network store must not block the reactor
                    written = await asyncio.to_thread(self.store.put, key, item.body or b"")
            except Exception as exc:
                # The file is still matched and recorded (its bytes are in memory); only the
                # stored copy is missing, and the record says so with an empty store key.
                self.crawler.stats.inc_value("haechi/errors/store-failed")
                self.crawler.spider.logger.error("could not store %s: %s", item.url, exc)
            else:
                item.store_key = key
                if not written:
                    self.crawler.stats.inc_value("haechi/files_already_stored")
            self.records.record_files([item])
        return item
