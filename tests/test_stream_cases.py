"""A case found in a streamed video names its stream: a segment's fetch record carries the
manifest URL and the segment's start, through the crawler's table, the match task's JSON, the
match step and the event stream, to the case, its notice (every language), its evidence and the
review page, which name the manifest, the segment and the time in the whole video (H:MM:SS).
A file that is no segment reads as it always did. And the migration that adds the columns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest
import sqlalchemy as sa
from alembic import command
from PIL import Image

from crawler.items import FetchedMedia, FetchRecord
from crawler.records import CrawlRecords, UnsafeValue, _file_row, fetch_record
from engines.db import alembic_config
from engines.fetch import Fetched
from engines.mail import SmtpServer
from engines.objects import LocalStore, media_key
from matcher.bank import VictimBank
from matcher.events import MatchEvent, video_second
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from matcher.rescan import rescan
from matcher.seen import SeenIndex
from matcher.step import MatchStep, MemoryHashCache
from matcher.streams import RedisStreamSink, StreamConsumer
from takedown.audit import entries_for_case
from takedown.cases import CaseStore, checked_event
from takedown.consumer import GROUP, consume
from takedown.database import takedown_engine
from takedown.notices import (
    LANGUAGES,
    Reporter,
    approve_notice,
    notice_for_case,
    notice_json,
    render,
)
from takedown.references import video_time
from takedown.review.previews import case_picture
from takedown.sending import NoticeSender
from takedown.tracking import Tracker
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb.server import free_port
from tests.takedown_helpers import START, FakeClock, event, site_facts, start_smtp
from tests.test_migrations import fill, new_database, read_rows, schema  # noqa: F401 (fixture)
from tests.test_review_security import account, client, log_in, review_app

SITE = "tube.example"
PAGE = f"https://{SITE}/watch/8812"
MANIFEST = f"https://cdn.{SITE}/hls/8812/master.m3u8"
SEGMENT = f"https://cdn.{SITE}/hls/8812/360p/seg-00377.ts"
# The segment begins 12 min 34 s into the video; the victim is on screen from its first second
# to its second, so the match is at 0:12:35 of the video.
SEGMENT_START = 754.0
VICTIM_IN_SEGMENT = (1.0, 2.0)
TIME = "0:12:35"
FPS = 5
SIZE = (192, 144)
VICTIM = synthetic_picture(41)


def ts_segment(scenes: list[tuple[Image.Image, float]], first_second: float = 0.0) -> bytes:
    """A tiny MPEG-TS segment of `scenes` (picture, seconds), its timestamps starting at
    `first_second`: 0 for a segment made as its own stream, the segment's start for one cut from
    a whole video's stream (where a packager leaves them)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        number = round(first_second * FPS)
        for picture, seconds in scenes:
            image = picture.convert("RGB").resize(SIZE)
            for _ in range(round(seconds * FPS)):
                frame = av.VideoFrame.from_image(image)
                frame.pts, frame.time_base = number, Fraction(1, FPS)
                number += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def victim_segment(first_second: float = 0.0) -> bytes:
    before, after = VICTIM_IN_SEGMENT
    return ts_segment([(synthetic_picture(40), before), (VICTIM, after - before),
                       (synthetic_picture(42), 1.0)], first_second)


def fetched(body: bytes, url: str = SEGMENT, **stream: object) -> FetchedMedia:
    sha256 = hashlib.sha256(body).hexdigest()
    media_type = "video/mp2t" if url.endswith(".ts") else (
        "video/mp4" if url.endswith(".mp4") else "image/png")
    return FetchedMedia(
        url=url, page_url=PAGE, site=SITE, fetched_at=START, status=200,
        media_type=media_type, kind=media_type.partition("/")[0], sha256=sha256,
        size=len(body), headers={"Content-Type": [media_type]}, server_ip="127.0.0.1",
        store_key=media_key(sha256), body=body, **stream)  # type: ignore[arg-type]


@pytest.fixture
def registered(bank: VictimBank) -> VictimBank:
    bank.add("V-stream", ImageHasher().registration_hashes(encode(VICTIM)), "test")
    return bank


@pytest.fixture
def cases(haechi_home: Path) -> CaseStore:
    return CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"),
                     clock=FakeClock())


def crawled(item: FetchedMedia, haechi_home: Path) -> FetchRecord:
    """What the crawl makes of `item` in cluster mode: the bytes stored, the fetched_files row
    written, and the record sent to a worker as the match task's JSON (read back there)."""
    LocalStore(haechi_home / "objects").put(item.store_key or "", item.body or b"")
    records = CrawlRecords.open()
    records.record_files([item])
    (row,) = records.files(item.sha256)
    assert fetch_record(row) == FetchRecord.from_json(item.to_json())
    return FetchRecord.from_json(json.loads(json.dumps(item.to_json())))


