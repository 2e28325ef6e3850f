"""The escalation ladder (takedown/ladder.py): a case on a site that ignores its notice climbs
to the host, then (no CDN) the registrar, then the authority, each only after the rung below
was sent and its deadline passed, each only after a person approves; sent over a real SMTP
server, on a fake clock. The parties here are given as RDAP would name them (the finder is
the ladder's seam); tests/test_ladder_rdap.py finds them on a local RDAP server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import json
from dataclasses import dataclass
from email import policy
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event as sa_event

from crawler.browser import chromium_path
from engines.mail import SmtpServer
from takedown import audit
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.forms import read_receipt
from takedown.ladder import Climber, Ladder, LadderError, history, record_answer
from takedown.notices import (
    approve_notice,
    edit_notice,
    notice_for_case,
    notice_json,
    notice_version,
)
from takedown.report import build_report
from takedown.sending import NoticeSender, SendError
from takedown.tracking import Fetched, Tracker
from testkit.testweb.model import FORMS_ADDRESS, WebPlan
from testkit.testweb.server import free_port, start_testweb
from tests.takedown_helpers import FakeClock, event, postgres_database, start_smtp
from tests.test_forms import desk_profile

SITE = "ignores.example"
needs_chromium = pytest.mark.skipif(chromium_path(None) is None,
                                    reason="Debian's chromium is not installed")


@dataclass(frozen=True)
class Found:
    """A party as takedown/rdap.py gives it (the fields the ladder reads)."""

    rung: str
    name: str
    address: str | None
    form_url: str | None = None
    source: str = "rdap:ip"
    country: str | None = None


HOST = Found("host", "Example Hosting GmbH", "abuse@hosting.example", country="DE")
REGISTRAR = Found("registrar", "Example Registrar Inc.", "abuse@registrar.example",
                  source="rdap:domain", country="US")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def named_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")


@pytest.fixture
def store(haechi_home: Path, clock: FakeClock) -> CaseStore:
    return CaseStore(takedown_engine(), clock=clock)


def finder_of(*found: Found, calls: list | None = None):
    def finder(engine, site, server_ip, now):
        if calls is not None:
            calls.append(site)
        return {party.rung: party for party in found}
    return finder


def climbing(store: CaseStore, clock: FakeClock, controller, finder, **options,
             ) -> tuple[NoticeSender, Tracker]:
    """A sender to the test's SMTP server (the notices approved so far sent), and a tracker
    that finds every file still online and climbs the ladder with `finder`."""
    sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port), clock=clock,
                          backoff=0)
    sender.send_approved()
    return sender, Tracker(store.engine, lambda body, victim: True, sender, clock,
                           lambda url: Fetched(200, b"jpeg"),
                           climber=Climber(store.engine, finder=finder, clock=clock), **options)


def test_the_default_ladder_is_a_korean_desks_and_a_bad_file_is_refused(tmp_path) -> None:
    ladder = Ladder.load(tmp_path / "absent.json")
    assert [r.rung for r in ladder.rungs] == ["site", "host", "cdn", "registrar", "authority"]
    assert ladder.rung("site").deadline == dt.timedelta(days=7)  # HAECHI_ESCALATE_DAYS
    assert "KCSC" in ladder.rung("authority").name
    bad = {
        '{"rungs": [{"rung": "host", "deadline_days": 1}]}': "first rung",
        '{"rungs": [{"rung": "site"}, {"rung": "registrar", "deadline_days": 1}, '
        '{"rung": "host", "deadline_days": 1}]}': "in the order",
        '{"rungs": [{"rung": "site"}, {"rung": "authority", "deadline_days": 3}]}':
            "name the authority",
        '{"rungs": [{"rung": "site"}, {"rung": "host", "deadline_days": 0}]}': "positive",
        '{"rungs": [{"rung": "site"}, {"rung": "host", "deadline_days": 2, '
        '"contact": "x@y.example"}]}': "only the authority",
        "not json": "not a JSON ladder",
        # The authority's address goes out unconfirmed (the operator's word), so it is
        # checked as the registry's is: one plain address, no pasted list, no header.
        '{"rungs": [{"rung": "site"}, {"rung": "authority", "deadline_days": 3, "name": "A", '
        '"contact": "report@authority.example, boss@elsewhere.example"}]}': "contact",
        '{"rungs": [{"rung": "site"}, {"rung": "authority", "deadline_days": 3, "name": "A", '
        '"contact": "report@authority.example\\r\\nBcc: x@y.example"}]}': "contact",
        # Its name is written into every subject and into notices.party (200 characters).
        '{"rungs": [{"rung": "site"}, {"rung": "authority", "deadline_days": 3, "name": "'
        + "K" * 201 + '"}]}': "name",
        '{"rungs": [{"rung": "site"}, {"rung": "authority", "deadline_days": 3, '
        '"name": "KCSC\\nBcc: x@y.example"}]}': "name",
        '{"rungs": [{"rung": "site"}, {"rung": "authority", "deadline_days": 3, "name": "A", '
        '"country": "Korea"}]}': "country",
        # JSON as Python reads it takes NaN and Infinity; no deadline is either, nor 1e300.
        '{"rungs": [{"rung": "site"}, {"rung": "host", "deadline_days": NaN}]}': "positive",
        '{"rungs": [{"rung": "site"}, {"rung": "host", "deadline_days": Infinity}]}':
            "positive",
        '{"rungs": [{"rung": "site"}, {"rung": "host", "deadline_days": 1e300}]}': "positive",
    }
    for text, words in bad.items():
        path = tmp_path / "ladder.json"
        path.write_text(text)
        with pytest.raises(LadderError, match=words):
            Ladder.load(path)


def test_a_case_climbs_host_then_registrar_then_authority_each_after_approval(
        store, clock, named_sender, tmp_path, monkeypatch) -> None:
    ladder_file = tmp_path / "ladder.json"
    ladder_file.write_text(json.dumps({"rungs": [
        {"rung": "site", "deadline_days": 2}, {"rung": "host", "deadline_days": 3},
        {"rung": "cdn", "deadline_days": 3}, {"rung": "registrar", "deadline_days": 5},
        {"rung": "authority", "deadline_days": 7, "name": "KCSC",
         "contact": "report@authority.example", "language": "ko"}]}))
    monkeypatch.setenv("HAECHI_LADDER", str(ladder_file))
    controller, mailbox = start_smtp(free_port())
    calls: list[str] = []
    try:
        opened = store.open_cases([event(SITE, 1), event(SITE, 2)])
        site_notice = notice_for_case(store.engine, opened[0])
        approve_notice(store.engine, site_notice, "reviewer-1", clock())
        sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port),
                              clock=clock, backoff=0)
        sender.send_approved()
        climber = Climber(store.engine, finder=finder_of(HOST, REGISTRAR, calls=calls),
                          clock=clock)
        tracker = Tracker(store.engine, lambda body, victim: True, sender, clock,
                          lambda url: Fetched(200, b"jpeg"), climber=climber)

        clock.advance(days=1, hours=23)
        assert tracker.run().escalated == []  # the site's two days are not over
        clock.advance(hours=2)
        report = tracker.run()
        assert report.escalated == opened and report.errors == []
        assert calls == [SITE]  # one look-up for the site's two cases
        host_notice = report.ladder["climbed"][0]["notice"]
        host = notice_json(store.engine, host_notice)
        assert (host["rung"], host["party"], host["status"]) == (
            "host", "Example Hosting GmbH", "draft")
        assert host["to"] == "abuse@hosting.example" and not host["recipient_confirmed"]
        assert host["language"] == "de" and host["cases"] == opened  # the host's country
        assert "Löschaufforderung" in host["subject"] and "Hosting-Anbieter" in host["body"]
        assert all(f"http://{SITE}/img/{n}.jpg" in host["body"] for n in (1, 2))
        assert "abuse@ignores.example" in host["body"]  # what was tried before, and when

        # Nobody approved the host's notice: however long it waits, nothing climbs past it.
        clock.advance(days=10)
        report = tracker.run()
        assert report.escalated == [] and report.ladder["waiting"] == opened
        approve_notice(store.engine, host_notice, "reviewer-1", clock())
        sent = sender.send_approved()
        assert [s["notice"] for s in sent["sent"]] == [host_notice]
        delivered = [email.message_from_bytes(m.content, policy=policy.default)
                     for m in mailbox.messages]
        assert delivered[-1]["To"] == "abuse@hosting.example"

        clock.advance(days=2, hours=23)
        report = tracker.run()
        assert report.escalated == []  # the host's three days run from its notice
        clock.advance(hours=2)
        report = tracker.run()
        climbed = report.ladder["climbed"]
        assert [c["rung"] for c in climbed] == ["registrar", "registrar"]
        assert climbed[0]["skipped"] == [{"rung": "cdn", "why": "no CDN fronts the site"}]
        registrar_notice = climbed[0]["notice"]
        registrar = notice_json(store.engine, registrar_notice)
        assert registrar["language"] == "en" and "its registrar" in registrar["body"]
        record_answer(store.engine, registrar_notice, "We forwarded it to the registrant.",
                      "reviewer-1", clock())
        approve_notice(store.engine, registrar_notice, "reviewer-1", clock())
        sender.send_approved()
        clock.advance(days=5, hours=1)
        report = tracker.run()
        authority = notice_json(store.engine, report.ladder["climbed"][0]["notice"])
        assert authority["rung"] == "authority" and authority["language"] == "ko"
        assert authority["to"] == "report@authority.example" and authority["recipient_confirmed"]
        assert "접속차단 요청" in authority["subject"] and "증거 목록" in authority["body"]
        assert "127.0.0.1" in authority["body"]  # the server address is evidence
        approve_notice(store.engine, authority["id"], "reviewer-1", clock())
        sender.send_approved()
        clock.advance(days=8)
        assert tracker.run().ladder["top"] == opened  # nobody is left to ask
        gone = Tracker(store.engine, lambda body, victim: True, sender, clock,
                       lambda url: Fetched(404), climber=climber)
        assert gone.run().removed == opened
        rungs = {r["rung"]: r for r in build_report(store.engine, clock())["rungs"]}
        assert rungs["authority"]["removed"] == 2 and rungs["site"]["removed"] == 0
        assert rungs["authority"]["median_s"] == 8 * 86400  # from the authority's notice

        steps = history(store.engine, opened[0])
        assert [s["rung"] for s in steps] == ["site", "host", "registrar", "authority"]
        assert all(s["sent_at"] for s in steps)
        assert steps[2]["answer"] == "We forwarded it to the registrant."
        assert steps[1]["party"] == "Example Hosting GmbH"
    finally:
        controller.stop()
    assert audit.verify(store.engine).ok


def test_an_unreachable_registry_holds_that_site_only_and_is_tried_again(store, clock,
                                                                         named_sender) -> None:
    opened = store.open_cases([event("down.example", 1), event("fine.example", 1)])
    for case_id in opened:
        approve_notice(store.engine, notice_for_case(store.engine, case_id), "r", clock())
    controller, _ = start_smtp(free_port())
    try:
        failing = {"down.example"}

        def finder(engine, site, server_ip, now):
            if site in failing:
                raise OSError("rdap.example timed out")
            return {"host": HOST}

        _, tracker = climbing(store, clock, controller, finder)
        clock.advance(days=8)
        report = tracker.run()
        assert report.escalated == [opened[1]]
        assert any("down.example" in e and "timed out" in e for e in report.errors)
        failing.clear()
        assert tracker.run().escalated == [opened[0]]
    finally:
        controller.stop()


def test_cases_of_one_site_served_from_two_networks_climb_to_each_network(
        store, clock, named_sender) -> None:
    """The host is whoever serves the file: a site on two networks (a second server, a
    mirror) has each case's host looked up from that case's address, and each host gets a
    notice of its own cases only, never another network's."""
    other = Found("host", "Other Networks BV", "abuse@other.example", country="NL")
    by_address = {"198.51.100.10": HOST, "203.0.113.20": other}
    calls: list[tuple[str, str]] = []

    def finder(engine, site, server_ip, now):
        calls.append((site, server_ip))
        return {"host": by_address[server_ip]}

    opened = store.open_cases([
        dataclasses.replace(event(SITE, 1), server_ip="198.51.100.10"),
        dataclasses.replace(event(SITE, 2), server_ip="203.0.113.20"),
        dataclasses.replace(event(SITE, 3), server_ip="198.51.100.10")])
    approve_notice(store.engine, notice_for_case(store.engine, opened[0]), "r", clock())
    controller, _ = start_smtp(free_port())
    try:
        _, tracker = climbing(store, clock, controller, finder)
        clock.advance(days=8)
        report = tracker.run()
        assert sorted(report.escalated) == sorted(opened) and report.errors == []
        assert sorted(calls) == [(SITE, "198.51.100.10"), (SITE, "203.0.113.20")]
        notices_of = {c["case"]: c["notice"] for c in report.ladder["climbed"]}
        first, second = (notice_json(store.engine, notices_of[opened[i]]) for i in (0, 1))
        assert notices_of[opened[2]] == first["id"] != second["id"]
        assert (first["party"], first["to"], first["cases"]) == (
            "Example Hosting GmbH", "abuse@hosting.example", [opened[0], opened[2]])
        assert (second["party"], second["to"], second["cases"]) == (
            "Other Networks BV", "abuse@other.example", [opened[1]])
        assert f"http://{SITE}/img/2.jpg" not in first["body"]
        assert f"http://{SITE}/img/1.jpg" not in second["body"]
    finally:
        controller.stop()


