"""Notices: one removal request per host listing all of that host's open URLs, drafted the
moment a case opens, in the site's language, for a person to approve.

Language: the site's security.txt Preferred-Languages, then the registry, then the page
language, then English. Recipient: security.txt Contact (mailto), then the registry, then
abuse@ the domain. The text comes from one Jinja2 template per language; the X-ARF v4 reports
(one per URL) travel with it as JSON. No notice ever carries an image.

The sender is the institution the installation names (HAECHI_ORG_NAME, replies to HAECHI_FROM).
Until both are set a notice says so in place of the signer and the reply address, instead of
pretending to come from a desk that does not exist, and takedown/sending.py refuses to send it.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Connection, Engine, select

from crawler.records import CrawlRecords
from takedown import audit
from takedown.registry import site_override
from takedown.schema import cases, notices
from takedown.status import transition

LANGUAGES = ("ko", "en", "zh", "ja", "ru", "vi", "es", "de")
DEFAULT_LANGUAGE = "en"
# Hours a host is given to remove the content, counted from the notice's drafting.
DEADLINE_HOURS = int(os.environ.get("HAECHI_NOTICE_DEADLINE_HOURS", "48"))
# Case statuses whose URLs a new or refreshed draft lists.
DRAFTABLE = ("detected", "drafted")

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates") / "notices"),
    autoescape=False,  # plain-text e-mail
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


# What a notice says in place of the institution and its reply address when the installation
# has not named them. A made-up desk name would read as a real sender to the host receiving
# it; these read as what they are, in every language, and a notice carrying them is never sent.
UNCONFIGURED_ORG = "[institution not configured: set HAECHI_ORG_NAME]"
UNCONFIGURED_EMAIL = "[reply address not configured: set HAECHI_FROM]"
# The domain X-ARF reports and Message-IDs name while the reply address is unset (RFC 2606).
UNCONFIGURED_DOMAIN = "invalid"


@dataclass(frozen=True)
class Reporter:
    """The institution a notice is sent on behalf of, and where hosts reply."""

    org: str
    email: str

    @classmethod
    def from_environment(cls) -> Reporter:
        """HAECHI_ORG_NAME and HAECHI_FROM, or the not-configured placeholders."""
        org = os.environ.get("HAECHI_ORG_NAME", "").strip()
        email = os.environ.get("HAECHI_FROM", "").strip()
        return cls(org or UNCONFIGURED_ORG, email or UNCONFIGURED_EMAIL)

    @property
    def missing_settings(self) -> list[str]:
        """The environment variables still to set before notices can be sent."""
        return [name for name, value, placeholder in (
            ("HAECHI_ORG_NAME", self.org, UNCONFIGURED_ORG),
            ("HAECHI_FROM", self.email, UNCONFIGURED_EMAIL)) if value == placeholder]

    @property
    def configured(self) -> bool:
        return not self.missing_settings

    @property
    def domain(self) -> str:
        if self.email == UNCONFIGURED_EMAIL or "@" not in self.email:
            return UNCONFIGURED_DOMAIN
        return self.email.rsplit("@", 1)[-1]


def has_sender_placeholders(*texts: str) -> bool:
    """Whether a notice's wording still says the institution or reply address is not set
    (drafted before HAECHI_ORG_NAME/HAECHI_FROM were, and not reworded since)."""
    return any(marker in text for text in texts
               for marker in (UNCONFIGURED_ORG, UNCONFIGURED_EMAIL))


def _supported(tag: str | None) -> str | None:
    if not tag:
        return None
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGUAGES else None


def choose_language(preferred: list[str], registry: str | None, page: str | None) -> str:
    for tag in [*preferred, registry, page]:
        found = _supported(tag)
        if found:
            return found
    return DEFAULT_LANGUAGE


def choose_recipient(site: str, contacts: list[str], registry: str | None) -> tuple[str, str]:
    """(address, where it came from)."""
    for contact in contacts:
        if contact.lower().startswith("mailto:"):
            return contact[7:].split("?")[0], "security.txt"
    if registry:
        return registry.removeprefix("mailto:"), "registry"
    host = site.strip("[]")
    if host.replace(".", "").isdigit() or ":" in host:
        return f"abuse@[{host}]", "abuse-address"  # an address literal (RFC 5321)
    return f"abuse@{host}", "abuse-address"


def legal_basis(site: str, country: str | None) -> str:
    """The Telecommunications Business Act for Korean services, a general NCII clause else."""
    return "kr-tba" if country == "KR" or site.endswith(".kr") else "ncii"


def reference_of(case_id: int) -> str:
    return f"HAECHI-{case_id:06d}"


def xarf_reports(rows: list[Any], reporter: Reporter, at: dt.datetime) -> list[dict[str, Any]]:
    """One X-ARF v4 report (category content, type ncii) per URL."""
    domain = reporter.domain
    return [
        {
            "xarf_version": "4.0.0",
            "report_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"haechi:{row['id']}")),
            "timestamp": row["detected_at"].isoformat(),
            "reporter": {"org": reporter.org, "contact": reporter.email, "domain": domain},
            "sender": {"org": reporter.org, "contact": reporter.email, "domain": domain},
            "source_identifier": row["server_ip"] or row["site"],
            "category": "content",
            "type": "ncii",
            "url": row["image_url"],
            "evidence_source": "automated_hash_match",
            "description": f"Intimate image published without consent; case "
                           f"{reference_of(row['id'])}; notified {at.isoformat()}",
            "tags": [f"hash:sha256:{row['sha256']}", f"match:{row['algorithm']}"],
        }
        for row in rows
    ]


class NoticeDrafter:
    """Keeps one draft notice per host up to date with that host's open cases."""

    def __init__(self, engine: Engine, records: CrawlRecords | None = None,
                 reporter: Reporter | None = None) -> None:
        self.engine = engine
        self.records = records or CrawlRecords(engine)
        self._reporter = reporter

    @property
    def reporter(self) -> Reporter:
        """The reporter given, else the environment's, read at each use as notice_json reads
        it, so what a notice is signed with, shown with and sent with always agree."""
        return self._reporter or Reporter.from_environment()

    def draft_for_site(self, conn: Connection, site: str, at: dt.datetime,
                       actor: str = "system") -> int | None:
        """(Re)draft the host's open notice so it lists every draftable case of the host."""
        rows = conn.execute(
            select(cases).where(cases.c.site == site, cases.c.status.in_(DRAFTABLE))
            .order_by(cases.c.id)
        ).mappings().all()
        if not rows:
            return None
        notice = conn.execute(
            select(notices).where(notices.c.site == site, notices.c.status == "draft")
            .order_by(notices.c.id.desc()).limit(1)
        ).mappings().first()
        facts = self.records.site(site)
        override = site_override(site)
        language = choose_language(facts.preferred_languages if facts else [],
                                   override.language, facts.language if facts else None)
        recipient, source = choose_recipient(site, facts.contacts if facts else [],
                                             override.contact)
        legal = legal_basis(site, override.country)
        deadline = at + dt.timedelta(hours=DEADLINE_HOURS)
        subject, body = render(language, site=site, reporter=self.reporter, legal=legal,
                               reference=reference_of(rows[0]["id"]), deadline=deadline,
                               rows=rows)
        values = {"site": site, "language": language, "recipient": recipient,
                  "recipient_source": source, "legal_basis": legal, "updated_at": at,
                  "deadline": deadline}
        if notice is None:
            result = conn.execute(notices.insert(), [{
                **values, "subject": subject, "body": body, "edited": False,
                "status": "draft", "created_at": at, "attempts": 0,
            }])
            notice_id = int(result.inserted_primary_key[0])
        else:
            notice_id = notice["id"]
            if not notice["edited"]:  # a reviewer's wording is never overwritten
                values.update(subject=subject, body=body)
            conn.execute(notices.update().where(notices.c.id == notice_id), [values])
        for row in rows:
            if row["status"] == "detected":
                transition(conn, row["id"], "drafted", actor=actor, at=at,
                           detail={"notice": notice_id}, notice_id=notice_id)
            elif row["notice_id"] != notice_id:
                conn.execute(cases.update().where(cases.c.id == row["id"]),
                             [{"notice_id": notice_id}])
        audit.append(conn, actor=actor, action="notice:drafted", at=at, notice_id=notice_id,
                     detail={"cases": [r["id"] for r in rows], "language": language})
        return notice_id


