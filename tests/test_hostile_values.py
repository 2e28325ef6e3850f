"""Values written by hostile sites (issue 12): a notice goes to one vetted address, never to a
list a site wrote; no site value, however long or odd, stops other sites' cases, on SQLite or
PostgreSQL; a stream entry that keeps failing goes to the dead-letter stream while the others
become cases."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import nullcontext

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.exc import OperationalError

from crawler.items import FetchedMedia, SiteFacts
from crawler.records import MAX_URL_BYTES, CrawlRecords, fetched_files, sites
from crawler.security_txt import (
    MAX_CONTACTS,
    AddressRefused,
    email_address,
    mailto_address,
    parse_security_txt,
)
from engines.mail import SmtpServer
from matcher.streams import (
    DEAD_LETTERS,
    STREAM,
    RedisStreamSink,
    StreamConsumer,
    dead_letter_count,
)
from takedown import audit
from takedown.cases import CaseStore, url_key
from takedown.consumer import GROUP, MAX_ATTEMPTS, consume, handle
from takedown.consumer import ConsumeReport as Report
from takedown.database import alembic_config, takedown_engine
from takedown.notices import approve_notice, choose_recipient, notice_for_case, notice_json
from takedown.schema import audit_log, cases
from takedown.sending import NoticeSender
from testkit.testweb.server import free_port
from tests.takedown_helpers import FakeClock, event, postgres_database, start_smtp

HOSTILE = "hostile.example"
# The attack of issue 12: the site's security.txt names the victim's employer and a newspaper.
LISTED_CONTACT = ("mailto:abuse@hostile.example,boss@employer.example,"
                  "press@newspaper.example")


def security_txt(*contacts: str) -> str:
    return "".join(f"Contact: {c}\n" for c in contacts) + "Preferred-Languages: en\n"


def crawled(engine: Engine, site: str, text: str) -> None:
    """What the spider does with a site's security.txt: parse it, record the facts."""
    contacts, languages = parse_security_txt(text)
    CrawlRecords(engine).record_site(SiteFacts(site=site, contacts=contacts,
                                               preferred_languages=languages))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, haechi_home) -> Iterator[Engine]:
    """The takedown database on both engines Haechi runs on."""
    if request.param == "sqlite":
        yield takedown_engine()
        return
    with postgres_database() as url:
        engine = takedown_engine(url)
        yield engine
        engine.dispose()


# --- recipients -----------------------------------------------------------------------------

@pytest.mark.parametrize("contact", [
    LISTED_CONTACT,
    "mailto:abuse@hostile.example?cc=boss@employer.example",
    "mailto:abuse@hostile.example?bcc=press@newspaper.example",
    "mailto:abuse@hostile.example?to=boss@employer.example",
    "mailto:abuse@hostile.example%2Cboss@employer.example",  # the comma percent-encoded
    "mailto:abuse@hostile.example;boss@employer.example",
    'mailto:"abuse@hostile.example,boss"@employer.example',  # a quoted local part
    "mailto:Abuse <abuse@hostile.example>",
    "mailto:abuse@[10.0.0.5]",  # the mail relay steered to an internal host
    "mailto:abuse@localhost",
    "mailto:" + "a" * 300 + "@hostile.example",
])
def test_a_contact_naming_anything_but_one_address_yields_no_recipient(contact) -> None:
    with pytest.raises(AddressRefused):
        mailto_address(contact)
    # The file's other Contact lines are not tried: the first mailto is the one the site
    # prefers (RFC 9116), and a site that tried to add recipients is not asked twice.
    second = "mailto:boss@employer.example"
    assert choose_recipient(HOSTILE, [contact, second], None) == (
        f"abuse@{HOSTILE}", "abuse-default")


