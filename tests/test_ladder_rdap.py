"""The escalation ladder against a local RDAP server (testkit/rdap/), a real SMTP server and
the test web's abuse desk: a case on a site that ignores its notice climbs to the host, then
(no CDN fronts it) the registrar, each after its deadline and each only after a person
approves; a site behind a form-only CDN gets the CDN's form filled, with the screenshot kept.
Every party here is found the way production finds it (takedown/rdap.py, takedown/cdn.py)."""

from __future__ import annotations

import dataclasses
import email
import json
from collections.abc import Iterator
from email import policy
from pathlib import Path

import httpx
import pytest

from crawler.browser import chromium_path
from engines.mail import SmtpServer
from takedown import audit, cdn
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.forms import read_receipt
from takedown.ladder import Climber, history
from takedown.notices import approve_notice, notice_for_case, notice_json
from takedown.published import write_refreshed
from takedown.sending import NoticeSender
from takedown.tracking import Fetched, Tracker
from testkit.rdap.server import Canned, RdapServer, domain, entity, ip_network
from testkit.testweb.model import FORMS_ADDRESS, WebPlan
from testkit.testweb.server import RunningWeb, free_port, start_testweb
from tests.takedown_helpers import FakeClock, event, start_smtp
from tests.test_forms import desk_profile
from tests.test_xarf import assert_valid

IGNORING = "repost-site.com"
HOSTED = "198.51.100.10"
FORM_HOSTED = "198.51.100.20"  # a network whose abuse desk takes reports by its form only
FORM_HOST = "Form Only Hosting Ltd"
FRONTED = "fronted-site.com"
FRONTED_IP = "185.199.108.7"  # in the form-only CDN's ranges written below
LADDER = {"rungs": [
    {"rung": "site", "deadline_days": 2}, {"rung": "host", "deadline_days": 3},
    {"rung": "cdn", "deadline_days": 3}, {"rung": "registrar", "deadline_days": 5}]}


@pytest.fixture(scope="module")
def rdap_server() -> Iterator[RdapServer]:
    with RdapServer() as running:
        base = running.base
        running.answers.update({
            f"/registry/ip/{HOSTED}": Canned(ip_network(HOSTED, "EXAMPLE-NET", "DE", [
                entity("ORG-1", ["registrant"], "Example Hosting GmbH", children=[
                    entity("ABUSE-1", ["abuse"], "Abuse", "abuse@examplehost.net")])])),
            f"/registry/ip/{FORM_HOSTED}": Canned(ip_network(FORM_HOSTED, "FORM-NET", "GB", [
                entity("ORG-2", ["registrant"], FORM_HOST, children=[
                    entity("ABUSE-2", ["abuse"], "Abuse", "abuse@formhost.example")])])),
            f"/registry/domain/{IGNORING}": Canned(domain(IGNORING, [
                entity("REG-1", ["registrar"], "Example Registrar, Inc.")],
                related=f"{base}/registrar/domain/{IGNORING}")),
            f"/registrar/domain/{IGNORING}": Canned(domain(IGNORING, [
                entity("REG-1", ["registrar"], "Example Registrar, Inc.", children=[
                    entity("REG-1-ABUSE", ["abuse"], "Abuse", "abuse@registrar.example")])])),
        })
        yield running