def render(language: str, *, site: str, reporter: Reporter, legal: str, reference: str,
           deadline: dt.datetime, rows: list[Any]) -> tuple[str, str]:
    """(subject, body) of a notice in `language`."""
    text = _templates.get_template(f"{language}.txt.j2").render(
        site=site, reporter=reporter, legal=legal, reference=reference,
        deadline=deadline.strftime("%Y-%m-%d %H:%M UTC"),
        urls=[{
            "url": r["image_url"], "page_url": r["page_url"],
            "detected_at": r["detected_at"].strftime("%Y-%m-%d %H:%M:%S UTC"),
            "sha256": r["sha256"], "algorithm": r["algorithm"], "distance": r["distance"],
            "second": r["second"],
        } for r in rows],
    )
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n")


def notice_json(engine: Engine, notice_id: int, reporter: Reporter | None = None
                ) -> dict[str, Any]:
    """The notice with the URLs it lists and their X-ARF reports."""
    reporter = reporter or Reporter.from_environment()
    with engine.connect() as conn:
        notice = conn.execute(select(notices).where(notices.c.id == notice_id)).mappings().one()
        rows = conn.execute(select(cases).where(cases.c.notice_id == notice_id)
                            .order_by(cases.c.id)).mappings().all()
    return {
        "id": notice["id"], "site": notice["site"], "status": notice["status"],
        "language": notice["language"], "to": notice["recipient"],
        "recipient_source": notice["recipient_source"], "subject": notice["subject"],
        "body": notice["body"], "legal_basis": notice["legal_basis"],
        "urls": [r["image_url"] for r in rows], "cases": [r["id"] for r in rows],
        "deadline": notice["deadline"].isoformat() if notice["deadline"] else None,
        "message_id": notice["message_id"],
        "xarf": xarf_reports(list(rows), reporter, notice["updated_at"]),
        # False until HAECHI_ORG_NAME and HAECHI_FROM are set: such a notice cannot be sent.
        "sender_configured": reporter.configured,
        "sender_missing": reporter.missing_settings,
        # The stored wording still names no institution (drafted before it was configured).
        "text_has_sender_placeholders": has_sender_placeholders(notice["subject"], notice["body"]),
    }


