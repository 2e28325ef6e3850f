"""The review app as an attacker and an auditor would try it, over HTTP (Starlette's TestClient,
and a real `haechi review serve` for what must hold across processes):

- a guesser is refused after 5 failures for one name, from any address, and after 20 from
  one address for any name; the wait grows; concurrent guesses (SQLite and PostgreSQL) get
  exactly 5 password checks; the refusal reads the same for a name that is no account;
- at most N argon2 checks run at once, counted on a wrapped hasher, and a login that finds no
  slot is asked to try again and not counted as a failure;
- a cookie replayed after logout, after a new password, or after the session's idle or
  absolute end, opens nothing;
- each role can do what roles.py says and is refused (403) the rest; under four eyes the
  person who approved or saw the pictures cannot send;
- every response carries the CSP and the other headers, pages run no script, cookies are
  HttpOnly and SameSite=Strict, and Secure with `__Host-` behind HTTPS;
- an approval of a version of the notice that has since changed is refused.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import html
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from alembic import command
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from engines.mail import SmtpServer
from engines.objects import LocalStore, media_key
from haechi.commands.review import DEFAULT_ROLE_NAME, ROLE_NAMES
from takedown.cases import CaseStore, system_clock
from takedown.database import alembic_config, takedown_engine
from takedown.notices import (
    NoticeError,
    approve_notice,
    draft_version,
    edit_notice,
    notice_for_case,
)
from takedown.review.accounts import add_reviewer
from takedown.review.app import create_app
from takedown.review.passwords import (
    ARGON2_MEMORY_KIB,
    CONCURRENT_CHECKS,
    PASSWORDS,
    PasswordPool,
    argon2_hasher,
)
from takedown.review.roles import DEFAULT_ROLE, ROLES
from takedown.review.security import ReviewSettings
from takedown.review.throttle import address_subject
from takedown.schema import audit_log, login_throttle, notices, reviewers
from takedown.sending import NoticeSender
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb.server import free_port
from tests.takedown_helpers import FakeClock, event, postgres_database, site_facts, start_smtp

HAECHI = str(Path(sys.executable).with_name("haechi"))
PASSWORD = "correct horse battery"
WRONG = "not the password"
# argon2 at its smallest: these tests count checks, and 64 MiB each would only make them slow.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SITE = "galerie.example"
ORG = "Test Victim Support Centre"
FROM = "takedown@support.example"
# A new picture for every case a test opens (the same file on two sites would join one case).
SEEDS = itertools.count(500)
# What the design gives each role (takedown/review/roles.py), written out as the spec.
EXPECTED = {
    "caseworker": {"view", "edit"},
    "reviewer": {"view", "reveal", "edit", "approve", "reject", "alerts", "dispose"},
    "sender": {"view", "send"},
    "auditor": {"view", "audit", "alerts"},
    "admin": {"view", "reveal", "edit", "approve", "reject", "send", "audit", "alerts",
              "dispose"},
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAECHI_ORG_NAME", ORG)
    monkeypatch.setenv("HAECHI_FROM", FROM)


@pytest.fixture
def store(haechi_home: Path, clock: FakeClock) -> CaseStore:
    return CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"), clock=clock)


@pytest.fixture
def smtp():
    controller, mailbox = start_smtp(free_port())
    yield controller.port, mailbox
    controller.stop()


def fast_pool(**options) -> PasswordPool:
    return PasswordPool(FAST_HASHER, **options)


def account(store: CaseStore, name: str, role: str | None = None) -> None:
    add_reviewer(store.engine, name, PASSWORD, role=role, passwords=fast_pool())


def review_app(store: CaseStore, smtp_port: int | None = None,
               passwords: PasswordPool | None = None, **settings: bool):
    media = store.store
    sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", smtp_port or free_port()))
    return create_app(store, media, sender, secret="test-secret",
                      settings=ReviewSettings(**settings), passwords=passwords or fast_pool())


def client(app, address: str = "10.0.0.1", **options) -> TestClient:
    return TestClient(app, client=(address, 50000), follow_redirects=False, **options)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def log_in(browser: TestClient, name: str, password: str = PASSWORD,
           headers: dict[str, str] | None = None) -> httpx.Response:
    token = csrf_of(browser.get("/login").text)
    return browser.post("/login", data={"name": name, "password": password, "csrf": token},
                        headers=headers)


def served_login(browser: httpx.Client) -> httpx.Response:
    """The login page of a `haechi review serve` just started, once it answers."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return browser.get("/login")
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the review app did not start"
            time.sleep(0.1)


