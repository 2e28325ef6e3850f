"""One fetched file, one record (FetchRecord) from the spider to the match event; one matching
step for the embedded crawl and the cluster's workers."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np

from crawler.items import FetchedMedia, FetchRecord
from crawler.records import CrawlRecords, fetch_record
from engines.objects import media_key
from matcher.bank import VictimBank
from matcher.events import MatchEvent
from matcher.hasher import ImageHasher
from matcher.match import Match, Matcher
from matcher.seen import SeenIndex
from matcher.step import MatchStep, MemoryHashCache, decode_hashes, encode_hashes
from testkit.synthetic import encode, synthetic_picture

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

