"""Building blocks for the takedown tests: a fake clock, match events, an SMTP server, a
PostgreSQL database of a test's own."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

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


POSTGRES = os.environ.get("HAECHI_TEST_POSTGRES",
                          "postgresql+psycopg://postgres@127.0.0.1/postgres")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server (HAECHI_TEST_POSTGRES), dropped
    afterwards; the test fails, saying so, when there is no server."""
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"haechi_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is needed for this test ({POSTGRES}): {exc}")
    try:
        yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()