def error_of(response: httpx.Response) -> str:
    return html.unescape(re.search(r'id="error">([^<]*)<', response.text).group(1))


def open_site_cases(store: CaseStore, site: str, count: int = 1) -> list[int]:
    """`count` cases on `site`, with their pictures stored (for previews) and one notice."""
    site_facts(store.engine, site, language="en", contacts=[f"mailto:abuse@{site}"])
    events = []
    for number in range(count):
        data = encode(synthetic_picture(seed=next(SEEDS)))
        key = media_key(event(site, number, data=data).sha256)
        store.store.put(key, data)
        events.append(event(site, number, data=data, store_key=key))
    return store.open_cases(events)


def post_form(browser: TestClient, path: str, page: str, **fields: str) -> httpx.Response:
    """Post a form of the case page `page` (its CSRF token and `fields`)."""
    return browser.post(path, data={"csrf": csrf_of(browser.get(page).text), **fields})


def message_after(browser: TestClient, response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    page = browser.get(response.headers["location"]).text
    found = re.search(r'id="message">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


def version_on(browser: TestClient, case_id: int) -> str:
    return re.search(r'name="version" value="([^"]+)"',
                     browser.get(f"/cases/{case_id}").text).group(1)


# --- throttling -------------------------------------------------------------------------


def test_five_failures_lock_a_name_from_every_address_and_the_wait_grows(store, clock) -> None:
    account(store, "alice")
    app = review_app(store)
    here, elsewhere = client(app, "10.0.0.1"), client(app, "10.0.0.2")
    for _ in range(5):
        assert error_of(log_in(here, "alice", WRONG)) == "Wrong name or password."
    refused = log_in(here, "alice")  # the right password, unchecked
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert "Too many failed logins" in error_of(refused) and "wait 1 minute" in error_of(refused)
    assert log_in(elsewhere, "alice").status_code == 429  # the name is locked, not the address
    # A name that is no account is locked alike, and its refusal reads the same.
    for _ in range(5):
        log_in(elsewhere, "nobody", WRONG)
    assert error_of(log_in(elsewhere, "nobody", WRONG)) == error_of(refused)
    # Another app on the same database (another review task) refuses too.
    assert log_in(client(review_app(store), "10.0.0.3"), "alice").status_code == 429
    clock.advance(seconds=61)
    assert error_of(log_in(here, "alice", WRONG)) == "Wrong name or password."  # the 6th
    clock.advance(seconds=90)
    assert "wait 30 seconds" in error_of(log_in(here, "alice"))  # locked 2 minutes now
    clock.advance(seconds=31)
    assert log_in(here, "alice").status_code == 303
    # A success forgets the name's failures.
    assert error_of(log_in(client(app, "10.0.0.4"), "alice", WRONG)) == "Wrong name or password."
    assert log_in(client(app, "10.0.0.4"), "alice").status_code == 303


def test_twenty_failures_from_one_address_lock_it_for_every_name_only(store) -> None:
    account(store, "alice")
    app = review_app(store)
    guesser = client(app, "10.0.0.7")
    for number in range(20):
        assert error_of(log_in(guesser, f"guess{number}", WRONG)) == "Wrong name or password."
    assert log_in(guesser, "alice").status_code == 429
    assert log_in(client(app, "10.0.0.8"), "alice").status_code == 303


def test_behind_the_load_balancer_the_address_it_appended_is_counted(store) -> None:
    """HAECHI_REVIEW_TRUST_PROXY: every request comes from the ALB (10.0.0.1); the client is
    the last X-Forwarded-For entry, and one the client wrote itself counts for nothing."""
    account(store, "alice")
    alb = client(review_app(store, trust_proxy=True), "10.0.0.1")
    for number in range(20):
        log_in(alb, f"guess{number}", WRONG, headers={"X-Forwarded-For": "198.51.100.4"})
    spoofed = {"X-Forwarded-For": "198.51.100.5, 198.51.100.4"}
    assert log_in(alb, "alice", headers=spoofed).status_code == 429
    other = {"X-Forwarded-For": "198.51.100.4, 198.51.100.5"}
    assert log_in(alb, "alice", headers=other).status_code == 303


def test_addresses_are_counted_per_ipv4_and_per_ipv6_64() -> None:
    assert address_subject("203.0.113.9") == "203.0.113.9"
    assert address_subject("::ffff:203.0.113.9") == "203.0.113.9"
    assert address_subject("2001:db8:1:2:aaaa::1") == address_subject("2001:db8:1:2:bbbb::9")
    assert address_subject("2001:db8:1:2::1") != address_subject("2001:db8:1:3::1")


def concurrent_wrong_logins(store: CaseStore, count: int) -> list[int]:
    app = review_app(store, passwords=fast_pool(size=count))
    browsers = [client(app, f"10.0.1.{n}") for n in range(count)]
    tokens = [csrf_of(b.get("/login").text) for b in browsers]
    start = threading.Barrier(count)

    def attempt(number: int) -> int:
        start.wait()
        return browsers[number].post("/login", data={
            "name": "alice", "password": WRONG, "csrf": tokens[number]}).status_code

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return sorted(pool.map(attempt, range(count)))


def test_concurrent_guesses_get_exactly_five_checks(store) -> None:
    account(store, "alice")
    assert concurrent_wrong_logins(store, 12) == [200] * 5 + [429] * 7


def test_throttle_and_sessions_on_postgresql(haechi_home: Path, clock) -> None:
    with postgres_database() as url:
        engine = takedown_engine(url)
        try:
            store = CaseStore(engine, store=LocalStore(haechi_home / "objects"), clock=clock)
            account(store, "alice")
            assert concurrent_wrong_logins(store, 12) == [200] * 5 + [429] * 7
            clock.advance(minutes=2)
            browser = client(review_app(store))
            assert log_in(browser, "alice").status_code == 303
            cookie = browser.cookies["haechi_review"]
            assert browser.get("/").status_code == 200
            browser.post("/logout", data={"csrf": csrf_of(browser.get("/").text)})
            replay = client(review_app(store), cookies={"haechi_review": cookie})
            assert replay.get("/").headers["location"] == "/login"
        finally:
            engine.dispose()


def test_the_lock_holds_for_a_review_app_in_another_process(haechi_home: Path) -> None:
    store = CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"),
                      clock=system_clock)
    account(store, "alice")
    here = client(review_app(store))
    for _ in range(5):
        log_in(here, "alice", WRONG)
    port = free_port()
    server = subprocess.Popen([HAECHI, "review", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as other:
            form = served_login(other)
            refused = other.post("/login", data={"name": "alice", "password": PASSWORD,
                                                 "csrf": csrf_of(form.text)})
        assert refused.status_code == 429 and "Too many failed logins" in refused.text
    finally:
        server.terminate()
        server.wait(10)


# --- the argon2 pool ----------------------------------------------------------------------


class CountingHasher:
    """A PasswordHasher that counts how many of its calls run at once. Each call stays inside
    for HOLD_SECONDS, or until more than `limit` calls are inside (the pool failed: no need to
    wait longer), so that whatever overlap the pool lets through is there to be counted; the
    count, never a time, is what the test asserts."""

    HOLD_SECONDS = 0.3

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0
        self.most = 0
        self.calls = 0
        self._state = threading.Condition()

    def _run(self, work):
        with self._state:
            self.inside += 1
            self.calls += 1
            self.most = max(self.most, self.inside)
            self._state.notify_all()
            self._state.wait_for(lambda: self.inside > self.limit, timeout=self.HOLD_SECONDS)
        try:
            return work()
        finally:
            with self._state:
                self.inside -= 1

    def hash(self, password: str) -> str:
        return self._run(lambda: FAST_HASHER.hash(password))

    def verify(self, hash: str, password: str) -> bool:
        return self._run(lambda: FAST_HASHER.verify(hash, password))


@pytest.mark.parametrize("size", [1, 2, 3])
def test_the_argon2_pool_never_runs_more_than_its_size(store, size: int) -> None:
    logins = 12
    for number in range(logins):
        account(store, f"worker{number}")
    hasher = CountingHasher(limit=size)
    app = review_app(store, passwords=PasswordPool(hasher, size=size, wait=60))
    browsers = [client(app, f"10.0.2.{n}") for n in range(logins)]
    tokens = [csrf_of(b.get("/login").text) for b in browsers]

    def attempt(number: int) -> int:
        return browsers[number].post("/login", data={
            "name": f"worker{number}", "password": PASSWORD, "csrf": tokens[number]}).status_code

    with concurrent.futures.ThreadPoolExecutor(logins) as pool:
        assert list(pool.map(attempt, range(logins))) == [303] * logins
    assert hasher.calls == logins
    assert hasher.most == size  # reached (the wrapper sees overlap), never passed


def test_the_pool_bounds_argon2_to_128_mib_per_process() -> None:
    assert PASSWORDS.size == CONCURRENT_CHECKS == 2
    assert argon2_hasher().memory_cost == ARGON2_MEMORY_KIB == 64 * 1024
    assert CONCURRENT_CHECKS * ARGON2_MEMORY_KIB // 1024 == 128  # MiB, of a task's 1024


def test_a_login_that_finds_no_slot_is_asked_to_try_again_and_not_counted(store) -> None:
    account(store, "alice")
    passwords = fast_pool(size=1, wait=0.05)
    browser = client(review_app(store, passwords=passwords))
    for _ in range(8):  # more than the limit of failures
        with passwords.slot():  # another login holds the only slot
            busy = log_in(browser, "alice")
        assert busy.status_code == 503 and "try again" in error_of(busy)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(login_throttle)).scalar() == 0
    assert log_in(browser, "alice").status_code == 303


# --- sessions -----------------------------------------------------------------------------


def test_a_cookie_replayed_after_logout_opens_nothing(store) -> None:
    account(store, "alice", "admin")
    [case_id] = open_site_cases(store, SITE)
    app = review_app(store)
    browser = client(app)
    assert log_in(browser, "alice").status_code == 303
    cookie = browser.cookies["haechi_review"]
    page = browser.get(f"/cases/{case_id}")
    assert page.status_code == 200
    token = csrf_of(page.text)
    assert browser.post("/logout", data={"csrf": token}).headers["location"] == "/login"
    replay = client(app, cookies={"haechi_review": cookie})
    for path in ("/", f"/cases/{case_id}", f"/cases/{case_id}/preview", "/audit"):
        assert replay.get(path).headers["location"] == "/login"
    assert replay.post(f"/cases/{case_id}/reveal",
                       data={"csrf": token}).headers["location"] == "/login"
    with store.engine.connect() as conn:
        reveals = conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.action == "evidence:reveal")).scalar()
    assert reveals == 0


