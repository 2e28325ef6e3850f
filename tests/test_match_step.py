"""One fetched file, one record (FetchRecord) from the spider to the match event."""

from __future__ import annotations

import datetime as dt
import hashlib

from crawler.items import FetchedMedia, FetchRecord
from crawler.records import CrawlRecords, fetch_record
from engines.objects import media_key
from matcher.events import MatchEvent
from matcher.match import Match
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

