"""Notices: one removal request per host listing all of that host's open URLs, drafted the
moment a case opens, in the site's language, for a person to approve.

Language: the site's security.txt Preferred-Languages, then the registry, then the page
language, then English. The text comes from one Jinja2 template per language; the X-ARF v4
reports (one per URL, built by takedown/xarf.py) travel with it as JSON. No notice ever
carries an image. A URL that is a segment of a streamed video is listed with its stream's
manifest and the time in the video, so the host can find the video itself, not only one of
its hundreds of segments.

Recipient: exactly one checked address (crawler/security_txt.py says which), never a list a
site wrote. The registry's (the operator's word) first; then the site's first security.txt
mailto Contact, if it names one address and no other recipient; then abuse@ the site. The
notice lists a victim's URLs and says what they show, so a site must not be able to copy it to
an employer or a newspaper, and every recipient the operator did not name is shown to the
reviewer as unconfirmed (notice_json's `recipient_confirmed`).

The sender is the institution the installation names (HAECHI_ORG_NAME, replies to HAECHI_FROM).
Until both are set a notice says so in place of the signer and the reply address, instead of
pretending to come from a desk that does not exist, and takedown/sending.py refuses to send it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Connection, Engine, Select, select

from crawler.records import CrawlRecords, sites
from crawler.security_txt import AddressRefused, email_address, mailto_address
from engines.fetch import ip_literal
from engines.settings import current
from takedown import audit
from takedown.references import reference_of, stream_of
from takedown.registry import operator_address, site_override
from takedown.schema import cases, escalations, notices
from takedown.status import transition
from takedown.xarf import xarf_reports

log = logging.getLogger(__name__)

LANGUAGES = ("ko", "en", "zh", "ja", "ru", "vi", "es", "de")
DEFAULT_LANGUAGE = "en"
# Case statuses whose URLs a new or refreshed draft lists.
DRAFTABLE = ("detected", "drafted")
# The rung of the escalation ladder (takedown/ladder.py) a notice to the site itself is at.
SITE_RUNG = "site"
# Hex digits of a draft's version (draft_version): 64 bits, enough that a change is never
# mistaken for the version a reviewer read.
DRAFT_VERSION_CHARS = 16
# The fields of notice_json a version covers: what the reviewer reads before approving.
VERSIONED = ("to", "language", "subject", "body", "deadline", "cases")

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
        settings = current()
        return cls(settings.org_name or UNCONFIGURED_ORG,
                   settings.notice_from or UNCONFIGURED_EMAIL)

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


# Where a notice's one recipient came from. Only the registry is the operator's own word; a
# recipient from anywhere else is for the reviewer to confirm before approving.
FROM_REGISTRY = "registry"
FROM_SECURITY_TXT = "security.txt"
FROM_ABUSE_DEFAULT = "abuse-default"
NO_RECIPIENT = "none"  # not even abuse@ the site is an address (e.g. an '_' in its host name)
FROM_LADDER = "ladder"  # the authority's address in the institution's ladder file
# Sources that are the operator's own word: a notice to them needs no recipient check.
OPERATOR_SOURCES = (FROM_REGISTRY, FROM_LADDER)
# Names notices drafted by earlier versions stored for the same sources.
LEGACY_SOURCES = {"abuse-address": FROM_ABUSE_DEFAULT}


def security_txt_recipient(contacts: list[str]) -> tuple[str | None, str | None]:
    """(address, why refused) from the site's first mailto Contact, the one RFC 9116 says it
    prefers. If that one is refused the file yields no recipient at all: a site that tried to
    name several recipients is not asked again through its other Contact lines."""
    for contact in contacts:
        if isinstance(contact, str) and contact.lower().startswith("mailto:"):
            try:
                return mailto_address(contact), None
            except AddressRefused as exc:
                return None, str(exc)
    return None, None


def abuse_address(site: str) -> str:
    """abuse@ the site's domain, or at its address literal for a site known by its IP (RFC
    5321 section 4.1.3); AddressRefused if that is no address."""
    ip = ip_literal(site)
    if ip is None:
        return email_address(f"abuse@{site.strip('[]')}")
    literal = f"IPv6:{ip.compressed}" if ip.version == 6 else str(ip)
    return email_address(f"abuse@[{literal}]", address_literal=True)


def choose_recipient(site: str, contacts: list[str], registry: str | None) -> tuple[str, str]:
    """(address, where it came from): the registry's, else the site's security.txt mailto
    Contact (see security_txt_recipient), else abuse@ the site; ("", "none") if none is an
    address."""
    if registry:
        try:
            return operator_address(registry), FROM_REGISTRY
        except AddressRefused as exc:
            log.warning("the registry's contact for %s is not used: %s", site, exc)
    address, refused = security_txt_recipient(contacts)
    if address:
        return address, FROM_SECURITY_TXT
    if refused:
        log.warning("the security.txt Contact of %s is not used: %s", site, refused)
    try:
        return abuse_address(site), FROM_ABUSE_DEFAULT
    except AddressRefused:
        return "", NO_RECIPIENT


def legal_basis(site: str, country: str | None) -> str:
    """The Telecommunications Business Act for Korean services, a general NCII clause else."""
    return "kr-tba" if country == "KR" or site.endswith(".kr") else "ncii"


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
            select(notices).where(notices.c.site == site, notices.c.status == "draft",
                                  notices.c.rung == SITE_RUNG)
            .order_by(notices.c.id.desc()).limit(1)
        ).mappings().first()
        facts = self.records.site(site)
        override = site_override(site)
        language = choose_language(facts.preferred_languages if facts else [],
                                   override.language, facts.language if facts else None)
        recipient, source = choose_recipient(site, facts.contacts if facts else [],
                                             override.contact)
        legal = legal_basis(site, override.country)
        deadline = at + dt.timedelta(hours=current().notice_deadline_hours)
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
            # Only while it is still a draft: an approval that committed after this draft was
            # read must not be rewritten under the reviewer (the next draft makes a new one).
            updated = conn.execute(notices.update().where(
                notices.c.id == notice_id, notices.c.status == "draft").values(**values))
            if updated.rowcount != 1:
                raise NoticeError(f"notice {notice_id} was approved while it was being "
                                  "redrafted; its cases are drafted again next time")
        for row in rows:
            if row["status"] == "detected":
                transition(conn, row["id"], "drafted", actor=actor, at=at,
                           detail={"notice": notice_id}, notice_id=notice_id)
            elif row["notice_id"] != notice_id:
                conn.execute(cases.update().where(cases.c.id == row["id"]),
                             [{"notice_id": notice_id}])
        audit.append(conn, actor=actor, action="notice:drafted", at=at, notice_id=notice_id,
                     detail={"cases": [r["id"] for r in rows], "language": language,
                             "recipient": recipient, "recipient_source": source})
        return notice_id


def render(language: str, *, site: str, reporter: Reporter, legal: str, reference: str,
           deadline: dt.datetime, rows: list[Any], folder: str = "", **extra: Any
           ) -> tuple[str, str]:
    """(subject, body) of a notice in `language`: the site's (templates/notices/), or with
    `folder` a rung's of the escalation ladder (takedown/ladder.py), which are given `extra`
    (the rung, its party, the notices sent before).

    An item found in a segment of a streamed video names the stream's manifest and the time in
    the video (H:MM:SS) on a line of its own, in place of the second within the file that a
    plain video's item gives; every other item reads as it always did."""
    items = []
    for r in rows:
        stream = stream_of(r)
        items.append({
            "url": r["image_url"], "page_url": r["page_url"],
            "detected_at": r["detected_at"].strftime("%Y-%m-%d %H:%M:%S UTC"),
            "sha256": r["sha256"], "algorithm": r["algorithm"], "distance": r["distance"],
            "second": r["second"],
            "manifest_url": stream["manifest_url"] if stream else None,
            "time": stream["time"] if stream else None,
            "server_ip": r.get("server_ip"), "evidence_key": r.get("evidence_key"),
        })
    name = f"{folder}/{language}.txt.j2" if folder else f"{language}.txt.j2"
    text = _templates.get_template(name).render(
        site=site, reporter=reporter, legal=legal, reference=reference,
        deadline=deadline.strftime("%Y-%m-%d %H:%M UTC"), urls=items, **extra,
    )
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n")