def test_a_new_password_ends_every_session_of_the_account(store) -> None:
    account(store, "alice")
    app = review_app(store)
    first, second = client(app), client(app, "10.0.0.2")
    log_in(first, "alice")
    log_in(second, "alice")
    assert first.get("/").status_code == second.get("/").status_code == 200
    add_reviewer(store.engine, "alice", "a new long password", passwords=fast_pool())
    assert first.get("/").status_code == second.get("/").status_code == 303


def test_a_session_ends_after_30_idle_minutes_and_after_8_hours(store, clock) -> None:
    account(store, "alice")
    browser = client(review_app(store))
    log_in(browser, "alice")
    clock.advance(minutes=31)
    assert browser.get("/").headers["location"] == "/login"
    log_in(browser, "alice")
    for _ in range(8 * 3 - 1):  # busy all day: a request every 20 minutes
        clock.advance(minutes=20)
        assert browser.get("/").status_code == 200
    clock.advance(minutes=20)
    assert browser.get("/").headers["location"] == "/login"


def test_the_login_form_needs_its_own_signed_token(store) -> None:
    account(store, "alice")
    app = review_app(store)
    token = csrf_of(client(app).get("/login").text)
    other = csrf_of(client(app).get("/login").text)
    forged = f"{token.split('.')[0]}.{'0' * 64}"
    for cookie, form in ((forged, forged), (token, other), (None, token)):
        browser = client(app, cookies={"haechi_login": cookie} if cookie else None)
        assert browser.post("/login", data={"name": "alice", "password": PASSWORD,
                                            "csrf": form}).status_code == 403
    browser = client(app, cookies={"haechi_login": token})
    assert browser.post("/login", data={"name": "alice", "password": PASSWORD,
                                        "csrf": token}).status_code == 303


