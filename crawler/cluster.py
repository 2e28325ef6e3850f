"""Cluster mode on the crawler's side: stored files become Celery tasks for matcher workers.

The crawler does not import the matcher (data flows one way); it sends the task by name over
the broker at REDIS_URL. The record is the fetched-file evidence without the bytes, which the
worker reads back from the object store by key.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from celery import Celery
from scrapy.crawler import Crawler

from crawler.items import FetchedMedia
from haechi.home import redis_url

MATCH_TASK = "matcher.tasks.match_stored_file"
MATCH_QUEUE = "haechi.match"
# Seconds before a task taken by a worker that died is handed to another (Redis broker).
VISIBILITY_TIMEOUT = int(os.environ.get("HAECHI_TASK_VISIBILITY_TIMEOUT") or 300)


def celery_app(name: str = "haechi") -> Celery:
    """The Celery app both sides share the configuration of (broker: REDIS_URL)."""
    app = Celery(name)
    app.conf.update(
        broker_url=redis_url() or "redis://127.0.0.1:6379/0",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=MATCH_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        # A crawler node keeps a stored file's task through a Redis restart or failover
        # (about a minute of retries) instead of dropping it.
        task_publish_retry_policy={"max_retries": 40, "interval_start": 0,
                                   "interval_step": 0.5, "interval_max": 2},
        task_ignore_result=True,
    )
    return app


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