def test_a_rung_without_an_address_is_drafted_but_not_sent(store, clock, named_sender) -> None:
    """The default ladder's authority has no contact until the institution sets one: its
    request is drafted with the evidence list, and sending says what to set."""
    opened = store.open_cases([event(SITE, 1)])
    approve_notice(store.engine, notice_for_case(store.engine, opened[0]), "r", clock())
    controller, _ = start_smtp(free_port())
    try:
        sender, tracker = climbing(store, clock, controller, finder_of())
        clock.advance(days=8)
        report = tracker.run()
        step = report.ladder["climbed"][0]
        assert step["rung"] == "authority"
        assert [s["rung"] for s in step["skipped"]] == ["host", "cdn", "registrar"]
        approve_notice(store.engine, step["notice"], "r", clock())
        with pytest.raises(SendError, match="ladder file"):
            sender.send_notice(step["notice"])
    finally:
        controller.stop()


@needs_chromium
def test_a_form_only_cdn_gets_its_form_filled_after_approval_with_the_screenshot_kept(
        store, clock, named_sender, haechi_home, monkeypatch) -> None:
    """The CDN takes reports only by its web form (the test web's abuse desk): climbing drafts
    a form notice under the operator's profile for that form; sending fills it in Chromium,
    and the notice keeps the confirmation's screenshot as evidence."""
    web_ = start_testweb(WebPlan(sites=1, traps=False, hostile=False))
    controller, _ = start_smtp(free_port())
    try:
        url = f"http://{FORMS_ADDRESS}:{web_.port}/report-abuse"
        profiles = haechi_home / "form_profiles.json"
        profiles.parent.mkdir(parents=True, exist_ok=True)
        profiles.write_text(json.dumps({"cdn-desk": desk_profile(url, timeout=15)}))
        monkeypatch.setenv("HAECHI_FORM_PROFILES", str(profiles))
        cdn = Found("cdn", "Example CDN", None, form_url=url, source="cdn-ranges")
        opened = store.open_cases([event(SITE, 1)])
        approve_notice(store.engine, notice_for_case(store.engine, opened[0]), "r", clock())
        sender, tracker = climbing(store, clock, controller, finder_of(cdn))
        clock.advance(days=8)
        step = tracker.run().ladder["climbed"][0]
        notice = notice_json(store.engine, step["notice"])
        assert (step["rung"], notice["channel"], notice["form_profile"]) == (
            "cdn", "form", "cdn-desk")
        before = len(httpx.get(f"{url}/received", timeout=10).json())
        approve_notice(store.engine, notice["id"], "r", clock())
        assert sender.send_approved()["sent"][0]["notice"] == notice["id"]
        got = httpx.get(f"{url}/received", timeout=10).json()[before:]
        assert len(got) == 1 and got[0]["site"] == SITE
        assert f"http://{SITE}/img/1.jpg" in got[0]["urls"]
        sent = notice_json(store.engine, notice["id"])
        assert sent["status"] == "sent" and sent["message_id"].startswith("form:cdn-desk:")
        assert read_receipt(sent["confirmation_key"]).startswith(b"\x89PNG")
        assert history(store.engine, opened[0])[1]["sent_at"] is not None
    finally:
        controller.stop()
        web_.stop()