def matched_into_cases(record: FetchRecord, body: bytes, registered: VictimBank,
                       stream, cases: CaseStore) -> list[MatchEvent]:
    """The worker's match step onto the event stream, then the takedown consumer."""
    hasher = ImageHasher()
    step = MatchStep(Matcher(registered, hasher), SeenIndex.open(), MemoryHashCache(10),
                     [RedisStreamSink(stream)])
    step.learn(record.sha256, hasher.media_hashes(body))
    events = step.match(record, step.known(record.sha256))
    report = consume(StreamConsumer(stream, GROUP, "stream-cases"), cases, once=True,
                     block_ms=50)
    assert report.cases_opened == 1 and report.dead_lettered == 0
    return events


@pytest.mark.parametrize("first_second", [0.0, SEGMENT_START],
                         ids=["own-timeline", "timeline-of-the-whole-video"])
def test_a_segment_becomes_a_case_naming_the_manifest_the_segment_and_the_time(
        first_second: float, registered, stream, cases, haechi_home, monkeypatch) -> None:
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")
    site_facts(cases.engine, SITE, language="en")
    body = victim_segment(first_second)
    item = fetched(body, manifest_url=MANIFEST, segment_start=SEGMENT_START)
    wire = item.to_json()
    assert (wire["manifest_url"], wire["segment_start"]) == (MANIFEST, SEGMENT_START)
    events = matched_into_cases(crawled(item, haechi_home), body, registered, stream, cases)

    # Every event names the stream, and its second is the whole video's: the segment's start
    # plus the frame's place in the segment, whatever the segment's own timestamps say.
    start, end = (SEGMENT_START + s for s in VICTIM_IN_SEGMENT)
    assert events and all(e.manifest_url == MANIFEST and e.segment_start == SEGMENT_START
                          and e.image_url == SEGMENT and start <= e.second < end
                          for e in events), events
    assert MatchEvent.from_json(events[0].to_json()) == events[0]

    (case,) = cases.list()
    full = cases.get(case["id"])
    assert (full["manifest_url"], full["segment_start"]) == (MANIFEST, SEGMENT_START)
    assert start <= full["second"] < end
    assert full["stream"] == {"manifest_url": MANIFEST, "segment_url": SEGMENT,
                              "segment_start": SEGMENT_START, "time": TIME}

    notice = notice_json(cases.engine, full["notice_id"])
    body_text = notice["body"]
    assert SEGMENT in body_text and MANIFEST in body_text
    assert (f"   video stream: {MANIFEST} (the address above is one segment of it; the image "
            f"is at {TIME} of the video)") in body_text
    assert " s of the video)" not in body_text  # the second within the segment is not given
    (report,) = notice["xarf"]
    assert report["url"] == SEGMENT and MANIFEST in report["description"]
    assert TIME in report["description"]

    # The evidence: the case's opening audit entry carries the stream, and so does case.json.
    (opening, *_) = entries_for_case(cases.engine, case["id"])
    assert opening["detail"]["event"]["manifest_url"] == MANIFEST
    assert opening["detail"]["event"]["segment_start"] == SEGMENT_START

    # The review page's preview is the segment's frame at the matched second: the victim.
    picture = case_picture(cases.store, full)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    assert {m.victim for m in Matcher(registered).match_bytes(buffer.getvalue())} == {
        "V-stream"}


def test_the_review_page_names_the_stream_the_segment_and_the_time(
        registered, stream, cases, haechi_home) -> None:
    body = victim_segment(SEGMENT_START)
    item = fetched(body, manifest_url=MANIFEST, segment_start=SEGMENT_START)
    matched_into_cases(crawled(item, haechi_home), body, registered, stream, cases)
    (case,) = cases.list()
    account(cases, "rita", role="reviewer")
    browser = client(review_app(cases))
    log_in(browser, "rita")
    page = browser.get(f"/cases/{case['id']}").text
    assert re.search(r'id="stream">\s*' + re.escape(MANIFEST) + r"\s*<", page)
    assert re.search(r'id="segment">\s*' + re.escape(SEGMENT), page)
    assert f'<span id="video-time">{TIME}</span>' in page
    assert browser.get(f"/cases/{case['id']}/preview").headers["content-type"] == "image/jpeg"


