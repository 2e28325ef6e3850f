"""Cluster mode on the crawler's side: stored files become Celery tasks for matcher workers.

The crawler does not import the matcher (data flows one way); it sends the task by name over
the broker at REDIS_URL. The record is the fetched-file evidence without the bytes, which the
worker reads back from the object store by key.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from celery import Celery
from scrapy.crawler import Crawler

from crawler.items import FetchedMedia
from engines.broker import MATCH_QUEUE, MATCH_TASK, celery_app


def task_record(item: FetchedMedia) -> dict[str, Any]:
    record = {k: v for k, v in dataclasses.asdict(item).items() if k != "body"}
    record["fetched_at"] = item.fetched_at.isoformat()
    return record


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
            self.app.send_task(MATCH_TASK, args=[task_record(item)], queue=MATCH_QUEUE)
            self.crawler.stats.inc_value("haechi/files_dispatched")
        return item