# --- roles and four eyes --------------------------------------------------------------------


def test_each_role_may_do_what_its_design_says_and_nothing_else(store, configured, smtp) -> None:
    assert {role: set(permissions) for role, permissions in ROLES.items()} == EXPECTED
    port, mailbox = smtp
    app = review_app(store, smtp_port=port)
    for role in EXPECTED:
        account(store, role, role)
    for role, allowed in EXPECTED.items():
        # Fresh cases for each role: a draft notice to approve, an approved one to send.
        [draft] = open_site_cases(store, f"draft-{role}.example")
        [ready] = open_site_cases(store, f"ready-{role}.example")
        approve_notice(store.engine, notice_for_case(store.engine, ready), "someone", store.clock())
        browser = client(app)
        assert log_in(browser, role).status_code == 303
        notice = notice_for_case(store.engine, draft)
        attempts = {
            "view": lambda b=browser, c=draft: b.get(f"/cases/{c}/preview"),
            "reveal": lambda b=browser, c=draft: post_form(b, f"/cases/{c}/reveal", f"/cases/{c}"),
            "edit": lambda b=browser, c=draft, n=notice: post_form(
                b, f"/notices/{n}/edit", f"/cases/{c}", case_id=str(c), subject="Removal",
                body="Please remove."),
            "approve": lambda b=browser, c=draft, n=notice: post_form(
                b, f"/notices/{n}/approve", f"/cases/{c}", case_id=str(c),
                version=version_of_notice(store, n)),
            "send": lambda b=browser, c=ready: post_form(
                b, f"/notices/{notice_for_case(store.engine, c)}/send", f"/cases/{c}",
                case_id=str(c)),
            "reject": lambda b=browser, c=draft: post_form(b, f"/cases/{c}/reject",
                                                          f"/cases/{c}"),
            "audit": lambda b=browser: b.get("/audit"),
        }
        for permission, attempt in attempts.items():
            response = attempt()
            if permission in allowed:
                assert response.status_code in (200, 303), (role, permission, response.text)
                assert response.headers.get("location") != "/login", (role, permission)
            else:
                assert response.status_code == 403, (role, permission)
                assert f"Your role ({role}) may not" in response.json()["detail"]
    senders = sum(1 for permissions in EXPECTED.values() if "send" in permissions)
    assert len(mailbox.messages) == senders


