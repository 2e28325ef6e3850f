"""One fetched file, one record (FetchRecord) from the spider to the match event; one matching
step for the embedded crawl and the cluster's workers; the re-crawl feedback as a sink."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest

from crawler.items import FetchedMedia, FetchRecord
from crawler.records import CrawlRecords, fetch_record
from crawler.schedule import ScheduleFeedbackSink
from engines.objects import media_key
from matcher.bank import VictimBank
from matcher.events import MatchEvent, load_sinks
from matcher.hasher import ImageHasher
from matcher.match import Match, Matcher
from matcher.seen import SeenIndex
from matcher.step import MatchStep, MemoryHashCache, decode_hashes, encode_hashes
from testkit.synthetic import encode, synthetic_picture
from tests.test_cluster import redis_env  # noqa: F401 (fixture)

PICTURE = encode(synthetic_picture(seed=41))
SHA = hashlib.sha256(PICTURE).hexdigest()
# A match task's argument as crawler nodes of the last release send it (and the cluster tests
# and benchmark still do): the wire format FetchRecord keeps.
WIRE = {"url": "http://w.example/a.jpg", "page_url": "http://w.example/", "site": "w.example",
        "fetched_at": "2026-11-27T09:00:00+00:00", "status": 200, "media_type": "image/jpeg",
        "kind": "image", "sha256": SHA, "size": len(PICTURE),
        "headers": {"Content-Type": ["image/jpeg"]}, "server_ip": "127.0.0.1",
        "store_key": media_key(SHA)}
MATCH = Match("V", "pdq", 3, "full")


def test_the_task_wire_format_is_the_fetch_records_json() -> None:
    record = FetchRecord.from_json(WIRE)
    assert record.fetched_at == dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC)
    assert record.to_json() == WIRE
    # The spider's item is the same record with the bytes, which never go into the JSON.
    item = FetchedMedia(**{**vars(record), "body": PICTURE})
    assert item.to_json() == WIRE
    # A field a newer node adds is passed over, not refused.
    assert FetchRecord.from_json({**WIRE, "added_later": 1}) == record


def test_a_fetched_files_row_reads_back_as_the_record_written(haechi_home) -> None:
    record = FetchRecord.from_json(WIRE)
    records = CrawlRecords.open()
    records.record_files([FetchedMedia(**vars(record), body=PICTURE)])
    (row,) = records.files(SHA)
    assert fetch_record(row) == record
    now = dt.datetime.now(dt.UTC)
    assert MatchEvent.of_fetch(row, MATCH, now) == MatchEvent.of_fetch(record, MATCH, now)


def test_cached_hashes_are_the_hashes(haechi_home) -> None:
    frames = ImageHasher().media_hashes(PICTURE)
    again = decode_hashes(encode_hashes(frames))
    assert [(f.second, f.hashes.sha256, {k: v.tobytes() for k, v in f.hashes.codes.items()})
            for f in again] == [
        (f.second, f.hashes.sha256, {k: v.tobytes() for k, v in f.hashes.codes.items()})
        for f in frames]
    assert decode_hashes(encode_hashes("not an image")) == "not an image"


def test_the_memory_cache_forgets_the_least_recently_used() -> None:
    cache = MemoryHashCache(2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # now b is the least recently used
    cache.put("c", "3")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("1", None, "3")


class ListSink:
    def __init__(self) -> None:
        self.delivered: list[list[MatchEvent]] = []

    def deliver(self, events: list[MatchEvent]) -> None:
        self.delivered.append(events)


def test_the_step_records_new_hashes_and_delivers_each_files_events(haechi_home) -> None:
    bank = VictimBank.open()
    hasher = ImageHasher()
    bank.add("V", hasher.registration_hashes(PICTURE), "test")
    seen = SeenIndex.open()
    sink = ListSink()
    step = MatchStep(Matcher(bank, hasher), seen, MemoryHashCache(10), [sink])
    record = FetchRecord.from_json(WIRE)
    assert step.known(SHA) is None
    frames = hasher.media_hashes(PICTURE)
    step.learn(SHA, frames)
    assert step.known(SHA) is frames
    upright = np.frombuffer(frames[0].hashes.seen_code, np.uint8).reshape(1, -1)
    assert seen.search(upright) == {SHA: 0}  # for the victims who register later
    events = step.match(record, frames)
    assert {e.victim for e in events} == {"V"} and sink.delivered == [events]
    assert events[0].image_url == record.url and events[0].store_key == record.store_key
    step.learn("0" * 64, "unreadable")
    assert step.match(record, step.known("0" * 64)) == [] and len(sink.delivered) == 1


class RecordingSchedule:
    def __init__(self) -> None:
        self.matched_sites: list[str] = []

    def matched(self, site: str) -> None:
        self.matched_sites.append(site)


def test_the_schedule_hears_of_a_match_once_per_site_and_delivery() -> None:
    schedule = RecordingSchedule()
    sink = ScheduleFeedbackSink(schedule)  # type: ignore[arg-type]
    now = dt.datetime.now(dt.UTC)
    event = MatchEvent.of_fetch(FetchRecord.from_json(WIRE), MATCH, now)
    sink.deliver([event, event])
    assert schedule.matched_sites == ["w.example"]


def test_workers_take_their_sinks_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from crawler.run import crawl_settings
    from matcher.streams import RedisStreamSink
    from matcher.tasks import WORKER_SINKS

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/11")  # no command is sent
    sinks = load_sinks(crawl_settings({"MATCH_EVENT_SINKS": WORKER_SINKS}))
    assert [type(s) for s in sinks] == [RedisStreamSink, ScheduleFeedbackSink]
    monkeypatch.setenv("HAECHI_SCRAPY_MATCH_EVENT_SINKS", '["matcher.streams.RedisStreamSink"]')
    sinks = load_sinks(crawl_settings({"MATCH_EVENT_SINKS": WORKER_SINKS}))
    assert [type(s) for s in sinks] == [RedisStreamSink]


def test_a_workers_match_reaches_the_stream_and_the_schedule(redis_env, monkeypatch) -> None:  # noqa: F811
    from crawler.schedule import MATCHED_KEY
    from engines.objects import open_store
    from matcher import tasks
    from matcher.streams import STREAM

    monkeypatch.setattr(tasks, "_state", None)  # a worker process of this test's own
    VictimBank.open().add("V", ImageHasher().registration_hashes(PICTURE), "test")
    open_store().put(media_key(SHA), PICTURE)
    emitted = tasks.match_stored_file(WIRE)  # one event per algorithm that matched
    assert emitted and redis_env.xlen(STREAM) == emitted
    assert redis_env.hget(MATCHED_KEY, "w.example") is not None
    assert tasks.match_stored_file(WIRE) == 0  # a (file, URL) pair is matched once
