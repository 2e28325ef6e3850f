"""Cluster mode on the crawler's side: stored files become Celery tasks for matcher workers.

The crawler does not import the matcher (data flows one way); it sends the task by name over
the broker at REDIS_URL. The task's argument is the file's FetchRecord as JSON, the evidence
without the bytes, which the worker reads back from the object store by key.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from scrapy.crawler import Crawler

from crawler.items import FetchedMedia
from engines.broker import MATCH_QUEUE, MATCH_TASK, celery_app


class DispatchPipeline:
    """Item pipeline (after the store pipeline): one match task per stored file."""

    def __init__(self, crawler: Crawler, app: Celery) -> None:
        self.crawler = crawler
        self.app = app

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DispatchPipeline:
        return cls(crawler, celery_app())

    def process_item(self, item: Any) -> Any:
        if isinstance(item, FetchedMedia) and item.store_key:
            item.body = None
            self.app.send_task(MATCH_TASK, args=[item.to_json()], queue=MATCH_QUEUE)
            self.crawler.stats.inc_value("haechi/files_dispatched")
        return item