def test_files_that_are_no_segment_read_as_before(registered, stream, cases,
                                                  haechi_home) -> None:
    """An image and a plain video: no stream fields in the task's JSON or the event's, no stream
    in the case, and the notice's items as they always were (the video's second within it)."""
    image = fetched(encode(VICTIM), url=f"https://{SITE}/img/1.png")
    assert "manifest_url" not in image.to_json() and "segment_start" not in image.to_json()
    events = matched_into_cases(crawled(image, haechi_home), image.body or b"", registered,
                                stream, cases)
    assert all(e.manifest_url is None and e.segment_start is None and e.second is None
               for e in events)
    assert not {"manifest_url", "segment_start"} & set(events[0].to_json())
    video = victim_segment()  # a video file of its own, at a URL of its own: no segment
    clip = fetched(video, url=f"https://{SITE}/clips/2.ts")
    events = matched_into_cases(crawled(clip, haechi_home), video, registered, stream, cases)
    (second,) = {m.second for m in Matcher(registered).match_bytes(video)}
    assert second is not None
    assert all(e.manifest_url is None and e.second == second for e in events), events

    opened = cases.list()
    assert len(opened) == 2 and not any("stream" in cases.get(c["id"]) for c in opened)
    notice = notice_json(cases.engine, cases.get(opened[0]["id"])["notice_id"])
    assert "stream" not in notice["body"] and TIME not in notice["body"]
    sha = clip.sha256
    assert re.search(re.escape(f"2. https://{SITE}/clips/2.ts\n   shown on: {PAGE}\n") + r"   "
                     r"detected: [0-9: -]+ UTC" + re.escape(f" (at {second} s of the video)\n"
                                                            f"   SHA-256: {sha}\n"),
                     notice["body"])
    assert all("segment of the video stream" not in r["description"] for r in notice["xarf"])


def notice_rows() -> list[dict]:
    """Cases as the table holds them: an image, a plain video, and a segment of a stream."""
    common = {"page_url": PAGE, "detected_at": START, "algorithm": "pdq", "distance": 6,
              "segment_start": None, "manifest_url": None}
    return [
        {**common, "id": 1, "image_url": f"https://{SITE}/img/1.png", "sha256": "1" * 64,
         "second": None},
        {**common, "id": 2, "image_url": f"https://{SITE}/clips/2.mp4", "sha256": "2" * 64,
         "second": 2.0},
        {**common, "id": 3, "image_url": SEGMENT, "sha256": "3" * 64, "second": 755.4,
         "segment_start": SEGMENT_START, "manifest_url": MANIFEST},
    ]


def items_of(body: str) -> list[str]:
    """The notice's numbered items, each with its indented lines."""
    return re.findall(r"^\d+\. .*?(?=^\d+\. |^\S|\Z)", body, re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_names_the_stream_and_the_time_and_nothing_else_changes(
        language: str) -> None:
    rows = notice_rows()
    kwargs = {"site": SITE, "reporter": Reporter("Org", "org@support.example"), "legal": "ncii",
              "reference": "HAECHI-000001", "deadline": START + dt.timedelta(hours=48)}
    _, body = render(language, rows=rows, **kwargs)
    image, video, segment = items_of(body)
    # The segment's item: its URL, then a line naming the manifest and the time, and not the
    # seconds of the video the other kind of item gives.
    assert segment.startswith(f"3. {SEGMENT}\n")
    (stream_line,) = [line for line in segment.splitlines() if MANIFEST in line]
    assert TIME in stream_line and "755.4" not in segment
    assert len(segment.splitlines()) == len(video.splitlines()) + 1
    # The others: as each renders without any segment in the notice.
    _, alone = render(language, rows=rows[:2], **kwargs)
    assert items_of(alone) == [image, video]
    assert MANIFEST not in image + video and TIME not in image + video
    assert "2.0" in video and "2.0" not in image


def test_the_time_in_the_video_and_the_second_of_a_segments_frame() -> None:
    assert [video_time(s) for s in (0, 59.9, 754.6, 3600, 36_000 + 61)] == [
        "0:00:00", "0:00:59", "0:12:34", "1:00:00", "10:01:01"]
    assert video_second(None, 12.5) == 12.5 and video_second(None, None) is None
    assert video_second(60.0, 2.0) == 62.0  # a segment on its own timeline
    assert video_second(60.0, 63.0, origin=61.4) == 61.6  # one on the whole video's
    assert video_second(60.0, None) == 60.0  # the whole segment (its bytes) matched


def test_the_stream_columns_are_added_and_taken_away_keeping_every_row(
        new_database: Callable[[], str]) -> None:  # noqa: F811
    """Revision 0007 on a database of 0006 with rows (every table filled): the columns come,
    NULL in every earlier row, every other value kept; a segment's values are stored; a
    downgrade takes them away again, keeping the rows."""
    url = new_database()
    config = alembic_config()

    def migrate(step: Callable, revision: str) -> None:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            step(config, revision)
        engine.dispose()

    migrate(command.upgrade, "0006")
    fill(url)
    before, shape = read_rows(url), schema(url)
    migrate(command.upgrade, "0007")
    after = read_rows(url)
    for table in ("fetched_files", "cases"):
        assert [{k: v for k, v in row.items() if k not in ("manifest_url", "segment_start")}
                for row in after[table]] == before[table]
        assert {(row["manifest_url"], row["segment_start"]) for row in after[table]} == {
            (None, None)}

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE fetched_files SET manifest_url = :m, segment_start = :s "
                             "WHERE id = (SELECT MIN(id) FROM fetched_files)"),
                     {"m": MANIFEST, "s": SEGMENT_START})
        stored = conn.execute(sa.text("SELECT manifest_url, segment_start FROM fetched_files "
                                      "ORDER BY id")).all()
    engine.dispose()
    assert [tuple(row) for row in stored] == [(MANIFEST, SEGMENT_START), (None, None)]

    migrate(command.downgrade, "0006")
    assert read_rows(url) == before and schema(url) == shape