class NoticeError(ValueError):
    """A notice action that cannot be done (unknown notice, wrong state); says which."""


def notice_for_case(engine: Engine, case_id: int) -> int:
    with engine.connect() as conn:
        notice_id = conn.execute(select(cases.c.notice_id).where(cases.c.id == case_id)).scalar()
    if notice_id is None:
        raise NoticeError(f"case {case_id} has no notice (no such case, or not drafted yet)")
    return int(notice_id)


def edit_notice(engine: Engine, notice_id: int, subject: str, body: str, reviewer: str,
                at: dt.datetime) -> None:
    """A reviewer's wording replaces the draft, and later redrafts keep it."""
    with engine.begin() as conn:
        status = conn.execute(select(notices.c.status).where(notices.c.id == notice_id)).scalar()
        if status not in ("draft", "approved"):
            raise NoticeError(f"notice {notice_id} is {status}; only drafts can be edited")
        conn.execute(notices.update().where(notices.c.id == notice_id), [{
            "subject": subject.strip(), "body": body, "edited": True, "updated_at": at,
            "status": "draft"}])
        audit.append(conn, actor=reviewer, action="notice:edited", at=at, notice_id=notice_id,
                     detail={"subject": subject.strip()})


def approve_notice(engine: Engine, notice_id: int, reviewer: str, at: dt.datetime) -> None:
    """A person approves the notice: it and its cases are ready to send."""
    with engine.begin() as conn:
        status = conn.execute(select(notices.c.status).where(notices.c.id == notice_id)).scalar()
        if status != "draft":
            raise NoticeError(f"notice {notice_id} is {status}; only a draft can be approved")
        conn.execute(notices.update().where(notices.c.id == notice_id), [{
            "status": "approved", "approved_by": reviewer, "approved_at": at}])
        audit.append(conn, actor=reviewer, action="notice:approved", at=at,
                     notice_id=notice_id)
        for case_id in conn.execute(select(cases.c.id).where(
                cases.c.notice_id == notice_id, cases.c.status == "drafted")).scalars().all():
            transition(conn, case_id, "approved", actor=reviewer, at=at,
                       detail={"notice": notice_id})