def version_of_notice(store: CaseStore, notice_id: int) -> str:
    with store.engine.connect() as conn:
        return draft_version(conn, notice_id)


def test_a_sender_cannot_see_a_picture_clearly_even_after_a_reviewer_did(store) -> None:
    account(store, "rita", "reviewer")
    account(store, "sam", "sender")
    [case_id] = open_site_cases(store, SITE)
    app = review_app(store)
    rita, sam = client(app), client(app, "10.0.0.2")
    log_in(rita, "rita")
    log_in(sam, "sam")
    post_form(rita, f"/cases/{case_id}/reveal", f"/cases/{case_id}")
    assert rita.get(f"/cases/{case_id}/clear").status_code == 200
    assert sam.get(f"/cases/{case_id}/clear").status_code == 403
    page = sam.get(f"/cases/{case_id}").text
    assert 'id="reveal"' not in page and 'id="approve"' not in page


def test_four_eyes_refuses_the_person_who_approved_or_saw_the_pictures(store, configured,
                                                                       smtp) -> None:
    port, mailbox = smtp
    for name in ("alice", "carol"):
        account(store, name, "admin")
    account(store, "bob", "sender")
    [case_id] = open_site_cases(store, SITE)
    notice = notice_for_case(store.engine, case_id)
    app = review_app(store, smtp_port=port, four_eyes=True)
    alice, carol, bob = (client(app, f"10.0.0.{n}") for n in (1, 2, 3))
    for browser, name in ((alice, "alice"), (carol, "carol"), (bob, "bob")):
        log_in(browser, name)
    page = f"/cases/{case_id}"
    post_form(alice, f"{page}/reveal", page)
    approved = post_form(alice, f"/notices/{notice}/approve", page, case_id=str(case_id),
                         version=version_on(alice, case_id))
    assert message_after(alice, approved) == "Approved."
    assert 'id="four-eyes"' in alice.get(page).text
    assert re.search(r'id="send"[^>]* disabled', alice.get(page).text)
    refused = post_form(alice, f"/notices/{notice}/send", page, case_id=str(case_id))
    assert "You approved this notice" in message_after(alice, refused)
    post_form(carol, f"{page}/reveal", page)
    refused = post_form(carol, f"/notices/{notice}/send", page, case_id=str(case_id))
    assert "You saw this notice's pictures clearly" in message_after(carol, refused)
    assert mailbox.messages == []
    sent = post_form(bob, f"/notices/{notice}/send", page, case_id=str(case_id))
    assert message_after(bob, sent).startswith("Sent")
    assert len(mailbox.messages) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(notices.c.status).where(notices.c.id == notice)).scalar() \
            == "sent"


