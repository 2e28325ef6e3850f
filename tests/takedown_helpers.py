"""Building blocks for the takedown tests: a fake clock, match events, an SMTP server."""

from __future__ import annotations

import datetime as dt
import hashlib

from aiosmtpd.controller import Controller

from crawler.items import SiteFacts
from crawler.records import CrawlRecords
from matcher.events import MatchEvent

START = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def event(site: str, number: int, victim: str = "V1", at: dt.datetime = START,
          data: bytes | None = None, store_key: str | None = None) -> MatchEvent:
    body = data if data is not None else f"{site}-{number}".encode()
    return MatchEvent(
        victim=victim, algorithm="pdq", distance=6, image_url=f"http://{site}/img/{number}.jpg",
        page_url=f"http://{site}/gallery", site=site,
        sha256=hashlib.sha256(body).hexdigest(), media_type="image/jpeg", fetched_at=at,
        detected_at=at, server_ip="127.0.0.1", status=200, store_key=store_key,
        headers={"Content-Type": ["image/jpeg"]},
    )


def site_facts(engine, site: str, language: str | None = None,
               preferred: list[str] | None = None, contacts: list[str] | None = None) -> None:
    CrawlRecords(engine).record_site(SiteFacts(site=site, language=language,
                                               preferred_languages=preferred or [],
                                               contacts=contacts or []))


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted"


def start_smtp(port: int) -> tuple[Controller, Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, mailbox
