"""Tracking stays honest after a victim withdraws (issue 12): `haechi track` checks the file it
sent against the case's own SHA-256, not against hashes that are gone, so a file still online
is never called removed; a withdrawn victim's changed file is 'changed', and their cases are
no longer pursued. Every request the tracker and the re-check make says it is Haechi's.

Real files on a real HTTP server on loopback (which the outbound policy allows here only), a
real SMTP server for the notices, the real bank and matcher.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from crawler.refetch import LIMITS as REFETCH_LIMITS
from crawler.settings import USER_AGENT
from engines.fetch import ALLOW_SETTING, Fetcher
from engines.mail import SmtpServer
from engines.objects import LocalStore
from matcher.bank import VictimBank
from matcher.confirm import judge_with
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from takedown import audit
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.notices import approve_notice, notice_for_case
from takedown.sending import NoticeSender
from takedown.tracking import Tracker
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb.server import free_port
from tests.takedown_helpers import FakeClock, Mailbox, event, start_smtp

HAECHI = str(Path(sys.executable).with_name("haechi"))
# The loopback web server of these tests: the outbound policy refuses loopback otherwise.
LOOPBACK_ALLOW = "127.0.0.1/32"
SITE = "127.0.0.1"


@dataclass
class Site:
    """A web server on loopback serving `files` (path → bytes; a path not there is a 404),
    recording the path and User-Agent of every request."""

    port: int
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{SITE}:{self.port}{path}"


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    served = Site(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append((self.path, self.headers.get("User-Agent")))
            body = served.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            kind = "text/html" if body.lstrip().startswith(b"<") else "image/jpeg"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer((SITE, 0), Handler)
    served.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(ALLOW_SETTING, f"{os.environ[ALLOW_SETTING]},{LOOPBACK_ALLOW}")
    yield served
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def institution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")


@pytest.fixture
def mail() -> Iterator[tuple[SmtpServer, Mailbox]]:
    """A real SMTP server (aiosmtpd) and the mailbox of what it received."""
    controller, mailbox = start_smtp(free_port())
    yield SmtpServer("127.0.0.1", controller.port), mailbox
    controller.stop()


@pytest.fixture
def smtp(mail: tuple[SmtpServer, Mailbox]) -> SmtpServer:
    return mail[0]


def haechi(*args: str) -> str:
    result = subprocess.run([HAECHI, *args], capture_output=True, text=True, timeout=120,
                            env=os.environ)
    assert result.returncode == 0, result.stderr
    return result.stdout


def register(bank: VictimBank, victim: str, picture: bytes) -> None:
    assert bank.add(victim, ImageHasher().registration_hashes(picture), source="test") > 0
    bank.save()


def reencoded(picture: bytes) -> bytes:
    """The same picture saved again at a lower quality: other bytes, the same picture."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(picture)).convert("RGB").save(buffer, "JPEG", quality=55)
    assert buffer.getvalue() != picture
    return buffer.getvalue()


def sent_cases(store: CaseStore, site: Site, files: dict[str, tuple[str, bytes]],
               smtp: SmtpServer) -> dict[str, int]:
    """A case per path (victim, the bytes it was opened on), its notice approved and sent; the
    site serves each file as matched. Returns the case id of each path."""
    ids = {}
    for number, (path, (victim, data)) in enumerate(sorted(files.items())):
        site.files[path] = data
        opened = store.open_cases([dataclasses.replace(
            event(SITE, number, victim=victim, data=data), image_url=site.url(path))])
        ids[path] = opened[0]
    notice_id = notice_for_case(store.engine, next(iter(ids.values())))
    approve_notice(store.engine, notice_id, "reviewer-1", store.clock())
    result = NoticeSender(store.engine, smtp, clock=store.clock, backoff=0).send_approved()
    assert len(result["sent"]) == 1, result
    assert {c["status"] for c in store.list()} == {"sent"}
    return ids


