"""The alert desk (grooming/desk.py mounted on the review app by haechi/commands/review.py), over
HTTP with Starlette's TestClient, on SQLite and on PostgreSQL:

- the queue holds the alerts without a disposition whose excerpt has not expired, urgent
  first and then oldest first;
- an alert's page shows its stage timeline, its evidence lines and the minor evidence with
  its lines, and no other line of the chat, no real name, not the file it came from;
- a reviewer sets each disposition: the alert leaves the queue, the disposition is stored
  with the alert (who, when, what) and the audit log shows it, its chain still verifying;
- the roles without `alerts` are refused the desk, those without `dispose` the form, 403;
- a form without its session's CSRF token is refused and changes nothing;
- alert JSON that no scorer wrote (a huge stage list, fields of the wrong type, markup) shows
  bounded and escaped;
- `haechi chats dispositions --json` prints the labelled line, without words;
- after retention the excerpt is purged as before and its disposition stays, without the
  text and without the note.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engines.mail import SmtpServer
from engines.objects import LocalStore
from grooming.excerpts import DISPOSITIONS, MAX_NOTE, ExcerptStore, dispositions, excerpts
from grooming.scan import ChatScanner
from haechi.commands.review import desk
from takedown import audit
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.review.app import create_app
from takedown.review.roles import ALERTS, DISPOSE, ROLES
from takedown.review.security import ReviewSettings
from takedown.schema import audit_log
from takedown.sending import NoticeSender
from testkit.testweb.server import free_port
from tests.takedown_helpers import START, FakeClock, postgres_database
from tests.test_grooming import KAKAO_PC
from tests.test_review_security import (
    PASSWORD,
    account,
    assert_protected,
    client,
    csrf_of,
    log_in,
    served_login,
)

HAECHI = str(Path(sys.executable).with_name("haechi"))
PSEUDONYM_KEY = "desk-test-key"
# test_grooming's KakaoTalk export, in which a stranger grooms a second-year middle-school
# girl. The scorer keeps five of his lines and one of hers; every other line must stay off the
# desk.
CHAT = KAKAO_PC
NOT_KEPT = ("안녕 ㅎㅎ 뭐해?", "그냥 있어요", "와 나이보다 되게 성숙하다", "홍길동", "민지")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, haechi_home: Path) -> Iterator[str | None]:
    """The database the app and the excerpt store share: the data folder's SQLite, or a new
    PostgreSQL database of the test server's."""
    if request.param == "sqlite":
        yield None
        return
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database())
        yield url
        takedown_engine(url).dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(database: str | None, haechi_home: Path, clock: FakeClock) -> CaseStore:
    return CaseStore(takedown_engine(database), store=LocalStore(haechi_home / "objects"),
                     clock=clock)


@pytest.fixture
def kept(database: str | None) -> ExcerptStore:
    return ExcerptStore(database)


@pytest.fixture
def app(store: CaseStore):
    sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", free_port()))
    return create_app(store, store.store, sender, secret="test-secret",
                      settings=ReviewSettings(), extensions=[desk()])


