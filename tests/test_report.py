"""`haechi report` for people: durations in hours and days, cases by status, the notices past
their deadline, and empty states that read as empty rather than as "0%"; the JSON keeps its
seconds fields for programs. Cases are opened, sent over a real SMTP server and tracked to
removal with a fake clock, as in production; the removal times beside the hotlines' figures
(censored shares, p90, the long tail, per rung) are checked on cases written straight into
the tables with chosen timestamps, so that every figure is known exactly."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engines.mail import SmtpServer
from engines.objects import LocalStore
from takedown import audit
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.notices import approve_notice, notice_for_case
from takedown.report import build_report, human_duration, render_html, render_text
from takedown.schema import cases, escalations, notices
from takedown.sending import NoticeSender
from takedown.tracking import Fetched, Tracker
from testkit.testweb.server import free_port
from tests.takedown_helpers import START, FakeClock, event, site_facts, start_smtp

# A zero percentage, not the end of "100%".
ZERO_PERCENT = re.compile(r"(?<![\d.])0%")
# The keys `haechi report --json` has always had; programs read them.
SUMMARY_KEYS = {"cases", "notified", "removed", "removal_rate", "median_detection_to_notice_s",
                "median_notice_to_removal_s", "by_status"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(haechi_home: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> CaseStore:
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")
    return CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"), clock=clock)


@pytest.fixture
def tracked(store: CaseStore, clock: FakeClock) -> dict[str, int]:
    """Four hosts at START + 49 h: fast.example notified after 1 h and removed 48 h later;
    slow.example notified after 1 h and still online past its 48 h deadline;
    later.example opened and notified at 40 h, within its deadline; waiting.example drafted."""
    controller, _mailbox = start_smtp(free_port())
    try:
        sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port),
                              clock=clock, backoff=0)
        opened = {}
        for site in ("fast.example", "slow.example", "waiting.example"):
            site_facts(store.engine, site, contacts=[f"mailto:abuse@{site}"])
            opened[site] = store.open_cases([event(site, 1)])[0]
        clock.advance(hours=1)
        for site in ("fast.example", "slow.example"):
            approve_notice(store.engine, notice_for_case(store.engine, opened[site]), "alice",
                           clock())
        sender.send_approved()
        clock.advance(hours=39)
        site_facts(store.engine, "later.example", contacts=["mailto:abuse@later.example"])
        opened["later.example"] = store.open_cases([event("later.example", 1, at=clock())])[0]
        approve_notice(store.engine, notice_for_case(store.engine, opened["later.example"]),
                       "alice", clock())
        sender.send_approved()
        clock.advance(hours=9)
        gone = "http://fast.example/img/1.jpg"
        tracker = Tracker(store.engine, lambda body, victim: True, sender, clock,
                          lambda url: Fetched(404) if url == gone else Fetched(200, b"jpeg"))
        assert tracker.run().removed == [opened["fast.example"]]
    finally:
        controller.stop()
    return opened


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (42, "42 s"), (59.4, "59 s"), (59.6, "1 min"), (12 * 60, "12 min"),
    (3600, "1 h"), (5400, "1.5 h"), (5 * 3600, "5 h"), (23 * 3600, "23 h"),
    (24 * 3600, "1 day (24 h)"), (36 * 3600, "1.5 days (36 h)"), (48 * 3600, "2 days (48 h)"),
    (10 * 86400, "10 days"),
])
def test_durations_read_in_minutes_hours_and_days(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_report_shows_hours_days_statuses_and_the_notice_past_its_deadline(
        store: CaseStore, clock: FakeClock, tracked: dict[str, int]) -> None:
    report = build_report(store.engine, now=clock())
    # Machine-readable: the old keys, in seconds, beside the new list.
    assert set(report["overall"]) >= SUMMARY_KEYS
    assert all(set(h) >= SUMMARY_KEYS for h in report["hosts"].values())
    assert report["hosts"]["fast.example"]["median_notice_to_removal_s"] == 48 * 3600
    assert report["overall"]["median_detection_to_notice_s"] == 3600
    assert report["overall"]["by_status"] == {"drafted": 1, "removed": 1, "sent": 2}
    slow_notice = notice_for_case(store.engine, tracked["slow.example"])
    assert report["notices_past_deadline"] == [{
        "notice": slow_notice, "site": "slow.example", "to": "abuse@slow.example",
        "sent_at": (START + dt.timedelta(hours=1)).isoformat(),
        "deadline": (START + dt.timedelta(hours=48)).isoformat(),
        "overdue_s": 3600.0, "cases_online": [tracked["slow.example"]],
    }]

    html = render_html(report)
    assert "2 days (48 h)" in html
    assert "2026-11-29 10:00 UTC" in html  # generated at START + 49 h
    hosts = {m[0]: m[1] for m in re.findall(r"<tr><td>([\w.]+)</td>(.*?)</tr>", html, re.S)}
    assert "no notice sent yet" in hosts["waiting.example"]
    assert "nothing removed yet" in hosts["slow.example"]
    assert "1 of 1 notified (100%)" in hosts["fast.example"]
    past = html.split('id="past-deadline"')[1].split("</table>")[0]
    assert "slow.example" in past and "abuse@slow.example" in past
    assert "fast.example" not in past and "later.example" not in past
    assert f"#{tracked['slow.example']}" in past
    assert "n/a" not in html and not ZERO_PERCENT.search(html)
    # Bars only where there is a figure: one removal-rate bar, one time bar (fast.example).
    assert html.count("<rect") == 2
    statuses = html.split('id="statuses"')[1].split("</table>")[0]
    assert "notice sent, still online" in statuses and "taken down" in statuses

    text = render_text(report)
    assert "Median time from first notice to removal: 2 days (48 h)" in text
    assert "Median time from detection to first notice: 1 h" in text
    assert f"notice {slow_notice} to abuse@slow.example (slow.example)" in text
    assert "passed 1 h ago" in text
    assert "waiting.example: 1 case (1 drafted)" in text
    assert "slow.example: 1 case (1 sent)" in text and "1 notice past deadline" in text
    assert "no notice sent yet" in text
    assert "n/a" not in text and " s." not in text


def test_an_empty_database_reads_as_empty(store: CaseStore, clock: FakeClock) -> None:
    report = build_report(store.engine, now=clock())
    assert report["overall"]["cases"] == 0 and report["overall"]["removal_rate"] is None
    assert report["notices_past_deadline"] == []
    html = render_html(report)
    assert "No cases yet" in html
    assert "0%" not in html and "n/a" not in html and "<rect" not in html
    assert "<svg" not in html
    assert "No cases yet" in render_text(report)


def test_drafts_only_say_no_notice_sent_yet_without_bars(store: CaseStore,
                                                         clock: FakeClock) -> None:
    store.open_cases([event("a.example", 1), event("a.example", 2), event("b.example", 1)])
    clock.advance(days=5)  # the drafts' deadlines have passed, but nothing was sent
    report = build_report(store.engine, now=clock())
    assert report["notices_past_deadline"] == []
    html = render_html(report)
    # Project Arachnid's published 10% is beside Haechi's figures; no figure of Haechi's is 0%.
    assert not ZERO_PERCENT.search(html) and "n/a" not in html
    assert "<rect" not in html and "<svg" not in html
    assert html.count("no notice sent yet") >= 2 * 3  # each host: rate and both times
    assert "No notice sent yet." in html
    text = render_text(report)
    assert "Removed after notice: no notice sent yet" in text
    assert "Past their deadline: no notice sent yet." in text
    assert "a.example: 2 cases (2 drafted)" in text


DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
# "Now" in the constructed cases: 60 days after START, the first notices' day.
NOW = START + 60 * DAY


def put_case(engine: Engine, site: str, sent: dt.datetime | None, *,
             removed_after: dt.timedelta | None = None, status: str | None = None,
             climbs: dict[str, dt.datetime] | None = None,
             drafted_after: dt.timedelta | None = None) -> int:
    """One case written straight into the tables: detected an hour before its first notice
    (`sent`), removed `removed_after` that notice, with an escalation row and notice per
    rung of `climbs` sent at the time given, and its move to "drafted" in the audit log."""
    detected = (sent or START) - HOUR
    removed = sent + removed_after if sent and removed_after is not None else None
    status = status or ("removed" if removed else "sent" if sent else "drafted")
    with engine.begin() as conn:
        number = conn.execute(cases.insert(), [{
            "victim": "V1", "image_url": f"http://{site}/img/{detected.timestamp()}.jpg",
            "page_url": f"http://{site}/gallery", "site": site, "algorithm": "pdq",
            "distance": 6, "sha256": "0" * 64, "media_type": "image/jpeg", "headers": {},
            "fetched_at": detected, "detected_at": detected, "status": status,
            "status_at": removed or sent or detected, "signals": {}, "first_sent_at": sent,
            "last_sent_at": sent, "sent_count": 1 if sent else 0, "removed_at": removed,
        }]).inserted_primary_key[0]
        for rung, at in (climbs or {}).items():
            notice = conn.execute(notices.insert(), [{
                "site": site, "language": "en", "recipient": f"abuse@{rung}.example",
                "recipient_source": "rdap", "subject": "s", "body": "b", "edited": False,
                "legal_basis": "ncii", "status": "sent", "created_at": at, "updated_at": at,
                "sent_at": at, "attempts": 1, "rung": rung,
            }]).inserted_primary_key[0]
            conn.execute(escalations.insert(), [{
                "case_id": number, "rung": rung, "notice_id": notice, "due_at": at - HOUR,
                "drafted_at": at - HOUR, "sent_at": at}])
        if drafted_after is not None:
            audit.append(conn, actor="system", action="status:drafted",
                         at=detected + drafted_after, case_id=number)
    return int(number)


@pytest.fixture
def field(store: CaseStore) -> dict[str, int]:
    """Ten cases on two hosts, seen 60 days after START (hours are after the first notice):

    a.example: c1 removed after 24 h, c2 after exactly 60 h (2.5 days), c3 after 61 h; c5,
    notified on day 5, climbed to host on day 8, removed on day 50 (45 days after notice,
    42 days after the host's), and the registrar's notice went out on day 52, after the
    removal; c4, notified on day 0, climbed to host (day 3) and registrar (day 10) and is
    still online; c8 was notified and then rejected as a false match.
    b.example: c6 notified yesterday and still online, c7 notified 2 days ago and removed
    12 h later (then re-uploaded), c10 notified on day 20, climbed to host on day 22 and
    removed 24 h after that; c9 is a draft never sent.
    """
    engine = store.engine
    ids = {"c1": put_case(engine, "a.example", START, removed_after=24 * HOUR,
                          drafted_after=4 * dt.timedelta(minutes=1)),
           "c2": put_case(engine, "a.example", START, removed_after=60 * HOUR,
                          drafted_after=8 * dt.timedelta(minutes=1)),
           "c3": put_case(engine, "a.example", START, removed_after=61 * HOUR),
           # Written before c4, so that the long tail's order is the notices', not the ids'.
           "c5": put_case(engine, "a.example", START + 5 * DAY, removed_after=45 * DAY,
                          climbs={"host": START + 8 * DAY, "registrar": START + 52 * DAY}),
           "c4": put_case(engine, "a.example", START, status="escalated",
                          climbs={"host": START + 3 * DAY, "registrar": START + 10 * DAY}),
           "c8": put_case(engine, "a.example", START, status="rejected"),
           "c6": put_case(engine, "b.example", NOW - DAY),
           "c7": put_case(engine, "b.example", NOW - 2 * DAY, removed_after=12 * HOUR,
                          status="reuploaded"),
           "c9": put_case(engine, "b.example", None),
           "c10": put_case(engine, "b.example", START + 20 * DAY, removed_after=3 * DAY,
                           climbs={"host": START + 22 * DAY})}
    return ids


def test_removal_times_censor_cases_still_online(store: CaseStore,
                                                 field: dict[str, int]) -> None:
    report = build_report(store.engine, now=NOW)
    times = report["overall"]["removal_times"]
    # Removed after notice: 12, 24, 60, 61, 72 h and 45 days; c4 and c6 still online.
    assert {k: times["from_notice"][k] for k in ("removed", "still_online", "median_s",
                                                 "p90_s")} == {
        "removed": 6, "still_online": 2, "median_s": 60.5 * 3600, "p90_s": None}
    # Notified at least 2.5 days ago: c1-c5 and c10 (c6 and c7 too recent, c8 rejected);
    # within 2.5 days: c1 and c2 (exactly 60 h); within 7 days: c3 and c10 as well.
    assert times["from_notice"]["removed_within"] == [
        {"days": 2.5, "cases": 6, "removed": 2, "share": 0.333},
        {"days": 7, "cases": 6, "removed": 4, "share": 0.667}]
    # Notified at least 42 days ago: c1-c5 (not c10, 40 days); c4 and c5 online past 42 days.
    assert times["from_notice"]["online_over_long_tail"] == {
        "days": 42, "cases": 5, "over": 2, "share": 0.4}
    # From detection, an hour longer each: c2 (61 h) falls out of the 2.5 days.
    assert times["from_detection"]["median_s"] == 61.5 * 3600
    assert times["from_detection"]["removed_within"][0] == {
        "days": 2.5, "cases": 6, "removed": 1, "share": 0.167}
    hosts = report["hosts"]
    assert hosts["a.example"]["removal_times"]["from_notice"]["median_s"] == 60.5 * 3600
    b_times = hosts["b.example"]["removal_times"]["from_notice"]
    assert (b_times["removed"], b_times["still_online"], b_times["median_s"]) == (
        2, 1, 42 * 3600)
    assert b_times["removed_within"] == [
        {"days": 2.5, "cases": 1, "removed": 0, "share": 0.0},
        {"days": 7, "cases": 1, "removed": 1, "share": 1.0}]
    # Seoul's 6 minutes beside Haechi's: c1 drafted 4 min after detection, c2 after 8.
    assert report["overall"]["median_detection_to_draft_s"] == 360
    assert report["overall"]["median_detection_to_notice_s"] == 3600


def test_a_removal_counts_at_the_highest_rung_sent_before_it(store: CaseStore,
                                                            field: dict[str, int]) -> None:
    rungs = {r["rung"]: r for r in build_report(store.engine, now=NOW)["rungs"]}
    assert list(rungs) == ["site", "host", "cdn", "registrar", "authority"]
    figures = {rung: (r["reached"], r["still_online"], r["removed"], r["median_s"])
               for rung, r in rungs.items()}
    assert figures == {
        # c1, c2, c3, c7 removed at the site's notice: 24, 60, 61, 12 h.
        "site": (8, 2, 4, 42 * 3600),
        # c10 removed 24 h after the host's notice; c5 42 days after it, its registrar's
        # notice being sent after the removal; c4 is still online past the host.
        "host": (3, 1, 2, (24 + 42 * 24) / 2 * 3600),
        "cdn": (0, 0, 0, None),
        "registrar": (2, 1, 0, None),
        "authority": (0, 0, 0, None)}


def test_the_long_tail_lists_the_oldest_notice_first(store: CaseStore,
                                                     field: dict[str, int]) -> None:
    tail = build_report(store.engine, now=NOW)["long_tail"]
    assert [(c["case"], c["reference"], c["site"], c["rung"], c["still_online"],
             c["online_s"]) for c in tail] == [
        (field["c4"], f"HAECHI-{field['c4']:06d}", "a.example", "registrar", True,
         60 * 86400),
        (field["c5"], f"HAECHI-{field['c5']:06d}", "a.example", "host", False, 45 * 86400)]
    assert tail[0]["online_since_detection_s"] == 60 * 86400 + 3600
    assert tail[1]["removed_at"] == (START + 50 * DAY).isoformat()


@pytest.mark.parametrize(("removed", "p90_s", "text"), [
    (9, None, "p90 too few removed cases (9; 10 needed)"),
    (10, 9 * 3600, "p90 9 h"),  # nearest rank: the 9th of 10
    (11, 10 * 3600, "p90 10 h"),  # the 10th of 11
])
def test_p90_needs_ten_removed_cases(store: CaseStore, removed: int, p90_s: float | None,
                                     text: str) -> None:
    for hours in range(1, removed + 1):
        put_case(store.engine, "a.example", START, removed_after=hours * HOUR)
    report = build_report(store.engine, now=NOW)
    assert report["overall"]["removal_times"]["from_notice"]["p90_s"] == p90_s
    assert report["rungs"][0]["p90_s"] == p90_s
    assert text in render_text(report)


def test_text_and_html_put_haechi_beside_the_hotlines(store: CaseStore,
                                                      field: dict[str, int]) -> None:
    report = build_report(store.engine, now=NOW)
    assert {f["key"] for f in report["hotline_figures"]} == {
        "inhope_within_2_5_days", "inhope_within_7_days", "arachnid_over_42_days",
        "seoul_request_prepared"}
    text = render_text(report)
    for line in [
        "  from first notice: median 2.5 days (60 h), p90 too few removed cases (6; 10 "
        "needed), over 6 removed; 2 still online",
        "  from detection: median 2.6 days (62 h), p90 too few removed cases (6; 10 needed),"
        " over 6 removed; 2 still online",
        "  removed within 2.5 days of first notice: 2 of 6 notified at least 2.5 days ago "
        "(33%)  [INHOPE network: 69% (2023)]",
        "  removed within 7 days of first notice: 4 of 6 notified at least 7 days ago (67%)"
        "  [INHOPE network: 73% (2019)]",
        "  online more than 42 days after first notice: 2 of 5 notified at least 42 days ago"
        " (40%)  [Project Arachnid: 10%, re-noticing every 24 h]",
        "  detection → notice drafted, and sent (medians): drafted: 6 min; sent: 1 h  "
        "[Seoul's desk: a request prepared in 6 min]",
        "  site: reached by 8 cases, 2 still online; 4 removed at this rung, median 1.8 days"
        " (42 h) from its notice, p90 too few removed cases (4; 10 needed)",
        "  cdn: not reached yet",
        "  registrar: reached by 2 cases, 1 still online; nothing removed at this rung yet",
        f"  HAECHI-{field['c4']:06d}  a.example  rung registrar  60 days online after "
        "notice, still online",
        f"  HAECHI-{field['c5']:06d}  a.example  rung host  45 days online after notice, "
        "removed 2027-01-16 09:00 UTC",
        "      time to removal: median 1.8 days (42 h), p90 too few removed cases (2; 10 "
        "needed), over 2 removed; 1 still online; within 2.5 days: none of 1 notified at "
        "least 2.5 days ago; within 7 days: 1 of 1 notified at least 7 days ago (100%)",
    ]:
        assert line in text.splitlines(), line
    assert text.index(f"HAECHI-{field['c4']:06d}") < text.index(f"HAECHI-{field['c5']:06d}")

    html = render_html(report)
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>",
                      html.split('id="hotlines"')[1].split("</table>")[0])
    assert rows[0] == ("removed within 2.5 days of first notice",
                       "2 of 6 notified at least 2.5 days ago (33%)",
                       "INHOPE network: 69% (2023)")
    assert rows[2][2] == "Project Arachnid: 10%, re-noticing every 24 h"
    tail = html.split('id="long-tail"')[1].split("</table>")[0]
    assert tail.index(f"HAECHI-{field['c4']:06d}") < tail.index(f"HAECHI-{field['c5']:06d}")
    rungs = html.split('id="rungs"')[1].split("</table>")[0]
    assert '<td class="empty">not reached yet</td>' in rungs
    assert "n/a" not in html and not ZERO_PERCENT.search(html)
