"""`haechi report` for people: durations in hours and days, cases by status, the notices past
their deadline, and empty states that read as empty rather than as "0%"; the JSON keeps its
seconds fields for programs. Cases are opened, sent over a real SMTP server and tracked to
removal with a fake clock, as in production."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from engines.mail import SmtpServer
from engines.objects import LocalStore
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.notices import approve_notice, notice_for_case
from takedown.report import build_report, human_duration, render_html, render_text
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
    assert "0%" not in html and "n/a" not in html and "<rect" not in html and "<svg" not in html
    assert html.count("no notice sent yet") >= 2 * 3  # each host: rate and both times
    assert "No notice sent yet." in html
    text = render_text(report)
    assert "Removed after notice: no notice sent yet" in text
    assert "Past their deadline: no notice sent yet." in text
    assert "a.example: 2 cases (2 drafted)" in text