def test_one_address_is_taken_in_the_order_registry_security_txt_abuse() -> None:
    contacts = ["https://hostile.example/report", "mailto:Security@Hostile.Example?subject=x"]
    assert choose_recipient(HOSTILE, contacts, "mailto:desk@ops.example") == (
        "desk@ops.example", "registry")
    assert choose_recipient(HOSTILE, contacts, None) == (
        "Security@hostile.example", "security.txt")
    # An operator's typo or pasted list is not sent to either: the next source is.
    assert choose_recipient(HOSTILE, contacts, "a@ops.example, b@ops.example") == (
        "Security@hostile.example", "security.txt")
    assert choose_recipient("2001:db8::7", [], None) == ("abuse@[IPv6:2001:db8::7]",
                                                         "abuse-default")
    assert choose_recipient("my_site.example", [], None) == ("", "none")
    assert email_address("abuse@bücher.example") == "abuse@xn--bcher-kva.example"
    for bad in ("a@b@c.example", "a..b@c.example", "a@c.example\r\nBcc: x@y.example",
                "a@-c.example", "a@c.123", "ü@c.example", "", "a@" + "c" * 250 + ".example"):
        with pytest.raises(AddressRefused):
            email_address(bad)


def test_security_txt_values_are_bounded_before_they_are_kept() -> None:
    text = security_txt(*[f"mailto:team{n}@hostile.example" for n in range(40)],
                        "mailto:nul@hostile.example\x00", "x" * 5000)
    text += "Preferred-Languages: " + ", ".join(["en", "<script>", "ko-KR", "x" * 40] * 30)
    contacts, languages = parse_security_txt(text)
    assert len(contacts) == MAX_CONTACTS and all("\x00" not in c for c in contacts)
    assert languages == ["en", "ko-kr"]


def test_the_notice_of_a_listed_contact_reaches_one_address_over_smtp(
        haechi_home, monkeypatch, clock) -> None:
    """The attack end to end: security.txt → site facts → case → notice → approval → SMTP.
    The SMTP server sees one RCPT TO, abuse@ the site, and the reviewer is told why."""
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")
    store = CaseStore(takedown_engine(), clock=clock)
    crawled(store.engine, HOSTILE, security_txt(LISTED_CONTACT))
    opened = store.open_cases([event(HOSTILE, n) for n in range(2)])
    notice_id = notice_for_case(store.engine, opened[0])
    notice = notice_json(store.engine, notice_id)
    assert notice["to"] == f"abuse@{HOSTILE}"
    assert notice["recipient_source"] == "abuse-default"
    assert notice["recipient_confirmed"] is False
    assert "more than one address" in notice["recipient_refused"]
    approve_notice(store.engine, notice_id, "reviewer-1", clock())
    controller, mailbox = start_smtp(free_port())
    try:
        NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port), clock=clock,
                     backoff=0).send_notice(notice_id)
    finally:
        controller.stop()
    assert [m.rcpt_tos for m in mailbox.messages] == [[f"abuse@{HOSTILE}"]]
    received = mailbox.messages[0].content.decode()
    assert "employer.example" not in received and "newspaper.example" not in received


def test_a_registry_address_is_confirmed_and_beats_security_txt(haechi_home, monkeypatch,
                                                                clock) -> None:
    store = CaseStore(takedown_engine(), clock=clock)
    registry = haechi_home / "sites.csv"
    registry.write_text(f"site,contact,language,country\n{HOSTILE},desk@{HOSTILE},,\n")
    monkeypatch.setenv("HAECHI_SITE_REGISTRY", str(registry))
    crawled(store.engine, HOSTILE, security_txt("mailto:boss@employer.example"))
    notice = notice_json(store.engine, notice_for_case(
        store.engine, store.open_cases([event(HOSTILE, 1)])[0]))
    assert (notice["to"], notice["recipient_source"], notice["recipient_confirmed"]) == (
        f"desk@{HOSTILE}", "registry", True)
    assert notice["recipient_refused"] is None


# --- no poison pill -------------------------------------------------------------------------