@pytest.fixture(scope="module")
def testweb() -> Iterator[RunningWeb]:
    web = start_testweb(WebPlan(sites=1, traps=False, hostile=False))
    try:
        yield web
    finally:
        web.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def installation(haechi_home: Path, rdap_server: RdapServer, testweb: RunningWeb,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    """An institution's set-up: its name, its ladder, the registries' bootstrap sending .com
    and 198.51.100.0/24 to the local RDAP server, a form-only CDN in the CDN ranges, and the
    form profile for that CDN's desk (the test web's). Returns the desk's URL."""
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")
    haechi_home.mkdir(parents=True, exist_ok=True)
    (haechi_home / "ladder.json").write_text(json.dumps(LADDER))
    for kind, document in rdap_server.bootstrap_files("com", "198.51.100.0/24").items():
        write_refreshed(f"rdap/{kind}.json", json.dumps(document).encode())
    desk = f"http://{FORMS_ADDRESS}:{testweb.port}/report-abuse"
    shipped = json.loads((Path(cdn.__file__).parent / "data" / cdn.RANGES_FILE).read_text())
    shipped["cdns"].append({"name": "Form-only CDN", "address": None, "form_url": desk,
                            "sources": [], "fetched_at": "2026-12-01T00:00:00+00:00",
                            "ranges": ["185.199.108.0/24"]})
    write_refreshed(cdn.RANGES_FILE, json.dumps(shipped).encode())
    profile = desk_profile(desk, timeout=15)
    (haechi_home / "form_profiles.json").write_text(json.dumps({
        "form-only-cdn": profile,
        # The operator knows this network answers only its form, whatever address it lists.
        "form-only-host": {**profile, "parties": [FORM_HOST]}}))
    rdap_server.requests.clear()
    return desk


def served_from(site: str, address: str, number: int = 1):
    return dataclasses.replace(event(site, number), server_ip=address)


@pytest.mark.skipif(chromium_path(None) is None, reason="Debian's chromium is not installed")
def test_ignored_notices_climb_to_host_then_registrar_and_a_cdn_form_is_filled(
        installation: str, clock: FakeClock, rdap_server: RdapServer) -> None:
    store = CaseStore(takedown_engine(), clock=clock)
    controller, mailbox = start_smtp(free_port())
    try:
        ignoring, fronted = store.open_cases([served_from(IGNORING, HOSTED),
                                              served_from(FRONTED, FRONTED_IP)])
        for case_id in (ignoring, fronted):
            approve_notice(store.engine, notice_for_case(store.engine, case_id), "reviewer",
                           clock())
        sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port),
                              clock=clock, backoff=0)
        assert len(sender.send_approved()["sent"]) == 2
        tracker = Tracker(store.engine, lambda body, victim: True, sender, clock,
                          lambda url: Fetched(200, b"jpeg"),
                          climber=Climber(store.engine, clock=clock))

        def climb() -> dict[int, dict]:
            report = tracker.run()
            assert report.errors == []
            return {step["case"]: step for step in report.ladder["climbed"]}

        clock.advance(days=2, hours=1)
        climbed = climb()
        host = notice_json(store.engine, climbed[ignoring]["notice"])
        assert (host["rung"], host["party"], host["to"], host["language"]) == (
            "host", "Example Hosting GmbH", "abuse@examplehost.net", "de")
        assert host["recipient_source"] == "rdap:ip" and not host["recipient_confirmed"]
        # The CDN's address is the CDN's: no host rung, straight to its form.
        form = notice_json(store.engine, climbed[fronted]["notice"])
        assert (form["rung"], form["party"], form["channel"], form["form_profile"]) == (
            "cdn", "Form-only CDN", "form", "form-only-cdn")
        assert f"/registry/ip/{FRONTED_IP}" not in rdap_server.requests

        clock.advance(days=4)
        assert climb() == {}  # nobody approved the host's notice or the CDN's form yet
        before = len(httpx.get(f"{installation}/received", timeout=10).json())
        for notice in (host, form):
            approve_notice(store.engine, notice["id"], "reviewer", clock())
        assert sorted(s["notice"] for s in sender.send_approved()["sent"]) == sorted(
            [host["id"], form["id"]])
        to = [email.message_from_bytes(m.content, policy=policy.default)["To"]
              for m in mailbox.messages]
        assert to[-1] == "abuse@examplehost.net"
        desk = httpx.get(f"{installation}/received", timeout=10).json()[before:]
        assert [r["site"] for r in desk] == [FRONTED]
        receipt = notice_json(store.engine, form["id"])["confirmation_key"]
        assert read_receipt(receipt).startswith(b"\x89PNG")

        clock.advance(days=2, hours=23)
        assert climb() == {}  # the host's three days run from its notice
        clock.advance(hours=2)
        climbed = climb()
        assert climbed[ignoring]["skipped"] == [{"rung": "cdn", "why": "no CDN fronts the site"}]
        registrar = notice_json(store.engine, climbed[ignoring]["notice"])
        assert (registrar["rung"], registrar["to"]) == ("registrar", "abuse@registrar.example")
        assert fronted not in climbed  # its registry names no registrar: nobody is left
        approve_notice(store.engine, registrar["id"], "reviewer", clock())
        sender.send_approved()
        # Every rung's mail carries X-ARF parts that pass the official schemas.
        parts = [json.loads(part.get_content()) for m in mailbox.messages
                 for part in email.message_from_bytes(m.content, policy=policy.default)
                 .iter_attachments()]
        assert len(parts) == len(mailbox.messages) >= 4
        for report in parts:
            assert_valid(report)
        assert [s["rung"] for s in history(store.engine, ignoring)] == [
            "site", "host", "registrar"]
        assert all(s["sent_at"] for s in history(store.engine, ignoring))
    finally:
        controller.stop()
    assert audit.verify(store.engine).ok


@pytest.mark.skipif(chromium_path(None) is None, reason="Debian's chromium is not installed")
def test_a_form_only_host_gets_its_form_filled_with_the_screenshot_kept(
        installation: str, clock: FakeClock) -> None:
    """A hosting network RDAP names (with an address) that the operator's profiles say takes
    reports by its form only: its rung is that form, filled once a person approves."""
    store = CaseStore(takedown_engine(), clock=clock)
    controller, mailbox = start_smtp(free_port())
    try:
        [case] = store.open_cases([served_from("formhost-site.com", FORM_HOSTED)])
        approve_notice(store.engine, notice_for_case(store.engine, case), "reviewer", clock())
        sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port),
                              clock=clock, backoff=0)
        sender.send_approved()
        tracker = Tracker(store.engine, lambda body, victim: True, sender, clock,
                          lambda url: Fetched(200, b"jpeg"),
                          climber=Climber(store.engine, clock=clock))
        clock.advance(days=2, hours=1)
        [step] = tracker.run().ladder["climbed"]
        notice = notice_json(store.engine, step["notice"])
        assert (notice["rung"], notice["party"], notice["channel"], notice["form_profile"],
                notice["to"]) == ("host", FORM_HOST, "form", "form-only-host", "")
        before = len(httpx.get(f"{installation}/received", timeout=10).json())
        mails = len(mailbox.messages)
        approve_notice(store.engine, notice["id"], "reviewer", clock())
        assert [s["notice"] for s in sender.send_approved()["sent"]] == [notice["id"]]
        desk = httpx.get(f"{installation}/received", timeout=10).json()[before:]
        assert [r["site"] for r in desk] == ["formhost-site.com"]
        assert len(mailbox.messages) == mails  # the form, not the listed address
        sent = notice_json(store.engine, notice["id"])
        assert read_receipt(sent["confirmation_key"]).startswith(b"\x89PNG")
        assert history(store.engine, case)[1]["sent_at"] is not None
    finally:
        controller.stop()