def test_a_victim_registered_later_is_found_in_a_crawled_segment_with_its_stream(
        bank: VictimBank, haechi_home: Path) -> None:
    """Re-scan (matcher/rescan.py) reads the fetched_files rows: the segment's event names the
    stream and the second of the whole video, as the crawl's own would have."""
    body = victim_segment(SEGMENT_START)
    item = fetched(body, manifest_url=MANIFEST, segment_start=SEGMENT_START)
    crawled(item, haechi_home)
    hasher = ImageHasher()
    seen = SeenIndex.open()
    seen.record(item.sha256, hasher.media_hashes(body))  # hashed at crawl time, no victim yet
    picture = encode(VICTIM)
    bank.add("V-later", hasher.registration_hashes(picture), "test")
    events = rescan("V-later", [picture], bank, seen, LocalStore(haechi_home / "objects"),
                    CrawlRecords.open())
    start, end = (SEGMENT_START + s for s in VICTIM_IN_SEGMENT)
    assert [(e.image_url, e.manifest_url, e.segment_start) for e in events] == [
        (SEGMENT, MANIFEST, SEGMENT_START)]
    assert start <= events[0].second < end


def test_a_streams_values_are_checked_like_every_other_value_of_an_event(cases) -> None:
    """The stream's fields come from the site and, in cluster mode, from a stream anyone with
    Redis access can write to: a manifest URL that is no URL is dropped (the segment's URL still
    names the file), a start that is no second refuses the event; the fetched_files row drops
    either."""
    segment = dataclasses.replace(event(SITE, 1), image_url=SEGMENT, second=755.4,
                                  manifest_url=MANIFEST, segment_start=SEGMENT_START)
    assert checked_event(segment) == segment
    assert checked_event(dataclasses.replace(
        segment, manifest_url="javascript:alert(1)")).manifest_url is None
    for start in (float("nan"), -1.0, "754", 1e300):
        with pytest.raises(UnsafeValue, match="segment_start"):
            checked_event(dataclasses.replace(segment, segment_start=start))
    row = _file_row(fetched(b"x", manifest_url="file:///etc/passwd", segment_start=-3.0))
    assert (row["manifest_url"], row["segment_start"]) == (None, None)


def test_a_sent_segment_is_called_removed_only_when_its_host_says_it_is_gone(
        cases, monkeypatch) -> None:
    """The tracker fetches a segment again alone: a DASH segment without its initialisation
    segment, or an AES-128 one still encrypted, is other bytes that match nothing although the
    video is online. That is no removal; a 404 is."""
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")
    segment = dataclasses.replace(event(SITE, 1), image_url=SEGMENT, second=755.4,
                                  manifest_url=MANIFEST, segment_start=SEGMENT_START)
    plain = event(SITE, 2)
    opened = cases.open_cases([segment, plain])
    approve_notice(cases.engine, notice_for_case(cases.engine, opened[0]), "reviewer-1",
                   cases.clock())
    controller, _ = start_smtp(free_port())
    answers = {SEGMENT: Fetched(200, b"moof...mdat, no init"),
               plain.image_url: Fetched(200, b"other")}
    try:
        sender = NoticeSender(cases.engine, SmtpServer("127.0.0.1", controller.port),
                              clock=cases.clock, backoff=0)
        sender.send_approved()
        tracker = Tracker(cases.engine, lambda body, victim: False, sender, cases.clock,
                          answers.__getitem__)
        assert tracker.run().removed == [opened[1]]  # the plain file: replaced, so removed
        assert cases.get(opened[0])["status"] == "sent"
        answers[SEGMENT] = Fetched(404)
        assert tracker.run().removed == [opened[0]]
    finally:
        controller.stop()