@pytest.mark.parametrize("contact", [
    "mailto:" + "a" * 330 + "@hostile.example",  # longer than the 320 of notices.recipient
    "mailto:abuse@hostile.example\x00",
    "mailto:ab\x00use@hostile.example?cc=x@y.example",
])
def test_a_hostile_contact_does_not_stop_other_sites_cases(engine, clock, contact) -> None:
    store = CaseStore(engine, clock=clock)
    crawled(engine, HOSTILE, security_txt(contact))
    # A row written before values were checked (or by anything else) holds it as it is.
    with engine.begin() as conn:
        conn.execute(sites.update().where(sites.c.site == HOSTILE), [{"contacts": [contact]}])
    batch = [event("first.example", 1), event(HOSTILE, 1), event("last.example", 1),
             event(HOSTILE, 2)]
    report = store.intake(batch)
    assert len(report.opened) == 4 and not report.failed and not report.drafts_failed
    for site in ("first.example", HOSTILE, "last.example"):
        with engine.connect() as conn:
            statuses = conn.execute(select(cases.c.status).where(cases.c.site == site)).all()
        assert statuses and {s for (s,) in statuses} == {"drafted"}
    notice = notice_json(engine, notice_for_case(engine, report.opened[1]))
    assert notice["to"] == f"abuse@{HOSTILE}" and notice["recipient_refused"]


def test_a_notice_that_cannot_be_drafted_costs_no_case(engine, clock, monkeypatch) -> None:
    store = CaseStore(engine, clock=clock)
    draft = store.drafter.draft_for_site

    def failing(conn, site, at, actor="system"):
        if site == HOSTILE:
            raise ValueError("drafting failed\x00 on a hostile value")
        return draft(conn, site, at, actor=actor)

    monkeypatch.setattr(store.drafter, "draft_for_site", failing)
    report = store.intake([event(HOSTILE, 1), event("fine.example", 1)])
    assert len(report.opened) == 2 and list(report.drafts_failed) == [HOSTILE]
    assert store.get(report.opened[0])["status"] == "detected"
    assert store.get(report.opened[1])["status"] == "drafted"
    with engine.connect() as conn:
        failure = conn.execute(select(audit_log.c.detail).where(
            audit_log.c.action == "notice:draft-failed")).scalar_one()
    assert failure["site"] == HOSTILE and "\x00" not in failure["error"]
    # The next event of the site (or the same one again) drafts the case left detected.
    monkeypatch.setattr(store.drafter, "draft_for_site", draft)
    assert store.intake([event(HOSTILE, 1)]).opened == []
    assert store.get(report.opened[0])["status"] == "drafted"
    assert audit.verify(engine).ok


def test_odd_event_values_fit_their_columns_or_fail_alone(engine, clock) -> None:
    def odd(number: int, **values) -> object:
        base = event("odd.example", number)
        return base.__class__(**{**base.__dict__, **values})

    long_url = "http://odd.example/" + "x" * 3000  # over PostgreSQL's 2,704-byte index entry
    inline = "data:image/jpeg;base64," + "A" * (MAX_URL_BYTES + 10)
    batch = [
        odd(1, image_url=long_url),
        odd(2, image_url="http://odd.example/a b\x00c.jpg", server_ip="not an address",
            headers={"X-Big": ["y" * 100_000], "X-Nul": "a\x00b", "Bad": 7}),
        odd(3, image_url=inline),
        odd(4, victim="V\x00"),  # the only event that cannot be a case
        odd(5, site="a" * 300),
        odd(6, sha256="not a digest"),
        odd(7, image_url="javascript:alert(1)"),
        odd(8, headers={"X-Surrogate": ["\ud800"]}, store_key="../../etc/passwd"),
        event("fine.example", 9),
    ]
    report = CaseStore(engine, clock=clock).intake(batch)
    assert sorted(report.failed) == [3, 4, 5, 6]
    assert "victim" in report.failed[3] and "site" in report.failed[4]
    assert len(report.opened) == 5
    with engine.connect() as conn:
        rows = {r.image_url: r for r in conn.execute(select(cases)).all()}
    assert long_url in rows
    assert rows["http://odd.example/a%20b%00c.jpg"].server_ip is None
    assert len(rows["http://odd.example/a%20b%00c.jpg"].headers["X-Big"][0]) < 3000
    assert any(url.startswith("data:image/jpeg;sha256,") for url in rows)
    assert rows["http://odd.example/img/8.jpg"].store_key is None
    assert audit.verify(engine).ok
    # The long URL's case is found again by its digest: the same event joins it.
    assert CaseStore(engine, clock=clock).open_cases([batch[0]]) == []


