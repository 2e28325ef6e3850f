"""Cases, notices in eight languages, the audit chain, false matches, evidence bundles,
sending over a real SMTP server, re-sending, escalation and re-uploads (with a fake clock)."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import zipfile
from email import policy
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from engines.mail import SmtpServer
from engines.objects import LocalStore, media_key
from takedown import audit
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.evidence import export_bundle, read_encrypted_copy, verify_bundle
from takedown.ladder import Climber, Ladder
from takedown.notices import approve_notice, notice_for_case, notice_json
from takedown.schema import cases, notices
from takedown.sending import NoticeSender
from takedown.tracking import Fetched, Tracker
from testkit.testweb.server import free_port
from tests.takedown_helpers import FakeClock, event, postgres_database, site_facts, start_smtp

# A word each language's notice must contain, and its legal-basis wording for Korean services.
LANGUAGE_WORDS = {
    "ko": ("삭제 요청", "전기통신사업법"),
    "en": ("Removal request", "Telecommunications Business Act"),
    "zh": ("删除请求", "电气通信事业法"), "ja": ("削除依頼", "電気通信事業法"),
    "ru": ("Запрос на удаление", "телекоммуникационном"), "vi": ("Yêu cầu gỡ bỏ", "Viễn thông"),
    "es": ("Solicitud de retirada", "Telecomunicaciones"),
    "de": ("Löschaufforderung", "Telekommunikationsgeschäftsgesetz"),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def named_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    """The institution notices are sent for: without it sending is refused."""
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")


@pytest.fixture
def store(haechi_home: Path, clock: FakeClock) -> CaseStore:
    media = LocalStore(haechi_home / "objects")
    return CaseStore(takedown_engine(), store=media, clock=clock)


@pytest.mark.parametrize("language", sorted(LANGUAGE_WORDS))
def test_notice_in_each_language_lists_every_url_of_the_host(store, language) -> None:
    site = f"gallery-{language}.example"
    site_facts(store.engine, site, preferred=[language, "en"],
               contacts=[f"mailto:abuse@{site}"])
    opened = store.open_cases([event(site, n) for n in range(3)] + [event("other.example", 9)])
    notice = notice_json(store.engine, notice_for_case(store.engine, opened[0]))
    word, _ = LANGUAGE_WORDS[language]
    assert notice["language"] == language
    assert word in notice["subject"]
    assert notice["to"] == f"abuse@{site}"
    assert notice["urls"] == [f"http://{site}/img/{n}.jpg" for n in range(3)]
    for n in range(3):
        assert f"http://{site}/img/{n}.jpg" in notice["body"]
    assert "other.example" not in notice["body"]
    assert "HAECHI-" in notice["body"]
    assert [r["type"] for r in notice["xarf"]] == ["ncii"] * 3
    assert all(r["xarf_version"] == "4.0.0" for r in notice["xarf"])


@pytest.mark.parametrize("language", sorted(LANGUAGE_WORDS))
def test_korean_services_cite_the_telecommunications_business_act(store, language) -> None:
    site = f"board-{language}.co.kr"
    site_facts(store.engine, site, preferred=[language])
    opened = store.open_cases([event(site, 1)])
    notice = notice_json(store.engine, notice_for_case(store.engine, opened[0]))
    assert notice["legal_basis"] == "kr-tba"
    assert LANGUAGE_WORDS[language][1] in notice["body"]


def test_language_and_recipient_precedence(store, haechi_home, monkeypatch) -> None:
    registry = haechi_home / "sites.csv"
    registry.write_text("site,contact,language,country\n"
                        "reg.example,takedown@reg.example,de,\n")
    monkeypatch.setenv("HAECHI_SITE_REGISTRY", str(registry))
    site_facts(store.engine, "reg.example", language="ja")  # registry beats page language
    site_facts(store.engine, "page.example", language="ru-RU")
    site_facts(store.engine, "sec.example", language="ja", preferred=["xx", "vi"],
               contacts=["https://sec.example/report", "mailto:soc@sec.example"])
    site_facts(store.engine, "nothing.example", language="fr")
    found = {}
    for site in ("reg.example", "page.example", "sec.example", "nothing.example",
                 "127.10.0.9"):
        case_id = store.open_cases([event(site, 1)])[0]
        found[site] = notice_json(store.engine, notice_for_case(store.engine, case_id))
    assert (found["reg.example"]["language"], found["reg.example"]["to"]) == (
        "de", "takedown@reg.example")
    assert (found["page.example"]["language"], found["page.example"]["to"]) == (
        "ru", "abuse@page.example")
    assert (found["sec.example"]["language"], found["sec.example"]["to"]) == (
        "vi", "soc@sec.example")
    assert found["nothing.example"]["language"] == "en"
    assert found["127.10.0.9"]["to"] == "abuse@[127.10.0.9]"


def test_repeated_events_join_the_case_and_a_false_match_never_returns(store) -> None:
    first = store.open_cases([event("a.example", 1)])
    assert store.open_cases([event("a.example", 1)]) == []
    assert len(store.list()) == 1
    store.reject_false_match(first[0], "reviewer-1")
    assert store.get(first[0])["status"] == "rejected"
    # The same file for the same victim, even at another URL, is not raised again...
    again = event("a.example", 1)
    moved = again.__class__(**{**again.__dict__, "image_url": "http://a.example/copy.jpg"})
    assert store.open_cases([again, moved]) == []
    # ...but another victim in it is.
    assert len(store.open_cases([event("a.example", 1, victim="V2")])) == 1


def test_a_false_match_leaves_the_site_notice_before_it_is_sent(store) -> None:
    """Rejected after the notice was approved: the notice must not carry its URL (in the text,
    the case list or the X-ARF reports the message attaches); what was approved listed it, so
    the notice is a draft again, and once approved anew it goes out without it."""
    first, second = store.open_cases([event("a.example", 1), event("a.example", 2)])
    notice_id = notice_for_case(store.engine, first)
    approve_notice(store.engine, notice_id, "reviewer-1", store.clock())
    store.reject_false_match(second, "reviewer-1")
    notice = notice_json(store.engine, notice_id)
    assert notice["status"] == "draft" and notice["cases"] == [first]
    assert "img/2.jpg" not in notice["body"] + json.dumps(notice["xarf"]) + str(notice["urls"])
    assert store.get(first)["status"] == "drafted"
    approve_notice(store.engine, notice_id, "reviewer-1", store.clock())
    assert store.get(first)["status"] == "approved"


def test_audit_chain_detects_tampering(store) -> None:
    store.open_cases([event("a.example", n) for n in range(3)])
    assert audit.verify(store.engine).ok
    with store.engine.begin() as conn:
        victim_row, actor = conn.execute(text(
            "SELECT id, actor FROM audit_log ORDER BY id LIMIT 1 OFFSET 1")).one()
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE id = :id"),
                     {"id": victim_row})
    check = audit.verify(store.engine)
    assert not check.ok and check.first_bad_id == victim_row
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = :actor WHERE id = :id"),
                     {"id": victim_row, "actor": actor})
    assert audit.verify(store.engine).ok
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": victim_row})
    assert not audit.verify(store.engine).ok


def test_sending_over_smtp_records_the_message_id_and_moves_cases(named_sender, store,
                                                                  clock) -> None:
    controller, mailbox = start_smtp(free_port())
    try:
        site_facts(store.engine, "mail.example", preferred=["ko"],
                   contacts=["mailto:abuse@mail.example"])
        opened = store.open_cases([event("mail.example", n) for n in range(2)])
        notice_id = notice_for_case(store.engine, opened[0])
        approve_notice(store.engine, notice_id, "reviewer-1", clock())
        sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port),
                              clock=clock, backoff=0)
        result = sender.send_approved()
    finally:
        controller.stop()
    assert len(result["sent"]) == 1 and not result["failed"]
    assert len(mailbox.messages) == 1
    message = email.message_from_bytes(mailbox.messages[0].content, policy=policy.default)
    assert message["To"] == "abuse@mail.example"
    assert message["Message-ID"] == result["sent"][0]["message_id"]
    body = message.get_body(("plain",)).get_content()
    assert "삭제 요청" in message["Subject"]
    assert all(f"http://mail.example/img/{n}.jpg" in body for n in range(2))
    parts = [p.get_content_type() for p in message.iter_attachments()]
    assert parts == ["application/json", "application/json"]
    assert not [p for p in message.walk() if p.get_content_maintype() in ("image", "video")]
    assert {c["status"] for c in store.list()} == {"sent"}
    assert notice_json(store.engine, notice_id)["message_id"] == message["Message-ID"]


def test_sending_retries_then_reports_a_dead_server(named_sender, store, clock) -> None:
    opened = store.open_cases([event("dead.example", 1)])
    notice_id = notice_for_case(store.engine, opened[0])
    approve_notice(store.engine, notice_id, "reviewer-1", clock())
    sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", free_port()), clock=clock,
                          backoff=0)
    result = sender.send_approved()
    assert result["sent"] == [] and "after 3 attempts" in result["failed"][0]["error"]
    assert store.get(opened[0])["status"] == "approved"


def test_resend_every_24_hours_escalate_then_removed_and_reupload(named_sender, store,
                                                                  clock) -> None:
    controller, mailbox = start_smtp(free_port())
    online = {"http://host.example/img/1.jpg": True}

    def fetcher(url: str) -> Fetched:
        return Fetched(200, b"jpeg") if online[url] else Fetched(404)

    try:
        opened = store.open_cases([event("host.example", 1)])
        notice_id = notice_for_case(store.engine, opened[0])
        approve_notice(store.engine, notice_id, "reviewer-1", clock())
        sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port),
                              clock=clock, backoff=0)
        sender.send_approved()
        import datetime as dt

        # No RDAP party is named (tests/test_ladder.py climbs through them): the case climbs
        # straight to the ladder's authority.
        climber = Climber(store.engine, Ladder.load().with_site_deadline(dt.timedelta(days=3)),
                          finder=lambda engine, site, ip, now: {}, clock=clock)
        tracker = Tracker(store.engine, lambda body, victim: True, sender, clock, fetcher,
                          climber=climber)
        clock.advance(hours=23)
        assert tracker.run().resent == []  # not yet a day
        clock.advance(hours=1, minutes=1)
        assert tracker.run().resent == opened
        assert len(mailbox.messages) == 2
        reminder = email.message_from_bytes(mailbox.messages[1].content, policy=policy.default)
        assert reminder["In-Reply-To"] == notice_json(store.engine, notice_id)["message_id"]
        clock.advance(hours=1)
        assert tracker.run().resent == []  # reminded an hour ago
        clock.advance(days=2)
        report = tracker.run()
        assert report.escalated == opened and report.resent == opened
        assert store.get(opened[0])["status"] == "escalated"
        online["http://host.example/img/1.jpg"] = False
        clock.advance(hours=2)
        assert tracker.run().removed == opened
        case = store.get(opened[0])
        assert case["status"] == "removed" and case["sent_count"] == 3
        # The picture comes back: a new case, linked to the removed one.
        clock.advance(days=1)
        again = store.open_cases([event("host.example", 1)])
        assert len(again) == 1 and store.get(again[0])["reupload_of"] == opened[0]
        assert store.get(opened[0])["status"] == "reuploaded"
    finally:
        controller.stop()
    assert audit.verify(store.engine).ok


def test_evidence_copy_is_encrypted_and_the_bundle_verifies_itself(store, haechi_home,
                                                                   monkeypatch, tmp_path):
    monkeypatch.setenv("HAECHI_EVIDENCE_KEY", Fernet.generate_key().decode())
    data = b"\xff\xd8\xff" + os.urandom(2000)
    e = event("ev.example", 1, data=data)
    key = media_key(e.sha256)
    store.store.put(key, data)
    e = e.__class__(**{**e.__dict__, "store_key": key})
    case_id = store.open_cases([e])[0]
    case = store.get(case_id)
    stored = store.store.get(case["evidence_key"])
    assert data not in stored and read_encrypted_copy(store.store, case["evidence_key"]) == data
    bundle = tmp_path / "bundle.zip"
    export_bundle(bundle, case, audit.entries_for_case(store.engine, case_id),
                  notice_json(store.engine, case["notice_id"]))
    assert verify_bundle(bundle) == []
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(unpacked)
    ok = subprocess.run([sys.executable, str(unpacked / "verify.py")], capture_output=True,
                        text=True)
    assert ok.returncode == 0 and "bundle OK" in ok.stdout
    case_json = json.loads((unpacked / "case.json").read_text())
    case_json["image_url"] = "http://elsewhere.example/"
    (unpacked / "case.json").write_text(json.dumps(case_json))
    bad = subprocess.run([sys.executable, str(unpacked / "verify.py")], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "case.json" in bad.stdout


@pytest.fixture
def postgres_url():
    with postgres_database() as url:
        yield url


def test_case_store_runs_on_postgresql(postgres_url, clock) -> None:
    store = CaseStore(takedown_engine(postgres_url), clock=clock)
    site_facts(store.engine, "pg.example", preferred=["ja"])
    opened = store.open_cases([event("pg.example", n) for n in range(3)])
    assert len(opened) == 3 and store.open_cases([event("pg.example", 0)]) == []
    notice = notice_json(store.engine, notice_for_case(store.engine, opened[0]))
    assert notice["language"] == "ja" and len(notice["urls"]) == 3
    store.reject_false_match(opened[1], "reviewer-1")
    assert audit.verify(store.engine).ok
    with store.engine.connect() as conn:
        statuses = dict(conn.execute(select(cases.c.id, cases.c.status)).all())
        drafts = conn.execute(select(notices.c.id)).all()
    assert statuses == {opened[0]: "drafted", opened[1]: "rejected", opened[2]: "drafted"}
    assert len(drafts) == 1
    store.engine.dispose()


def test_an_approved_notice_edited_is_a_draft_again_and_so_are_its_cases(store, clock) -> None:
    """What its reviewer approved is not what it now says: it and its cases wait for an
    approval of the new wording, and the queue shows them as drafts, not as approved."""
    from takedown.notices import edit_notice

    opened = store.open_cases([event("edited.example", n) for n in range(2)])
    notice_id = notice_for_case(store.engine, opened[0])
    approve_notice(store.engine, notice_id, "reviewer-1", clock())
    assert {store.get(c)["status"] for c in opened} == {"approved"}
    edit_notice(store.engine, notice_id, "Removal request (reworded)", "New wording.",
                "reviewer-2", clock())
    notice = notice_json(store.engine, notice_id)
    assert notice["status"] == "draft"
    assert {store.get(c)["status"] for c in opened} == {"drafted"}
    approve_notice(store.engine, notice_id, "reviewer-1", clock())
    assert {store.get(c)["status"] for c in opened} == {"approved"}
    assert audit.verify(store.engine).ok