def test_notices_send_on_the_command_line_keeps_four_eyes_too(store, configured, smtp,
                                                              monkeypatch) -> None:
    """The CLI was the way round the rule (issue 12 leftover): with four eyes it asks who
    sends, and holds a notice that person approved; someone else's run sends it."""
    port, mailbox = smtp
    account(store, "alice", "admin")
    account(store, "bob", "sender")
    account(store, "rita", "reviewer")
    [case_id] = open_site_cases(store, SITE)
    notice = notice_for_case(store.engine, case_id)
    approve_notice(store.engine, notice, "alice", store.clock())
    env = {**os.environ, "HAECHI_FOUR_EYES": "1", "HAECHI_SMTP_URL": f"smtp://127.0.0.1:{port}"}

    def send(*names: str) -> subprocess.CompletedProcess:
        return subprocess.run([HAECHI, "notices", "send", "--json", *names], env=env,
                              capture_output=True, text=True, timeout=120)

    anonymous = send()
    assert anonymous.returncode == 2 and "--as NAME" in anonymous.stderr
    assert send("--as", "rita").returncode == 2  # a reviewer may not send at all
    held = send("--as", "alice")
    assert held.returncode == 0, held.stderr
    result = json.loads(held.stdout)
    assert result["sent"] == [] and result["held"][0]["notice"] == notice
    assert "You approved this notice" in result["held"][0]["reason"]
    assert mailbox.messages == []
    sent = json.loads(send("--as", "bob").stdout)
    assert [s["notice"] for s in sent["sent"]] == [notice] and len(mailbox.messages) == 1
    with store.engine.connect() as conn:
        actors = conn.execute(select(audit_log.c.actor).where(
            audit_log.c.action == "notice:sent")).scalars().all()
    assert actors == ["bob"]