def test_a_case_rejected_as_a_false_match_leaves_its_rung_notice_before_it_is_sent(
        store, clock, named_sender) -> None:
    """A host's notice drafted for two cases, one of which a reviewer then rejects as not the
    victim: the notice must no longer name that URL (a stranger's picture sent to a host as a
    victim's), and a notice whose every case was rejected is not sent at all."""
    opened = store.open_cases([event(SITE, 1), event(SITE, 2), event("other.example", 1)])
    for case_id in (opened[0], opened[2]):
        approve_notice(store.engine, notice_for_case(store.engine, case_id), "r", clock())
    controller, mailbox = start_smtp(free_port())
    try:
        sender, tracker = climbing(store, clock, controller, finder_of(HOST))
        clock.advance(days=8)
        climbed = {c["case"]: c["notice"] for c in tracker.run().ladder["climbed"]}
        host_notice, other_notice = climbed[opened[0]], climbed[opened[2]]
        assert notice_json(store.engine, host_notice)["cases"] == opened[:2]
        approve_notice(store.engine, host_notice, "r", clock())  # approved, then rejected
        store.reject_false_match(opened[1], "r")
        host = notice_json(store.engine, host_notice)
        assert host["cases"] == [opened[0]] and host["status"] == "draft"
        assert f"http://{SITE}/img/2.jpg" not in host["body"] + json.dumps(host["xarf"])
        assert f"http://{SITE}/img/1.jpg" in host["body"]
        # Every case of the other site's host notice rejected: nothing left to send.
        store.reject_false_match(opened[2], "r")
        approve_notice(store.engine, other_notice, "r", clock())
        approve_notice(store.engine, host_notice, "r", clock())
        result = sender.send_approved()
        assert [s["notice"] for s in result["sent"]] == [host_notice]
        assert [f["notice"] for f in result["failed"]] == [other_notice]
        assert "lists no case" in result["failed"][0]["error"]
        sent = email.message_from_bytes(mailbox.messages[-1].content, policy=policy.default)
        assert "img/2.jpg" not in sent.as_string() and sent["To"] == "abuse@hosting.example"
    finally:
        controller.stop()
    assert audit.verify(store.engine).ok