def listed_cases(notice_id: int, rung: str) -> Select:
    """The cases a notice lists, in case order: the site's notice lists the cases that name
    it (cases.notice_id); a notice to a rung above the site lists the cases whose climb
    reached it there (escalations.notice_id)."""
    if rung == SITE_RUNG:
        return select(cases).where(cases.c.notice_id == notice_id).order_by(cases.c.id)
    return (select(cases).join(escalations, escalations.c.case_id == cases.c.id)
            .where(escalations.c.notice_id == notice_id).order_by(cases.c.id))


def notice_json(engine: Engine, notice_id: int, reporter: Reporter | None = None
                ) -> dict[str, Any]:
    """The notice with the URLs it lists and their X-ARF reports."""
    reporter = reporter or Reporter.from_environment()
    with engine.connect() as conn:
        notice = conn.execute(select(notices).where(notices.c.id == notice_id)).mappings().one()
        rows = conn.execute(listed_cases(notice_id, notice["rung"])).mappings().all()
        contacts = conn.execute(select(sites.c.contacts).where(
            sites.c.site == notice["site"])).scalar()
        # Victims registered as minors at capture: their reports are CSAM reports.
        from matcher.bank import minors_among  # here: the bank's module loads FAISS

        minors = minors_among(conn, [r["victim"] for r in rows])
    source = LEGACY_SOURCES.get(notice["recipient_source"], notice["recipient_source"])
    return {
        "id": notice["id"], "site": notice["site"], "status": notice["status"],
        # Who the notice is addressed at on the escalation ladder, and how it goes out.
        "rung": notice["rung"], "party": notice["party"], "channel": notice["channel"],
        "form_profile": notice["form_profile"], "confirmation_key": notice["confirmation_key"],
        "language": notice["language"], "to": notice["recipient"],
        "recipient_source": source,
        # Only the operator's word vouches for an address (the registry, the ladder file's
        # authority); any other is the reviewer's to confirm (the site named it, RDAP did,
        # or it is a guess at abuse@ the site).
        "recipient_confirmed": source in OPERATOR_SOURCES,
        # Why the site's own security.txt Contact was not taken, if it offered a bad one
        # (several recipients, cc/bcc headers, not an address): a sign of a hostile site.
        "recipient_refused": security_txt_recipient(contacts or [])[1],
        "subject": notice["subject"],
        "body": notice["body"], "legal_basis": notice["legal_basis"],
        "urls": [r["image_url"] for r in rows], "cases": [r["id"] for r in rows],
        "deadline": notice["deadline"].isoformat() if notice["deadline"] else None,
        "message_id": notice["message_id"],
        "xarf": xarf_reports(list(rows), reporter, notice["updated_at"], minors),
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
        raise NoticeError(f"case {reference_of(case_id)} has no notice (no such case, or not "
                          "drafted yet)")
    return int(notice_id)


def reopen(conn: Connection, notice_id: int, actor: str, at: dt.datetime, why: str) -> None:
    """An approved notice that changed is a draft again, and so are the site's cases it lists:
    what its reviewer approved is not what it now says."""
    conn.execute(notices.update().where(notices.c.id == notice_id).values(
        status="draft", approved_by=None, approved_at=None, updated_at=at))
    for case_id in conn.execute(select(cases.c.id).where(
            cases.c.notice_id == notice_id, cases.c.status == "approved")).scalars().all():
        transition(conn, case_id, "drafted", actor=actor, at=at,
                   detail={"notice": notice_id, "why": why})


def edit_notice(engine: Engine, notice_id: int, subject: str, body: str, reviewer: str,
                at: dt.datetime) -> None:
    """A reviewer's wording replaces the draft, and later redrafts keep it. An approved
    notice edited is a draft again (reopen), to be approved as it now reads."""
    with engine.begin() as conn:
        status = conn.execute(select(notices.c.status).where(notices.c.id == notice_id)).scalar()
        if status not in ("draft", "approved"):
            raise NoticeError(f"notice {notice_id} is {status}; only drafts can be edited")
        if status == "approved":
            reopen(conn, notice_id, reviewer, at, "its notice was edited")
        conn.execute(notices.update().where(notices.c.id == notice_id), [{
            "subject": subject.strip(), "body": body, "edited": True, "updated_at": at,
            "status": "draft"}])
        audit.append(conn, actor=reviewer, action="notice:edited", at=at, notice_id=notice_id,
                     detail={"subject": subject.strip()})


def notice_version(notice: Mapping[str, Any]) -> str:
    """A short digest of everything a reviewer judges in a notice as notice_json shows it:
    recipient, language, wording, deadline and the cases it lists. An edit or a redraft
    changes it; an approval names the version its reviewer read (approve_notice)."""
    seen = {key: notice[key] for key in VERSIONED}
    return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[
        :DRAFT_VERSION_CHARS]


def draft_version(conn: Connection, notice_id: int) -> str:
    """notice_version of the notice as it stands in `conn`'s transaction."""
    notice = conn.execute(select(
        notices.c.recipient, notices.c.language, notices.c.subject, notices.c.body,
        notices.c.deadline, notices.c.rung).where(notices.c.id == notice_id)).mappings().one()
    listed = [row.id for row in conn.execute(listed_cases(notice_id, notice["rung"]))]
    return notice_version({
        "to": notice["recipient"], "language": notice["language"],
        "subject": notice["subject"], "body": notice["body"],
        "deadline": notice["deadline"].isoformat() if notice["deadline"] else None,
        "cases": list(listed)})


def approve_notice(engine: Engine, notice_id: int, reviewer: str, at: dt.datetime,
                   version: str | None = None) -> None:
    """A person approves the notice: it and its cases are ready to send.

    With `version` (the review app always gives it) the approval stands only if the notice is
    still the draft_version its reviewer read; otherwise nothing changes and NoticeError says
    to reload.
    """
    with engine.begin() as conn:
        # The write comes first: it holds the notice (its row lock; SQLite's write lock) while
        # the version is checked, so no edit or redraft lands between check and approval.
        approved = conn.execute(notices.update().where(
            notices.c.id == notice_id, notices.c.status == "draft").values(
            status="approved", approved_by=reviewer, approved_at=at)).rowcount
        if not approved:
            status = conn.execute(select(notices.c.status).where(
                notices.c.id == notice_id)).scalar()
            raise NoticeError(f"notice {notice_id} is {status}; only a draft can be approved")
        if version is not None and version != draft_version(conn, notice_id):
            raise NoticeError("This notice changed since you opened it (edited, redrafted or "
                              "given another case): reload the page, read it again, then "
                              "approve. Nothing was approved.")
        audit.append(conn, actor=reviewer, action="notice:approved", at=at,
                     notice_id=notice_id, detail={"version": version} if version else None)
        for case_id in conn.execute(select(cases.c.id).where(
                cases.c.notice_id == notice_id, cases.c.status == "drafted")).scalars().all():
            transition(conn, case_id, "approved", actor=reviewer, at=at,
                       detail={"notice": notice_id})