def test_without_four_eyes_one_admin_may_do_it_all(store, configured, smtp) -> None:
    port, mailbox = smtp
    account(store, "alice", "admin")
    [case_id] = open_site_cases(store, SITE)
    notice = notice_for_case(store.engine, case_id)
    alice = client(review_app(store, smtp_port=port))
    log_in(alice, "alice")
    page = f"/cases/{case_id}"
    post_form(alice, f"{page}/reveal", page)
    post_form(alice, f"/notices/{notice}/approve", page, case_id=str(case_id),
              version=version_on(alice, case_id))
    sent = post_form(alice, f"/notices/{notice}/send", page, case_id=str(case_id))
    assert message_after(alice, sent).startswith("Sent") and len(mailbox.messages) == 1


# --- headers and cookies ----------------------------------------------------------------


def assert_protected(response: httpx.Response) -> None:
    headers = response.headers
    policy = headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'none'", "frame-ancestors 'none'",
                      "object-src 'none'", "base-uri 'none'", "form-action 'self'"):
        assert directive in policy, (response.url, policy)
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    if headers.get("content-type", "").startswith("text/html"):
        assert "<script" not in response.text and 'style="' not in response.text
        nonce = re.search(r"style-src 'nonce-([^']+)'", policy).group(1)
        assert f'<style nonce="{nonce}">' in response.text


def test_every_response_carries_the_policy_and_the_usual_headers(store) -> None:
    account(store, "alice", "admin")
    [case_id] = open_site_cases(store, SITE)
    browser = client(review_app(store))
    assert_protected(browser.get("/login"))
    assert_protected(browser.get("/"))  # the redirect to the login page
    log_in(browser, "alice")
    for path in ("/", f"/cases/{case_id}", f"/cases/{case_id}/preview", "/audit",
                 f"/cases/{case_id}/clear", "/cases/999"):  # a refusal and a 404 too
        assert_protected(browser.get(path))
    post_form(browser, f"/cases/{case_id}/reveal", f"/cases/{case_id}")
    clear = browser.get(f"/cases/{case_id}/clear")
    assert clear.headers["content-type"] == "image/jpeg"
    assert_protected(clear)
    nonces = {re.search(r"nonce-([^']+)", browser.get("/").headers["content-security-policy"])
              .group(1) for _ in range(3)}
    assert len(nonces) == 3  # a new nonce for every response


def cookie_headers(response: httpx.Response) -> dict[str, set[str]]:
    """Each cookie the response sets, by name, with its attributes (lower case)."""
    cookies = {}
    for value in response.headers.get_list("set-cookie"):
        pair, *attributes = value.split(";")
        cookies[pair.split("=", 1)[0]] = {a.strip().lower() for a in attributes}
    return cookies


def test_cookies_are_httponly_strict_and_secure_behind_https(store) -> None:
    account(store, "alice")
    plain = client(review_app(store))
    form = plain.get("/login")
    login = log_in(plain, "alice")
    cookies = {**cookie_headers(form), **cookie_headers(login)}
    assert set(cookies) == {"haechi_login", "haechi_review"}
    for attributes in cookies.values():
        assert {"httponly", "samesite=strict", "path=/"} <= attributes
        assert "secure" not in attributes  # over plain HTTP a browser drops a Secure cookie
    assert "strict-transport-security" not in login.headers
    https = client(review_app(store, https=True), base_url="https://testserver")
    form = https.get("/login")
    login = log_in(https, "alice")
    cookies = {**cookie_headers(form), **cookie_headers(login)}
    assert set(cookies) == {"__Host-haechi_login", "__Host-haechi_review"}
    for attributes in cookies.values():
        assert {"httponly", "samesite=strict", "path=/", "secure"} <= attributes
    assert login.headers["strict-transport-security"].startswith("max-age=")
    assert https.get("/").status_code == 200  # the Secure session cookie works over HTTPS


