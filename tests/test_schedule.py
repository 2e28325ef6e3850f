"""The cluster's site schedule and per-cycle duplicate filter, against a real Redis server."""

from __future__ import annotations

import hashlib
import time

import pytest
import redis

from crawler.redis_dupefilter import CycleBloomDupeFilter, layer_bytes
from crawler.schedule import SiteSchedule
from tests.test_cluster import REDIS

HOUR = 3600.0


@pytest.fixture
def client():
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    yield client
    client.flushdb()


def test_every_site_comes_due_again_within_the_cycle_and_matched_sites_sooner(client) -> None:
    schedule = SiteSchedule(client, recrawl_hours=24, matched_hours=6, claim_seconds=300)
    t0 = 1_000_000.0
    schedule.add("a.example", "http://a.example/", 50, now=t0)
    schedule.add("b.example", "http://b.example/", None, now=t0)
    visits = schedule.claim(10, now=t0)
    assert [(v.site, v.url, v.max_pages) for v in visits] == [
        ("a.example", "http://a.example/", 50), ("b.example", "http://b.example/", None)]
    assert schedule.claim(10, now=t0 + 1) == []  # claimed: no other node takes them
    for visit in visits:
        schedule.confirm(visit)
    assert schedule.next_due("a.example") == pytest.approx(t0 + 24 * HOUR)
    schedule.matched("b.example", now=t0 + HOUR)  # a victim's picture found there
    assert schedule.next_due("b.example") == pytest.approx(t0 + 7 * HOUR)
    visit = schedule.claim(10, now=t0 + 7 * HOUR)
    assert [v.site for v in visit] == ["b.example"]
    schedule.confirm(visit[0])  # its next visit is again six hours on
    assert schedule.next_due("b.example") == pytest.approx(t0 + 13 * HOUR)
    visit = schedule.claim(10, now=t0 + 23 * HOUR)
    assert [v.site for v in visit] == ["b.example"]
    schedule.confirm(visit[0])
    assert [v.site for v in schedule.claim(10, now=t0 + 24 * HOUR)] == ["a.example"]


def test_a_claim_whose_node_died_runs_out_and_the_site_is_visited(client) -> None:
    schedule = SiteSchedule(client, claim_seconds=300)
    schedule.add("a.example", "http://a.example/", now=0.0)
    assert len(schedule.claim(5, now=10.0)) == 1  # the node dies before confirming
    assert schedule.due(now=200.0) == 0
    assert [v.site for v in schedule.claim(5, now=311.0)] == ["a.example"]


def test_crawling_a_site_now_brings_its_turn_forward_never_back(client) -> None:
    schedule = SiteSchedule(client)
    schedule.add("a.example", "http://a.example/", now=100.0)
    schedule.confirm(schedule.claim(1, now=100.0)[0])
    schedule.add("a.example", "http://a.example/new-start", now=200.0)
    assert schedule.next_due("a.example") == 200.0
    schedule.add("a.example", "http://a.example/", now=300.0)
    assert schedule.next_due("a.example") == 200.0
    schedule.remove("a.example")
    assert schedule.claim(5, now=10_000.0) == []


def _fingerprints(n: int, salt: str) -> list[str]:
    return [hashlib.sha1(f"{salt}{i}".encode()).hexdigest() for i in range(n)]


def test_the_filter_knows_a_visits_urls_and_the_next_visit_fetches_them_again(client) -> None:
    dupes = CycleBloomDupeFilter(client, first_layer=1000, error=0.001, cycle_hours=24)
    urls = _fingerprints(5000, "u")  # five times the first layer: the filter grows
    visit = "1000000.000"
    assert sum(dupes.seen_or_add(u, visit) for u in urls) <= 10  # false positives: 0.2%
    assert all(dupes.seen_or_add(u, visit) for u in urls)  # no URL is ever fetched twice
    assert int(client.hget(dupes.filter_key(visit), "layers")) == 3  # 1000 + 2000 + 4000
    later = "1003600.000"  # the site's next visit, an hour later in the same cycle
    assert sum(dupes.seen_or_add(u, later) for u in urls) <= 10
    used = sum(client.strlen(k) for k in client.scan_iter("haechi:dupefilter:{*}:[0-9]"))
    assert used <= layer_bytes(10_000, first=1000)
    ttl = client.ttl(dupes.filter_key(visit) + ":0")
    assert 24 * HOUR < ttl <= 48 * HOUR  # gone two cycles on, with nothing to clean up


def test_the_filter_costs_under_four_bytes_per_url_at_a_hundred_million() -> None:
    per_url = layer_bytes(100_000_000) / 100_000_000
    assert 2.0 < per_url < 3.5  # scrapy-redis's set: about 85


def test_a_call_repeated_after_a_lost_reply_loses_nothing(client) -> None:
    """Haechi's Redis clients resend a command whose connection dropped; a command that ran
    but whose reply was lost thus runs twice, and must answer the same."""
    from crawler.redis_queue import LeasedSiteQueue
    from tests.test_redis_queue import Probe, request

    dupes = CycleBloomDupeFilter(client, first_layer=1000)
    args = [12345, 6789, 1000, 0.0002, 60, 2, 0.8, "token-1"]
    key = dupes.filter_key("1.0")
    assert dupes._script(keys=[key], args=args) == 1
    assert dupes._script(keys=[key], args=args) == 1  # the repeat: still new, not dropped
    assert dupes._script(keys=[key], args=[*args[:-1], "token-2"]) == 0  # another call: seen

    queue = LeasedSiteQueue(client, Probe(), "probe:requests")
    queue.push(request("a.example", "one"))
    queue.push(request("b.example", "two"))
    pop_args = [time.time(), 0.0, 60, "pop-token"]
    first = queue._pop(keys=[queue.key], args=pop_args)
    assert queue._pop(keys=[queue.key], args=pop_args) == first  # the same lease again
    assert len(queue) == 1

    schedule = SiteSchedule(client)
    schedule.add("a.example", "http://a.example/", now=0.0)
    claim_args = [10.0, 300, 5, "claim-token"]
    claimed = schedule._claim(keys=["haechi:schedule", "haechi:schedule:sites"],
                              args=claim_args)
    assert claimed and schedule._claim(keys=["haechi:schedule", "haechi:schedule:sites"],
                                       args=claim_args) == claimed