def test_a_victim_who_withdraws_mid_climb_leaves_the_rung_notice_not_yet_sent(
        store, clock, named_sender) -> None:
    """Two victims' cases on one site reach its host's notice; one victim withdraws before a
    person approves it. Haechi stops acting for them: the notice the host gets names only the
    other victim's URL, also when a later case of the site joins that rung."""
    withdrawn: set[str] = set()
    opened = store.open_cases([event(SITE, 1, victim="V1"), event(SITE, 2, victim="V2")])
    approve_notice(store.engine, notice_for_case(store.engine, opened[0]), "r", clock())
    controller, mailbox = start_smtp(free_port())
    try:
        sender, tracker = climbing(store, clock, controller, finder_of(HOST),
                                   registered=lambda victim: victim not in withdrawn)
        clock.advance(days=8)
        host_notice = tracker.run().ladder["climbed"][0]["notice"]
        assert notice_json(store.engine, host_notice)["cases"] == opened
        withdrawn.add("V2")
        report = tracker.run()
        assert opened[1] in report.withdrawn
        host = notice_json(store.engine, host_notice)
        assert host["cases"] == [opened[0]]
        assert f"http://{SITE}/img/2.jpg" not in host["body"] + json.dumps(host["xarf"])
        # A later case of the site reaching the host's rung does not bring it back.
        [later] = store.open_cases([event(SITE, 3, victim="V1")])
        approve_notice(store.engine, notice_for_case(store.engine, later), "r", clock())
        sender.send_approved()
        clock.advance(days=8)
        tracker.run()
        assert notice_json(store.engine, host_notice)["cases"] == [opened[0], later]
        approve_notice(store.engine, host_notice, "r", clock())
        assert [s["notice"] for s in sender.send_approved()["sent"]] == [host_notice]
        sent = email.message_from_bytes(mailbox.messages[-1].content, policy=policy.default)
        assert "img/2.jpg" not in sent.as_string() and "img/3.jpg" in sent.as_string()
        # The victim registers again: their case is pursued again, not left waiting for a
        # notice it was taken off.
        withdrawn.clear()
        report = tracker.run()
        [again] = [c for c in report.ladder["climbed"] if c["case"] == opened[1]]
        assert again["rung"] == "host" and again["notice"] != host_notice
        assert notice_json(store.engine, again["notice"])["cases"] == [opened[1]]
        assert [s["rung"] for s in history(store.engine, opened[1])] == ["site", "host"]
    finally:
        controller.stop()
    assert audit.verify(store.engine).ok