def test_a_setting_that_is_neither_1_nor_0_stops_the_app_with_a_sentence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAECHI_FOUR_EYES", "maybe")
    result = subprocess.run([HAECHI, "review", "serve", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60, env=os.environ)
    assert result.returncode == 3 and "HAECHI_FOUR_EYES" in result.stderr


# --- approvals bound to the version read ------------------------------------------------


def test_an_approval_of_a_version_that_changed_since_is_refused(store) -> None:
    account(store, "alice", "reviewer")
    [case_id] = open_site_cases(store, SITE)
    notice = notice_for_case(store.engine, case_id)
    alice = client(review_app(store))
    log_in(alice, "alice")
    page = f"/cases/{case_id}"
    read = version_on(alice, case_id)
    # Meanwhile a colleague rewords it.
    edit_notice(store.engine, notice, "Another subject", "Other words.", "bob", store.clock())
    stale = post_form(alice, f"/notices/{notice}/approve", page, case_id=str(case_id),
                      version=read)
    assert "changed since you opened it" in message_after(alice, stale)
    # Then the site gets another case: the redraft changes what would be sent again.
    reread = version_on(alice, case_id)
    assert reread != read
    open_site_cases(store, SITE, count=2)
    stale = post_form(alice, f"/notices/{notice}/approve", page, case_id=str(case_id),
                      version=reread)
    assert "changed since you opened it" in message_after(alice, stale)
    with store.engine.connect() as conn:
        assert conn.execute(select(notices.c.status).where(notices.c.id == notice)).scalar() \
            == "draft"
        assert not conn.execute(select(audit_log.c.id).where(
            audit_log.c.action == "notice:approved")).first()
    fresh = post_form(alice, f"/notices/{notice}/approve", page, case_id=str(case_id),
                      version=version_on(alice, case_id))
    assert message_after(alice, fresh) == "Approved."


def test_approve_notice_with_a_stale_version_changes_nothing(store) -> None:
    [case_id] = open_site_cases(store, SITE)
    notice = notice_for_case(store.engine, case_id)
    with pytest.raises(NoticeError, match="reload the page"):
        approve_notice(store.engine, notice, "alice", store.clock(), version="0" * 16)
    with store.engine.connect() as conn:
        assert conn.execute(select(notices.c.status, notices.c.approved_by).where(
            notices.c.id == notice)).one() == ("draft", None)
    approve_notice(store.engine, notice, "alice", store.clock(),
                   version=version_of_notice(store, notice))


# --- accounts -------------------------------------------------------------------------------


def haechi(*argv: str, stdin: str = PASSWORD + "\n") -> subprocess.CompletedProcess:
    return subprocess.run([HAECHI, *argv], input=stdin, capture_output=True, text=True,
                          timeout=120, env=os.environ)


def test_users_add_takes_a_role_and_keeps_it_through_a_new_password() -> None:
    assert tuple(ROLES) == ROLE_NAMES and DEFAULT_ROLE == DEFAULT_ROLE_NAME
    assert "as reviewer" in haechi("users", "add", "rita").stdout
    assert "as sender" in haechi("users", "add", "sam", "--role", "sender").stdout
    assert "as sender" in haechi("users", "add", "sam").stdout  # a new password, same role
    assert "as admin" in haechi("users", "add", "sam", "--role", "admin").stdout
    refused = haechi("users", "add", "sam", "--role", "boss")
    assert refused.returncode == 2 and "invalid choice" in refused.stderr


def test_accounts_made_before_roles_become_reviewers_on_upgrade(haechi_home: Path) -> None:
    url = f"sqlite:///{haechi_home / 'before-roles.sqlite3'}"
    haechi_home.mkdir(parents=True, exist_ok=True)
    earlier = create_engine(url)
    config = alembic_config()
    with earlier.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
        conn.execute(text("INSERT INTO reviewers (name, password_hash, created_at) VALUES "
                          "('old', :hash, :at)"), {"hash": FAST_HASHER.hash(PASSWORD),
                                                   "at": dt.datetime.now(dt.UTC)})
    earlier.dispose()
    engine = takedown_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(reviewers.c.role)).scalar() == "reviewer"
        store = CaseStore(engine, store=LocalStore(haechi_home / "objects"))
        assert log_in(client(review_app(store)), "old").status_code == 303
    finally:
        engine.dispose()
