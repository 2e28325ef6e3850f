"""Who a notice comes from: an installation that never named its institution (HAECHI_ORG_NAME)
and reply address (HAECHI_FROM) drafts notices that say so plainly, flags them for the demo
and the review app, and is refused when it tries to send one, first or reminder, by the
library and by `haechi notices send`. Sending goes to a real SMTP server that must receive
nothing."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest

from engines.mail import SmtpServer
from engines.objects import LocalStore
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.notices import (
    LANGUAGES,
    UNCONFIGURED_EMAIL,
    UNCONFIGURED_ORG,
    approve_notice,
    edit_notice,
    notice_for_case,
    notice_json,
)
from takedown.sending import NoticeSender, SendError
from takedown.tracking import Fetched, Tracker
from testkit.testweb.server import free_port
from tests.takedown_helpers import FakeClock, event, site_facts, start_smtp

HAECHI = str(Path(sys.executable).with_name("haechi"))
ORG = "Test Victim Support Centre"
FROM = "takedown@support.example"
# What notices used to be signed with when nothing was configured.
MADE_UP_SENDER = ("Haechi takedown desk", "haechi.invalid")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(haechi_home: Path, clock: FakeClock) -> CaseStore:
    return CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"), clock=clock)


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("HAECHI_ORG_NAME", raising=False)
    monkeypatch.delenv("HAECHI_FROM", raising=False)
    return monkeypatch


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("HAECHI_ORG_NAME", ORG)
    monkeypatch.setenv("HAECHI_FROM", FROM)
    return monkeypatch


@pytest.fixture
def smtp():
    controller, mailbox = start_smtp(free_port())
    yield SmtpServer("127.0.0.1", controller.port), mailbox
    controller.stop()


def approved_notice(store: CaseStore, clock: FakeClock, site: str = "host.example") -> int:
    case_id = store.open_cases([event(site, 1)])[0]
    notice_id = notice_for_case(store.engine, case_id)
    approve_notice(store.engine, notice_id, "alice", clock())
    return notice_id


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_unconfigured_notice_says_so_in_every_language(unconfigured, store,
                                                          language) -> None:
    site = f"gallery-{language}.example"
    site_facts(store.engine, site, preferred=[language])
    notice = notice_json(store.engine, notice_for_case(
        store.engine, store.open_cases([event(site, 1)])[0]))
    assert notice["language"] == language
    assert UNCONFIGURED_ORG in notice["body"] and UNCONFIGURED_EMAIL in notice["body"]
    assert notice["body"].rstrip().endswith(UNCONFIGURED_ORG)  # the signature
    for made_up in MADE_UP_SENDER:
        assert made_up not in notice["body"] and made_up not in str(notice["xarf"])
    assert notice["sender_configured"] is False
    assert notice["sender_missing"] == ["HAECHI_ORG_NAME", "HAECHI_FROM"]
    assert notice["text_has_sender_placeholders"] is True
    assert notice["xarf"][0]["reporter"]["org"] == UNCONFIGURED_ORG


def test_a_configured_notice_is_signed_by_the_institution(configured, store, clock,
                                                          smtp) -> None:
    server, mailbox = smtp
    notice_id = approved_notice(store, clock)
    notice = notice_json(store.engine, notice_id)
    assert notice["sender_configured"] is True and notice["sender_missing"] == []
    assert notice["text_has_sender_placeholders"] is False
    assert notice["body"].rstrip().endswith(ORG) and f"reply to {FROM}" in notice["body"]
    NoticeSender(store.engine, server, clock=clock, backoff=0).send_notice(notice_id)
    message = email.message_from_bytes(mailbox.messages[0].content, policy=policy.default)
    assert message["From"] == f"{ORG} <{FROM}>"
    assert message["Message-ID"].endswith("@support.example>")


def test_sending_without_a_configured_sender_is_refused(unconfigured, store, clock,
                                                        smtp) -> None:
    server, mailbox = smtp
    notice_id = approved_notice(store, clock)
    sender = NoticeSender(store.engine, server, clock=clock, backoff=0)
    with pytest.raises(SendError, match="set HAECHI_ORG_NAME and HAECHI_FROM"):
        sender.send_notice(notice_id)
    with pytest.raises(SendError, match="HAECHI_ORG_NAME and HAECHI_FROM"):
        sender.send_approved()
    assert mailbox.messages == []
    assert notice_json(store.engine, notice_id)["status"] == "approved"
    assert {c["status"] for c in store.list()} == {"approved"}


def test_a_name_without_a_reply_address_is_refused_too(unconfigured, store, clock,
                                                       smtp) -> None:
    server, mailbox = smtp
    unconfigured.setenv("HAECHI_ORG_NAME", ORG)
    notice_id = approved_notice(store, clock)
    notice = notice_json(store.engine, notice_id)
    assert notice["sender_configured"] is False and notice["sender_missing"] == ["HAECHI_FROM"]
    assert notice["body"].rstrip().endswith(ORG) and UNCONFIGURED_EMAIL in notice["body"]
    with pytest.raises(SendError, match=r"set HAECHI_FROM \("):
        NoticeSender(store.engine, server, clock=clock, backoff=0).send_notice(notice_id)
    assert mailbox.messages == []


def test_wording_drafted_before_configuration_is_refused_until_reworded(
        unconfigured, store, clock, smtp) -> None:
    server, mailbox = smtp
    notice_id = approved_notice(store, clock)
    unconfigured.setenv("HAECHI_ORG_NAME", ORG)
    unconfigured.setenv("HAECHI_FROM", FROM)
    sender = NoticeSender(store.engine, server, clock=clock, backoff=0)
    with pytest.raises(SendError, match="drafted before HAECHI_ORG_NAME/HAECHI_FROM were set"):
        sender.send_notice(notice_id)
    assert mailbox.messages == []
    notice = notice_json(store.engine, notice_id)
    assert notice["sender_configured"] is True and notice["text_has_sender_placeholders"]
    reworded = notice["body"].replace(UNCONFIGURED_ORG, ORG).replace(UNCONFIGURED_EMAIL, FROM)
    edit_notice(store.engine, notice_id, notice["subject"], reworded, "alice", clock())
    approve_notice(store.engine, notice_id, "alice", clock())
    sender.send_notice(notice_id)
    assert len(mailbox.messages) == 1


def test_reminders_are_refused_once_the_sender_is_unset(configured, store, clock,
                                                        smtp) -> None:
    server, mailbox = smtp
    notice_id = approved_notice(store, clock)
    NoticeSender(store.engine, server, clock=clock, backoff=0).send_notice(notice_id)
    configured.delenv("HAECHI_ORG_NAME")
    configured.delenv("HAECHI_FROM")
    clock.advance(hours=25)
    sender = NoticeSender(store.engine, server, clock=clock, backoff=0)
    report = Tracker(store.engine, lambda body, victim: True, sender, clock,
                     lambda url: Fetched(200, b"jpeg")).run()
    assert report.resent == [] and "HAECHI_ORG_NAME" in report.errors[0]
    assert len(mailbox.messages) == 1  # the first notice only


def test_haechi_notices_send_names_the_settings_to_make(unconfigured, store, clock,
                                                        smtp) -> None:
    server, mailbox = smtp
    approved_notice(store, clock)
    env = {**os.environ, "HAECHI_SMTP_URL": f"smtp://127.0.0.1:{server.port}"}
    result = subprocess.run([HAECHI, "notices", "send"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 3  # a configuration problem, not a failed input
    assert "HAECHI_ORG_NAME" in result.stderr and "HAECHI_FROM" in result.stderr
    assert mailbox.messages == []


def _logged_in_review_client(store: CaseStore, haechi_home: Path):
    from fastapi.testclient import TestClient

    from takedown.review.accounts import add_reviewer
    from takedown.review.app import create_app

    # An admin: these tests look at the Send button, which only roles that may send see.
    add_reviewer(store.engine, "alice", "a long enough password", role="admin")
    app = create_app(store, LocalStore(haechi_home / "objects"),
                     NoticeSender(store.engine, SmtpServer("127.0.0.1", free_port())),
                     secret="test-secret")
    client = TestClient(app)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": "alice", "password": "a long enough password",
                                "csrf": csrf})
    return client


def test_the_review_app_warns_and_offers_no_send_for_an_unnamed_institution(
        unconfigured, store, clock, haechi_home):
    notice_id = approved_notice(store, clock)
    client = _logged_in_review_client(store, haechi_home)
    page = client.get("/cases/1").text
    assert 'id="sender-warning"' in page and "HAECHI_ORG_NAME and HAECHI_FROM" in page
    assert re.search(r'id="send"[^>]* disabled', page)
    # Named now: no warning, though the text drafted before still has to be reworded.
    unconfigured.setenv("HAECHI_ORG_NAME", ORG)
    unconfigured.setenv("HAECHI_FROM", FROM)
    page = client.get("/cases/1").text
    assert "drafted before the institution was named" in page
    assert notice_json(store.engine, notice_id)["text_has_sender_placeholders"]


def test_the_review_app_marks_a_recipient_the_institution_has_not_vouched_for(
        configured, store, clock, haechi_home):
    approved_notice(store, clock)
    page = _logged_in_review_client(store, haechi_home).get("/cases/1").text
    assert 'id="recipient-warning"' in page and "guessed: abuse@ the site" in page
    assert not re.search(r'id="send"[^>]* disabled', page)


def test_two_runs_sending_at_once_send_a_notice_once(haechi_home, monkeypatch) -> None:
    """The review app and `haechi notices send` (or two nodes) may send at the same moment:
    the first run takes the notice, the second is told so, and the host gets one message. A
    claim left by a run that stopped mid-send is released after STALE_CLAIM, saying so."""
    import asyncio
    import datetime as dt
    import threading

    from aiosmtpd.controller import Controller

    from engines.mail import SmtpServer
    from takedown import sending
    from takedown.cases import CaseStore
    from takedown.database import takedown_engine
    from takedown.notices import approve_notice, notice_for_case, notice_json
    from takedown.sending import NoticeSender, SendError
    from testkit.testweb.server import free_port
    from tests.takedown_helpers import FakeClock, event

    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")
    arrived, release = threading.Event(), threading.Event()

    class SlowMailbox:
        def __init__(self) -> None:
            self.messages: list = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            arrived.set()
            while not release.is_set():
                await asyncio.sleep(0.05)
            return "250 Message accepted"

    mailbox = SlowMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    clock = FakeClock()
    store = CaseStore(takedown_engine(), clock=clock)
    try:
        [case] = store.open_cases([event("twice.example", 1)])
        notice_id = notice_for_case(store.engine, case)
        approve_notice(store.engine, notice_id, "reviewer-1", clock())

        def sender() -> NoticeSender:
            return NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port),
                                clock=clock, backoff=0)

        first = threading.Thread(target=lambda: sender().send_notice(notice_id))
        first.start()
        assert arrived.wait(30)
        assert notice_json(store.engine, notice_id)["status"] == sending.SENDING
        with pytest.raises(SendError, match="being sent by another run"):
            sender().send_notice(notice_id)
        release.set()
        first.join(30)
        assert notice_json(store.engine, notice_id)["status"] == "sent"
        assert len(mailbox.messages) == 1

        # A run that stopped between taking a notice and finishing it.
        [other] = store.open_cases([event("stopped.example", 1)])
        stuck = notice_for_case(store.engine, other)
        approve_notice(store.engine, stuck, "reviewer-1", clock())
        sender()._claim(stuck, clock())
        assert sender().send_approved()["sent"] == []  # taken, not stale yet
        clock.now += sending.STALE_CLAIM + dt.timedelta(minutes=1)
        assert [s["notice"] for s in sender().send_approved()["sent"]] == [stuck]
    finally:
        release.set()
        controller.stop()