def test_a_subject_that_cannot_be_a_header_fails_its_notice_only(store, clock,
                                                                  named_sender) -> None:
    """A reviewer's wording (or a name in it) with a Unicode line break, which e-mail headers
    refuse: that notice fails with a reason and stays approved; the others are still sent."""
    opened = store.open_cases([event(SITE, 1), event("other.example", 1)])
    for case_id in opened:
        approve_notice(store.engine, notice_for_case(store.engine, case_id), "r", clock())
    controller, mailbox = start_smtp(free_port())
    try:
        sender, tracker = climbing(store, clock, controller, finder_of(HOST))
        clock.advance(days=8)
        broken, fine = [c["notice"] for c in tracker.run().ladder["climbed"]]
        edit_notice(store.engine, broken, "Removal request\u2028Bcc: all@victims.example",
                    "Please remove the items.", "r", clock())
        for notice_id in (broken, fine):
            approve_notice(store.engine, notice_id, "r", clock())
        before = len(mailbox.messages)
        result = sender.send_approved()
        assert [s["notice"] for s in result["sent"]] == [fine]
        [failed] = result["failed"]
        assert failed["notice"] == broken and "subject" in failed["error"]
        assert notice_json(store.engine, broken)["status"] == "approved"
        assert len(mailbox.messages) == before + 1
    finally:
        controller.stop()