@pytest.fixture
def alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The alert `haechi chats scan` raises on CHAT, as the scanner makes it."""
    monkeypatch.setenv("HAECHI_PSEUDONYM_KEY", PSEUDONYM_KEY)
    path = tmp_path / "minji and hong.txt"
    path.write_text(CHAT, encoding="utf-8")
    [result] = ChatScanner(sinks=[]).scan_file(path)
    assert result["tier"] == "urgent" and result["file"] == str(path)
    return result


def variant(alert: dict[str, Any], number: int, tier: str = "urgent") -> dict[str, Any]:
    return {**alert, "conversation": f"C-{number:010d}", "tier": tier,
            "score": 0.99 if tier == "urgent" else 0.7}


def logged_in(app, name: str, role: str, store: CaseStore) -> TestClient:
    account(store, name, role)
    browser = client(app)
    assert log_in(browser, name).status_code == 303
    return browser


def queue_ids(browser: TestClient) -> list[int]:
    page = browser.get("/alerts")
    assert page.status_code == 200, page.text
    return [int(n) for n in re.findall(r'href="/alerts/(\d+)" class="alert-link"', page.text)]


def set_disposition(browser: TestClient, alert_id: int, disposition: str, note: str = ""):
    token = csrf_of(browser.get(f"/alerts/{alert_id}").text)
    return browser.post(f"/alerts/{alert_id}/dispose",
                        data={"csrf": token, "disposition": disposition, "note": note})


def message_of(browser: TestClient, response) -> str:
    assert response.status_code == 303, response.text
    found = re.search(r'id="message">([^<]*)<', browser.get(response.headers["location"]).text)
    return html.unescape(found.group(1)) if found else ""


def stored_dispositions(store: CaseStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(dispositions).order_by(dispositions.c.id)).mappings()]


def audit_entries(store: CaseStore, action: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).where(
            audit_log.c.action == action).order_by(audit_log.c.seq)).mappings()]


def test_the_queue_is_urgent_first_then_oldest_and_only_open_alerts(store, kept, app,
                                                                    alert) -> None:
    hours = [START - dt.timedelta(hours=h) for h in range(10, 0, -1)]  # oldest first
    review_oldest = kept.keep(variant(alert, 1, "review"), now=hours[0])
    urgent_newer = kept.keep(variant(alert, 2), now=hours[3])
    urgent_older = kept.keep(variant(alert, 3), now=hours[1])
    review_newer = kept.keep(variant(alert, 4, "review"), now=hours[5])
    disposed = kept.keep(variant(alert, 5), now=hours[0])
    kept.keep(variant(alert, 6), now=START - dt.timedelta(days=91))  # expired, not yet purged
    browser = logged_in(app, "rita", "reviewer", store)
    assert message_of(browser, set_disposition(browser, disposed, "confirmed")) == (
        f"Alert {disposed}: confirmed grooming.")
    assert queue_ids(browser) == [urgent_older, urgent_newer, review_oldest, review_newer]
    page = browser.get("/alerts").text
    assert 'id="waiting">4<' in page
    row = re.search(rf'<tr class="alert-row"><td><a href="/alerts/{urgent_older}".*?</tr>',
                    page, re.S).group(0)
    for shown in ("urgent", "0.99", "C-0000000003", alert["speaker"], alert["target"],
                  "age_probe, flattery, alone, secrecy, media_request, meeting",
                  hours[1].strftime("%Y-%m-%d %H:%M"), "9:00:00"):
        assert shown in row, shown
    assert_protected(browser.get("/alerts"))
    assert_protected(browser.get(f"/alerts/{urgent_older}"))


def test_an_alert_shows_its_timeline_and_lines_and_no_other_chat_text(store, kept, app,
                                                                      alert) -> None:
    alert_id = kept.keep(alert, now=START)
    browser = logged_in(app, "rita", "reviewer", store)
    page = browser.get(f"/alerts/{alert_id}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    timeline = re.search(r'<table id="timeline">.*?</table>', text, re.S).group(0)
    steps = re.findall(r'<tr class="step"><td>(\w+).*?</td><td>(\d+)</td><td>([^<]+)</td>'
                       r'<td>(\w+)</td></tr>', timeline)
    assert steps == [(t["stage"], str(t["message"]), t["time"], t["source"])
                     for t in alert["timeline"]]
    assert "asks for secrecy" in timeline  # each stage in words too
    evidence = re.search(r'<table id="evidence">.*?</table>', text, re.S).group(0)
    for line in alert["evidence"]:
        assert line["text"] in evidence and line["time"] in evidence
    assert evidence.count(alert["speaker"]) == len(alert["evidence"])
    minor = re.search(r'<table id="minor-lines">.*?</table>', text, re.S).group(0)
    assert "중2요" in minor and alert["target"] in minor
    assert re.search(r'id="minor">73% sure<', text)
    assert 'id="reported-speech">0 of the speaker' in text
    for line in NOT_KEPT:
        assert line not in text, line
    assert alert["file"] not in text and "minji and hong" not in text
    [viewed] = audit_entries(store, "alert:view")
    assert viewed["actor"] == "rita" and viewed["detail"] == {"alert": alert_id}
    assert browser.get("/alerts/999999").status_code == 404


def test_a_reviewer_sets_each_disposition_it_leaves_the_queue_and_the_audit_log_shows_it(
        store, kept, app, alert, clock) -> None:
    ids = {name: kept.keep(variant(alert, n), now=START - dt.timedelta(hours=n))
           for n, name in enumerate(DISPOSITIONS, 1)}
    browser = logged_in(app, "rita", "reviewer", store)
    for name, alert_id in ids.items():
        assert alert_id in queue_ids(browser)
        clock.advance(minutes=1)
        response = set_disposition(browser, alert_id, name, note=f"note on {name}")
        assert message_of(browser, response) == f"Alert {alert_id}: {DISPOSITIONS[name]}."
        assert alert_id not in queue_ids(browser)
        page = html.unescape(browser.get(f"/alerts/{alert_id}").text)
        assert f"{DISPOSITIONS[name]}, by rita" in page and f"note on {name}" in page
        assert 'id="dispose"' not in page
    assert queue_ids(browser) == []
    given = stored_dispositions(store)
    assert [(g["excerpt_id"], g["disposition"], g["disposed_by"]) for g in given] == [
        (alert_id, name, "rita") for name, alert_id in ids.items()]
    assert [g["disposed_at"] for g in given] == [
        START + dt.timedelta(minutes=m) for m in range(1, 5)]
    entries = audit_entries(store, "alert:disposed")
    assert [(e["actor"], e["detail"]) for e in entries] == [
        ("rita", {"alert": alert_id, "conversation": variant(alert, n)["conversation"],
                  "speaker": alert["speaker"], "disposition": name})
        for n, (name, alert_id) in enumerate(ids.items(), 1)]
    assert all("note" not in json.dumps(e["detail"]) for e in entries)  # notes stay out
    # A second disposition of the same alert is refused and changes nothing.
    again = set_disposition(browser, ids["confirmed"], "false_alert")
    assert message_of(browser, again) == ("this alert was already disposed of: confirmed "
                                          "grooming, by rita")
    assert len(stored_dispositions(store)) == 4 and len(audit_entries(store, "alert:disposed")) == 4
    assert audit.verify(store.engine).ok
    auditor = logged_in(app, "aude", "admin", store)
    log = html.unescape(auditor.get("/audit").text)
    assert log.count("alert:disposed") == 4 and '"disposition": "referred_police"' in log


def test_each_role_gets_what_roles_py_gives_it_and_403_for_the_rest(store, kept, app,
                                                                    alert) -> None:
    for role, permissions in ROLES.items():
        alert_id = kept.keep(variant(alert, len(role)), now=START)
        browser = logged_in(app, f"{role}-1", role, store)
        home = browser.get("/").text
        queue, page = browser.get("/alerts"), browser.get(f"/alerts/{alert_id}")
        posted = browser.post(f"/alerts/{alert_id}/dispose", data={
            "csrf": csrf_of(home), "disposition": "confirmed"})
        if ALERTS in permissions:
            assert queue.status_code == page.status_code == 200, role
            assert 'href="/alerts"' in home
            assert ('id="dispose"' in page.text) == (DISPOSE in permissions), role
        else:
            assert queue.status_code == page.status_code == 403, role
            assert f"Your role ({role}) may not read grooming alerts" in queue.json()["detail"]
            assert 'href="/alerts"' not in home
        if DISPOSE in permissions:
            assert posted.status_code == 303 and posted.headers["location"].startswith(
                "/alerts?"), role
        else:
            assert posted.status_code == 403, role
            assert f"Your role ({role}) may not" in posted.json()["detail"]
    disposers = {role for role, permissions in ROLES.items() if DISPOSE in permissions}
    assert disposers == {"reviewer", "admin"}
    assert {g["disposed_by"] for g in stored_dispositions(store)} == {
        f"{role}-1" for role in disposers}
    assert client(app).get("/alerts").headers["location"] == "/login"


def test_a_form_without_its_sessions_csrf_token_is_refused(store, kept, app, alert) -> None:
    alert_id = kept.keep(alert, now=START)
    rita = logged_in(app, "rita", "reviewer", store)
    other = logged_in(app, "rob", "reviewer", store)
    path = f"/alerts/{alert_id}/dispose"
    assert rita.post(path, data={"disposition": "confirmed"}).status_code == 422
    assert rita.post(path, data={"disposition": "confirmed", "csrf": "forged"}
                     ).status_code == 403
    assert rita.post(path, data={"disposition": "confirmed",
                                 "csrf": csrf_of(other.get("/alerts").text)}).status_code == 403
    token = csrf_of(rita.get("/alerts").text)
    assert message_of(rita, rita.post(path, data={"disposition": "ignored", "csrf": token})
                      ).startswith("unknown disposition 'ignored'")
    assert rita.post(path, data={"disposition": "confirmed", "csrf": token,
                                 "note": "x" * (MAX_NOTE + 1)}).status_code == 422
    assert stored_dispositions(store) == [] and audit_entries(store, "alert:disposed") == []
    assert queue_ids(rita) == [alert_id]


def test_alert_json_no_scorer_wrote_shows_bounded_and_escaped(store, kept, app, alert) -> None:
    hostile = {
        **alert,
        "target": {"not": "a pseudonym"},
        "stages": ["sexual"] * 100_000 + [7, None, {"x": 1}],
        "timeline": [{"stage": "<b>bold</b>", "message": "7", "time": ["t"], "source": "me"},
                     "not an object"] + [{"stage": "meeting", "message": 1}] * 50_000,
        "evidence": [{"message": 1, "time": 5, "text": "<script>alert('x')</script>",
                      "slang": "not a list", "stages": [{"y": 2}]},
                     {"text": ["a", "list"]}, {"text": "long " * 10_000}],
        "minor_evidence": ["probability", 2],
        "reported_speech": "many",
        "first_alert_message": True,
    }
    alert_id = kept.keep(hostile, now=START)
    strange = kept.keep({**alert, "timeline": "a string", "evidence": {"a": "dict"},
                         "minor_evidence": {"probability": "high", "lines": "x"},
                         "stages": "sexual"}, now=START)
    kept.keep({**alert, "minor_evidence": {"probability": 7.5, "lines": [{"text": 3}]}},
              now=START)
    browser = logged_in(app, "rita", "reviewer", store)
    assert queue_ids(browser)[:2] == [alert_id, strange]
    page = browser.get(f"/alerts/{alert_id}")
    assert page.status_code == 200
    assert_protected(page)  # no <script> in it: the line shows as text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "<b>bold</b>" not in page.text and "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert page.text.count('<tr class="step">') == 63 and "49939 more stage(s)" in page.text
    assert len(page.text) < 200_000
    assert "nobody named" in page.text and 'id="minor">no reading<' in page.text
    for other in (strange, alert_id + 2):
        assert browser.get(f"/alerts/{other}").status_code == 200
    assert message_of(browser, set_disposition(browser, alert_id, "false_alert")).startswith(
        f"Alert {alert_id}")
    [label] = kept.labels()
    assert label["target"] is None and len(label["stages"]) == 32
    assert label["minor_probability"] is None and label["reported_speech"] is None


def test_dispositions_print_the_labelled_data_without_words(store, kept, app, alert,
                                                            database) -> None:
    alert_id = kept.keep(alert, now=START)
    browser = logged_in(app, "rita", "reviewer", store)
    set_disposition(browser, alert_id, "referred_agency", note="called the 1388 line")
    env = {**os.environ, "HAECHI_PSEUDONYM_KEY": PSEUDONYM_KEY}
    if database:
        env["DATABASE_URL"] = database
    result = subprocess.run([HAECHI, "chats", "dispositions", "--json"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert json.loads(line) == {
        "schema": "haechi.grooming-label/1", "conversation": alert["conversation"],
        "speaker": alert["speaker"], "target": alert["target"], "tier": "urgent",
        "score": alert["score"], "stages": alert["stages"], "minor_probability": 0.731,
        "reported_speech": 0, "disposition": "referred_agency",
        "alerted_at": START.isoformat(), "disposed_at": START.isoformat()}
    for words in ("rita", "1388", *(e["text"] for e in alert["evidence"]), "중2요"):
        assert words not in line
    plain = subprocess.run([HAECHI, "chats", "dispositions"], capture_output=True, text=True,
                           env=env, timeout=120)
    assert plain.returncode == 0 and "referred_agency: urgent alert" in plain.stdout


def test_after_retention_the_text_is_purged_and_the_disposition_stays(store, kept, app,
                                                                      alert, clock) -> None:
    alert_id = kept.keep(alert, now=START)
    waiting = kept.keep(variant(alert, 2), now=START)
    browser = logged_in(app, "rita", "reviewer", store)
    set_disposition(browser, alert_id, "confirmed", note="she said 중2요 at message 3")
    later = START + dt.timedelta(days=91)
    assert kept.purge(now=later) == 2  # as today: every expired excerpt, disposed of or not
    with store.engine.connect() as conn:
        assert conn.execute(select(excerpts)).all() == []
    [given] = stored_dispositions(store)
    assert given["excerpt_id"] is None and given["note"] is None
    assert given["text_purged_at"] == later
    assert (given["disposition"], given["disposed_by"]) == ("confirmed", "rita")
    dump = json.dumps(given, default=str, ensure_ascii=False)
    for line in [*(e["text"] for e in alert["evidence"]), "중2요", "엄마"]:
        assert line not in dump
    [label] = kept.labels()
    assert label["disposition"] == "confirmed" and label["stages"] == alert["stages"]
    clock.advance(days=91)
    browser = client(app)  # the session ended long ago
    assert log_in(browser, "rita").status_code == 303
    assert browser.get(f"/alerts/{alert_id}").status_code == 404
    assert browser.get(f"/alerts/{waiting}").status_code == 404
    # An excerpt kept after the purge may get the old one's id (SQLite reuses the largest):
    # it is a new alert, open, not the old disposition's.
    newer = kept.keep(variant(alert, 3), now=clock())
    assert queue_ids(browser) == [newer]


def test_haechi_review_serve_mounts_the_desk(haechi_home: Path, alert) -> None:
    engine = takedown_engine()
    account(CaseStore(engine, store=LocalStore(haechi_home / "objects")), "rita", "reviewer")
    alert_id = ExcerptStore().keep(alert)
    port = free_port()
    server = subprocess.Popen([HAECHI, "review", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
            form = served_login(browser)
            assert browser.get("/alerts").headers["location"] == "/login"
            browser.post("/login", data={"name": "rita", "password": PASSWORD,
                                         "csrf": csrf_of(form.text)})
            queue = browser.get("/alerts")
            assert queue.status_code == 200 and f'href="/alerts/{alert_id}"' in queue.text
            assert_protected(queue)
    finally:
        server.terminate()
        server.wait(10)
