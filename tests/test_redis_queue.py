"""The cluster's leased, per-site request queue against a real Redis server."""

from __future__ import annotations

import time

import pytest
import redis
from scrapy import Request, Spider

from crawler.redis_queue import LeasedSiteQueue
from tests.test_cluster import REDIS


class Probe(Spider):
    name = "probe"

    def parse(self, response):  # pragma: no cover - never called
        return None


@pytest.fixture
def queue():
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    q = LeasedSiteQueue(client, Probe(), "%(spider)s:requests")
    q.interval = 0.3
    q.lease = 0.4
    yield q
    client.flushdb()


def request(site: str, path: str, priority: int = 0) -> Request:
    return Request(f"http://{site}/{path}", priority=priority, meta={"site": site})


def test_priority_within_a_site_and_a_rate_per_site_across_the_cluster(queue) -> None:
    queue.push(request("a.example", "page", 0))
    queue.push(request("a.example", "image", 10))
    queue.push(request("a.example", "other", 5))
    queue.push(request("b.example", "page"))
    assert len(queue) == 4
    first = queue.pop()
    assert first.url == "http://a.example/image"
    # a.example just started a request: any node now gets b.example, then nothing.
    assert queue.pop().url == "http://b.example/page"
    assert queue.pop() is None
    time.sleep(0.35)
    assert queue.pop().url == "http://a.example/other"
    assert len(queue) == 1


def test_a_request_whose_node_died_comes_back_and_an_acknowledged_one_does_not(queue) -> None:
    queue.push(request("a.example", "lost"))
    queue.push(request("b.example", "done"))
    lost, done = queue.pop(), queue.pop()
    queue.ack(done)  # this node finished its request; the other node died with its own
    assert queue.pop() is None
    time.sleep(0.45)
    again = queue.pop()
    assert again is not None and again.url == lost.url
    queue.ack(again)
    time.sleep(0.45)
    assert queue.pop() is None and len(queue) == 0