def test_an_approval_landing_while_a_rung_notice_is_redrafted_is_not_rewritten(
        clock, named_sender, haechi_home) -> None:
    """PostgreSQL, where a climb and an approval run side by side: a reviewer approves the
    host's notice as they read it (one case) at the moment a second case of the site climbs
    to it. The approved notice must stay what was approved; the new case waits for a notice
    of its own, next pass."""
    with postgres_database() as url:
        engine = takedown_engine(url)
        store = CaseStore(engine, clock=clock)
        controller, _ = start_smtp(free_port())
        try:
            sender = NoticeSender(engine, SmtpServer("127.0.0.1", controller.port),
                                  clock=clock, backoff=0)
            climber = Climber(engine, finder=finder_of(HOST), clock=clock)
            [first] = store.open_cases([event(SITE, 1)])
            approve_notice(engine, notice_for_case(engine, first), "r", clock())
            sender.send_approved()
            clock.advance(days=8)
            host_notice = climber.climb([first]).climbed[0]["notice"]
            read = notice_version(notice_json(engine, host_notice))

            [second] = store.open_cases([event(SITE, 2)])
            approve_notice(engine, notice_for_case(engine, second), "r", clock())
            sender.send_approved()
            clock.advance(days=8)
            approved: list[bool] = []

            def approve_meanwhile(conn, cursor, statement, parameters, context, many):
                if not approved and statement.lstrip().startswith("SELECT") and \
                        "FROM notices" in statement and "notices.rung" in statement:
                    approved.append(True)
                    approve_notice(engine, host_notice, "r", clock(), version=read)

            sa_event.listen(engine, "after_cursor_execute", approve_meanwhile)
            try:
                report = climber.climb([second])
            finally:
                sa_event.remove(engine, "after_cursor_execute", approve_meanwhile)
            assert approved
            host = notice_json(engine, host_notice)
            assert host["status"] == "approved" and host["cases"] == [first]
            assert notice_version(host) == read
            assert report.climbed == [] and len(report.errors) == 1
            again = climber.climb([second]).climbed[0]
            assert again["notice"] != host_notice
            assert notice_json(engine, again["notice"])["cases"] == [second]
        finally:
            controller.stop()
            engine.dispose()