def test_after_withdraw_track_does_not_call_a_file_still_online_removed(
        haechi_home: Path, tmp_path: Path, site: Site, institution: None,
        smtp: SmtpServer) -> None:
    """The attack of issue 12: 20 sent cases, the victim withdraws, `haechi track` marked all
    removed while each file still answered 200. Now they stay sent, and every request the
    tracker made carried Haechi's User-Agent."""
    picture = encode(synthetic_picture(seed=41))
    (tmp_path / "victim.jpg").write_bytes(picture)
    haechi("register", "--victim", "V1", str(tmp_path / "victim.jpg"))
    # The command runs on the system clock: so do these cases (no reminder is due yet).
    store = CaseStore(takedown_engine(), LocalStore(haechi_home / "objects"))
    ids = sent_cases(store, site, {f"/img/{n}.jpg": ("V1", picture) for n in range(20)},
                     smtp)
    withdrawn = json.loads(haechi("withdraw", "--victim", "V1", "--json"))
    assert withdrawn["hashes_removed"] > 0
    site.requests.clear()
    report = json.loads(haechi("track", "--json"))
    assert report["checked"] == 20 and report["removed"] == []
    assert {c["status"] for c in store.list()} == {"sent"}
    assert sorted(path for path, _ in site.requests) == sorted(ids)
    assert {agent for _, agent in site.requests} == {USER_AGENT}
    # Gone for real: then removed, still without the victim's hashes.
    for path in list(ids)[:5]:
        del site.files[path]
    report = json.loads(haechi("track", "--json"))
    assert sorted(report["removed"]) == sorted(ids[path] for path in list(ids)[:5])


def test_what_the_tracker_decides_for_withdrawn_and_registered_victims(
        haechi_home: Path, site: Site, institution: None, smtp: SmtpServer,
        mail: tuple[SmtpServer, Mailbox]) -> None:
    """The rule of takedown/tracking.py with the bank's word on registrations wired in."""
    bank = VictimBank.open()
    withdrawn_picture = encode(synthetic_picture(seed=42))
    registered_picture = encode(synthetic_picture(seed=43))
    other_picture = encode(synthetic_picture(seed=44))
    register(bank, "V1", withdrawn_picture)
    register(bank, "V2", registered_picture)
    clock = FakeClock()
    store = CaseStore(takedown_engine(), LocalStore(haechi_home / "objects"), clock)
    ids = sent_cases(store, site, {
        "/same.jpg": ("V1", withdrawn_picture), "/changed.jpg": ("V1", withdrawn_picture),
        "/gone.jpg": ("V1", withdrawn_picture), "/reencoded.jpg": ("V2", registered_picture),
        "/replaced.jpg": ("V2", registered_picture)}, smtp)
    bank.withdraw("V1")
    bank.save()
    site.files["/changed.jpg"] = other_picture
    del site.files["/gone.jpg"]
    site.files["/reencoded.jpg"] = reencoded(registered_picture)
    site.files["/replaced.jpg"] = other_picture
    tracker = Tracker(store.engine, judge_with(Matcher(VictimBank.open())),
                      NoticeSender(store.engine, smtp, clock=clock, backoff=0), clock,
                      escalate_after=dt.timedelta(days=3), registered=bank.is_registered)
    clock.advance(hours=25)
    report = tracker.run()
    assert sorted(report.removed) == sorted([ids["/gone.jpg"], ids["/replaced.jpg"]])
    assert report.changed == [ids["/changed.jpg"]]
    assert sorted(report.withdrawn) == sorted([ids["/same.jpg"], ids["/changed.jpg"]])
    assert report.resent == [ids["/reencoded.jpg"]]  # the withdrawn victim's: no reminder
    # Nor any mention in the reminder: it lists the case still pursued, and it alone.
    reminder = email.message_from_bytes(mail[1].messages[-1].content,
                                        policy=email.policy.default)
    assert reminder["Subject"].startswith("[reminder] ")
    text = reminder.get_body(("plain",)).get_content()
    assert site.url("/reencoded.jpg") in text
    assert not any(site.url(path) in text for path in ("/same.jpg", "/changed.jpg"))
    assert len(list(reminder.iter_attachments())) == 1  # its one X-ARF report
    clock.advance(days=3)
    report = tracker.run()
    assert report.escalated == [ids["/reencoded.jpg"]] and report.removed == []
    statuses = {path: store.get(case_id)["status"] for path, case_id in ids.items()}
    assert statuses == {"/same.jpg": "sent", "/changed.jpg": "sent", "/gone.jpg": "removed",
                        "/reencoded.jpg": "escalated", "/replaced.jpg": "removed"}
    # The withdrawn victim's changed file disappears later: that is a removal.
    del site.files["/changed.jpg"]
    assert tracker.run().removed == [ids["/changed.jpg"]]
    assert audit.verify(store.engine).ok


def test_the_recheck_says_it_is_haechi_too(site: Site) -> None:
    site.files["/file.jpg"] = b"\xff\xd8\xff" + bytes(100)
    with Fetcher(REFETCH_LIMITS) as fetch:
        answer = fetch(site.url("/file.jpg"))
    assert answer.sha256 == hashlib.sha256(site.files["/file.jpg"]).hexdigest()
    assert site.requests == [("/file.jpg", USER_AGENT)]