def test_fetch_records_and_site_facts_are_bounded_on_both_engines(engine) -> None:
    records = CrawlRecords(engine)
    records.record_site(SiteFacts(
        site="Odd.Example", language="x" * 100, charset="utf-8\x00; drop table",
        contacts=["mailto:a@odd.example\x00", "y" * 5000, "mailto:ok@odd.example"],
        preferred_languages=["en", "z" * 50], security_txt_url="http://odd.example/\x00"))
    facts = records.site("odd.example")
    assert facts.language is None and facts.charset is None
    assert facts.contacts == ["mailto:ok@odd.example"]
    assert facts.preferred_languages == ["en"]
    assert facts.security_txt_url == "http://odd.example/%00"
    records.record_files([FetchedMedia(
        url="http://odd.example/p\x00.jpg", page_url="http://odd.example/", site="odd.example",
        fetched_at=dt.datetime.now(dt.UTC), status=200, media_type="image/jpeg", kind="image",
        sha256="0" * 64, size=1, server_ip="10.0.0.1%" + "e" * 200,
        headers={f"H{n}": ["v\x00" * 5000] for n in range(1000)})])
    with engine.connect() as conn:
        row = conn.execute(select(fetched_files)).one()
    assert row.url == "http://odd.example/p%00.jpg" and row.server_ip is None
    assert len(row.headers) == 64 and "\x00" not in row.headers["H0"][0]


def test_existing_cases_are_found_by_their_url_digest_after_the_upgrade(haechi_home,
                                                                       clock) -> None:
    haechi_home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{haechi_home / 'old.sqlite3'}"
    old = create_engine(url)
    config = alembic_config()
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    first = event("old.example", 1)
    with old.begin() as conn:
        conn.execute(cases.insert().values(
            victim=first.victim, image_url=first.image_url, page_url=first.page_url,
            site=first.site, algorithm="pdq", distance=6, sha256=first.sha256,
            media_type="image/jpeg", headers={}, fetched_at=first.fetched_at,
            detected_at=first.detected_at, status="detected", status_at=first.detected_at,
            signals=[], sent_count=0))
    old.dispose()
    store = CaseStore(takedown_engine(url), clock=clock)
    [case] = store.list()
    assert store.get(case["id"])["image_url_sha256"] == url_key(first.image_url)
    assert store.open_cases([first]) == []  # joins the case it always was
    assert store.get(case["id"])["status"] == "drafted"  # and drafts it


def test_intake_stops_only_when_the_database_does_not_answer(haechi_home, clock) -> None:
    store = CaseStore(takedown_engine(), clock=clock)
    store.engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    with pytest.raises(OperationalError):
        store.intake([event("a.example", 1)])


# --- the stream's dead letters --------------------------------------------------------------