def test_a_broken_form_profiles_file_fails_the_form_notices_only(
        store, clock, named_sender, haechi_home, monkeypatch) -> None:
    """The operator breaks form_profiles.json while a CDN's form notice and a host's e-mail
    notice wait approved: the form notice fails saying what is wrong with the file; the e-mail
    notice, which needs no form, is still sent."""
    url = "http://forms.example/report-abuse"
    profiles = haechi_home / "form_profiles.json"
    profiles.parent.mkdir(parents=True, exist_ok=True)
    profiles.write_text(json.dumps({"cdn-desk": {
        "url": url, "submit": "#send", "confirmation": {"text": "Ticket number:"},
        "fields": [{"selector": "#urls", "value": "{urls}"}]}}))
    monkeypatch.setenv("HAECHI_FORM_PROFILES", str(profiles))
    cdn = Found("cdn", "Example CDN", None, form_url=url, source="cdn-ranges")
    opened = store.open_cases([event("fronted.example", 1), event(SITE, 1)])
    for case_id in opened:
        approve_notice(store.engine, notice_for_case(store.engine, case_id), "r", clock())
    controller, mailbox = start_smtp(free_port())
    try:
        def finder(engine, site, server_ip, now):
            return {"cdn": cdn} if site == "fronted.example" else {"host": HOST}

        sender, tracker = climbing(store, clock, controller, finder)
        clock.advance(days=8)
        form, host = [c["notice"] for c in tracker.run().ladder["climbed"]]
        assert notice_json(store.engine, form)["form_profile"] == "cdn-desk"
        for notice_id in (form, host):
            approve_notice(store.engine, notice_id, "r", clock())
        profiles.write_text('{"cdn-desk": {"url": ')  # half written
        result = sender.send_approved()
        assert [s["notice"] for s in result["sent"]] == [host]
        [failed] = result["failed"]
        assert failed["notice"] == form and "form profiles" in failed["error"]
        assert notice_json(store.engine, form)["status"] == "approved"
        sent = email.message_from_bytes(mailbox.messages[-1].content, policy=policy.default)
        assert sent["To"] == "abuse@hosting.example"
    finally:
        controller.stop()