def drain(consumer: StreamConsumer, store: CaseStore, until, timeout: float = 20) -> Report:
    """Consume as a service would, the claim delay passing, until `until(report)` holds."""
    total = Report()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = consume(consumer, store, once=True, block_ms=50)
        for name, value in vars(report).items():
            setattr(total, name, getattr(total, name) + value)
        if until(total):
            return total
        time.sleep(consumer.claim_idle_ms / 1000 + 0.05)
    raise AssertionError(f"not reached in {timeout} s: {total}")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_poison_entry_goes_to_the_dead_letter_stream_while_others_become_cases(
        stream, clock, database) -> None:
    with postgres_database() if database == "postgresql" else nullcontext() as url:
        store = CaseStore(takedown_engine(url), clock=clock)
        crawled(store.engine, HOSTILE, security_txt("mailto:a@hostile.example\x00" + "x" * 400))
        poison = event(HOSTILE, 2)
        poison = poison.__class__(**{**poison.__dict__, "victim": "V\x00"})
        sink = RedisStreamSink(stream)
        sink.deliver([event("a.example", 1), event(HOSTILE, 1), poison, event("b.example", 1)])
        stream.xadd(STREAM, {"schema": "haechi.match-event/1", "event": "[not an object"})
        sink.deliver([event("c.example", 1)])
        consumer = StreamConsumer(stream, GROUP, "consumer-1", claim_idle_ms=100)
        report = drain(consumer, store, lambda r: r.dead_lettered == 2)
        assert (report.cases_opened, report.unreadable, report.failed) == (
            4, 1, MAX_ATTEMPTS - 1)
        assert sorted(c["site"] for c in store.list()) == sorted(
            ["a.example", HOSTILE, "b.example", "c.example"])
        assert {c["status"] for c in store.list()} == {"drafted"}
        assert dead_letter_count(stream) == 2
        letters = [fields for _, fields in stream.xrange(DEAD_LETTERS)]
        assert letters[0][b"error"].startswith(b"unreadable: ")
        assert b"victim" in letters[1][b"error"] and letters[1][b"attempts"] == b"3"
        assert letters[1][b"event"] == stream.xrange(STREAM)[2][1][b"event"]  # kept as it was
        assert stream.xpending(STREAM, GROUP)["pending"] == 0
        store.engine.dispose()


def test_an_entry_that_kills_its_consumers_is_buried_and_an_outage_is_not_counted(
        stream, clock) -> None:
    store = CaseStore(takedown_engine(), clock=clock)
    RedisStreamSink(stream).deliver([event("a.example", 1)])

    class Killed(BaseException):
        """What a consumer sees of the OOM killer: nothing after it."""

    def dies(events):
        raise Killed

    def outage(events):
        raise ConnectionError("the database does not answer")

    consumer = StreamConsumer(stream, GROUP, "consumer-1", claim_idle_ms=50)
    # The database is down: the consumer stops, and the attempt is not held against the entry.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "intake", outage)
        for _ in range(MAX_ATTEMPTS + 1):
            with pytest.raises(ConnectionError):
                consume(consumer, store, once=True, block_ms=50)
            time.sleep(0.1)
        [entry] = consumer.read(block_ms=50)
        assert consumer.attempts([entry.id]) == {entry.id: 0}
        # Handling it kills the consumer every time: after MAX_ATTEMPTS it is buried unread.
        patch.setattr(store, "intake", dies)
        for _ in range(MAX_ATTEMPTS):
            with pytest.raises(Killed):
                handle(consumer, store, [entry], Report())
    report = Report()
    handle(consumer, store, [entry], report)
    assert report.dead_lettered == 1 and store.list() == []
    [(_, letter)] = stream.xrange(DEAD_LETTERS)
    assert b"stopped while handling it" in letter[b"error"]
    assert stream.xpending(STREAM, GROUP)["pending"] == 0


def test_notice_rows_take_what_drafting_stores(engine, clock) -> None:
    """A site name of 252 characters fits notices.site, and neither its Contact nor abuse@
    it is an address (over 254 characters): the notice says it has no recipient."""
    store = CaseStore(engine, clock=clock)
    site = ".".join(label * 60 for label in "abcd") + ".example"
    crawled(engine, site, security_txt("mailto:" + "l" * 64 + "@" + site))
    case_id = store.open_cases([event(site, 1)])[0]
    notice = notice_json(engine, notice_for_case(engine, case_id))
    assert (notice["to"], notice["recipient_source"]) == ("", "none")
    assert "longer than 254" in notice["recipient_refused"]
