"""The escalation ladder: site → hosting network → CDN → registrar → authority.

Hotlines get content down by going up the chain when a site ignores them. A case climbs one
rung when the rung it stands at was sent and that rung's deadline passed with the content
still online (the tracker's word, takedown/tracking.py). Climbing drafts a notice to the next
rung's party, in that party's language, listing every case of the same site that reached
the rung; a person approves it like any notice (takedown/review/), and only then is it sent
(takedown/sending.py), by e-mail or through the party's web form. Until it is sent the case
waits: nothing climbs past a rung nobody approved.

Who each rung reaches:
- **host**: the abuse contact of the network that holds the site's server address (RDAP on
  the IP, takedown/rdap.py);
- **cdn**: the CDN whose published ranges hold that address, if one fronts the site; a site
  behind no CDN skips the rung;
- **registrar**: the abuse contact of the domain's registrar (RDAP on the domain);
- **authority**: the body that can order blocking, named by the institution in its ladder
  file (for Korea the Korea Communications Standards Commission, with the evidence list of
  its blocking requests). Its address is the operator's word; every RDAP or CDN address is a
  candidate a reviewer confirms (notice_json's `recipient_confirmed`), as a site's own is.

A rung whose party cannot be found (no RDAP answer names one, no CDN) is skipped, and the
skip is written in the case's history when the case climbs past it; a registry that cannot be
reached is an error for that site this pass, tried again on the next, and stops no other site.

The rungs, their deadlines and the authority are the institution's: a JSON file at
HAECHI_LADDER (default `ladder.json` in the data folder), else DEFAULT_LADDER. The site's
rung deadline is HAECHI_ESCALATE_DAYS unless the file gives one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Select, select

from crawler.security_txt import AddressRefused, plain_line
from engines.home import data_home
from engines.settings import ConfigurationError, current
from takedown import audit
from takedown.notices import (
    FROM_LADDER,
    NO_RECIPIENT,
    SITE_RUNG,
    NoticeError,
    Reporter,
    legal_basis,
    listed_cases,
    reference_of,
    render,
)
from takedown.registry import operator_address, site_override
from takedown.schema import cases, escalations, notices
from takedown.status import transition

log = logging.getLogger(__name__)

# Every rung in the order a case climbs them.
RUNGS = (SITE_RUNG, "host", "cdn", "registrar", "authority")
# Case statuses a climb applies to: notified and still online.
CLIMBING = ("sent", "escalated")
# The languages of countries where RDAP says a party sits, for the notice to it; any other
# country gets English. The notice templates' languages (takedown/notices.py LANGUAGES).
COUNTRY_LANGUAGES = {
    "KR": "ko", "CN": "zh", "TW": "zh", "HK": "zh", "SG": "en", "JP": "ja",
    "RU": "ru", "BY": "ru", "KZ": "ru", "VN": "vi",
    "ES": "es", "MX": "es", "AR": "es", "CO": "es", "CL": "es", "PE": "es",
    "DE": "de", "AT": "de", "CH": "de", "LI": "de",
}

# The ladder when the institution gives none: a Korean desk's, as Seoul's works. The host,
# CDN and registrar get 3, 3 and 5 days (a provider's abuse desk answers within days; INHOPE
# counts 2.5 days as fast); the authority's contact is left for the institution to set.
DEFAULT_LADDER: dict[str, Any] = {"rungs": [
    {"rung": "site"},
    {"rung": "host", "deadline_days": 3},
    {"rung": "cdn", "deadline_days": 3},
    {"rung": "registrar", "deadline_days": 5},
    {"rung": "authority", "deadline_days": 7,
     "name": "Korea Communications Standards Commission (KCSC)", "language": "ko",
     "country": "KR"},
]}


# The languages the authority's blocking request is written in (templates/notices/authority/).
AUTHORITY_LANGUAGES = ("ko", "en")
MAX_DEADLINE_DAYS = 3650
# What notices.party and notices.form_profile hold.
MAX_PARTY_CHARS = 200
MAX_PROFILE_CHARS = 100


class LadderError(ConfigurationError, ValueError):
    """A ladder file that cannot be used; the message says which rung and why (exit 3)."""


@dataclass(frozen=True)
class Rung:
    """One rung: whom it reaches and how long its party has before the next rung is due.
    `name`, `contact`, `form_profile`, `language` and `country` are the authority's, which
    the institution names (the other rungs' parties come from RDAP and the CDN ranges)."""

    rung: str
    deadline: dt.timedelta
    name: str | None = None
    contact: str | None = None
    form_profile: str | None = None
    language: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class Ladder:
    rungs: tuple[Rung, ...]

    @classmethod
    def load(cls, path: Path | None = None) -> Ladder:
        """The institution's ladder (HAECHI_LADDER, else ladder.json in the data folder),
        else DEFAULT_LADDER."""
        path = path or Path(current().ladder or data_home() / "ladder.json")
        if not path.exists():
            if current().ladder:
                raise LadderError(f"HAECHI_LADDER names {path}, which does not exist")
            return cls.parse(DEFAULT_LADDER)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LadderError(f"{path}: not a JSON ladder: {exc}") from None
        try:
            return cls.parse(data)
        except LadderError as exc:
            raise LadderError(f"{path}: {exc}") from None

    @classmethod
    def parse(cls, data: Any) -> Ladder:
        if not isinstance(data, dict) or not isinstance(data.get("rungs"), list):
            raise LadderError('a ladder is {"rungs": [{"rung": "site", ...}, ...]}')
        rungs = tuple(_rung(entry, number) for number, entry in enumerate(data["rungs"], 1))
        names = [r.rung for r in rungs]
        if not names or names[0] != SITE_RUNG:
            raise LadderError('the first rung is "site": every case starts at the site')
        if len(set(names)) != len(names) or names != sorted(names, key=RUNGS.index):
            raise LadderError(f"rungs must be distinct and in the order {', '.join(RUNGS)}")
        return cls(rungs)

    def rung(self, name: str) -> Rung | None:
        return next((r for r in self.rungs if r.rung == name), None)

    def above(self, name: str) -> list[Rung]:
        """The rungs above `name`, nearest first (a rung the ladder no longer has counts at
        its place in RUNGS)."""
        return [r for r in self.rungs if RUNGS.index(r.rung) > RUNGS.index(name)]

    def with_site_deadline(self, deadline: dt.timedelta) -> Ladder:
        return Ladder(tuple(replace(r, deadline=deadline) if r.rung == SITE_RUNG else r
                            for r in self.rungs))


def _rung(entry: Any, number: int) -> Rung:
    if not isinstance(entry, dict) or entry.get("rung") not in RUNGS:
        raise LadderError(f"rung {number}: \"rung\" is one of {', '.join(RUNGS)}")
    name = entry["rung"]
    days = entry.get("deadline_days", current().escalate_days if name == SITE_RUNG else None)
    # NaN and Infinity, which Python's JSON reads, and more days than a timedelta holds are
    # no deadline: a year of ten is far past any rung's.
    if isinstance(days, bool) or not isinstance(days, int | float) or not (
            0 < days <= MAX_DEADLINE_DAYS):
        raise LadderError(f"rung {number} ({name}): deadline_days is a positive number of "
                          f"at most {MAX_DEADLINE_DAYS}")
    text = {key: entry.get(key) for key in ("name", "contact", "form_profile", "language",
                                            "country")}
    for key, value in text.items():
        if value is not None and not isinstance(value, str):
            raise LadderError(f"rung {number} ({name}): {key} is text")
    if name == "authority" and not text["name"]:
        raise LadderError(f"rung {number} (authority): name the authority")
    if name == "authority" and (text["language"] or "ko") not in AUTHORITY_LANGUAGES:
        raise LadderError(f"rung {number} (authority): its request is written in "
                          f"{' or '.join(AUTHORITY_LANGUAGES)}")
    if name != "authority" and any(text.values()):
        raise LadderError(f"rung {number} ({name}): only the authority's party is named in "
                          "the ladder; the others come from RDAP and the CDN ranges")
    if name == "authority":
        text.update(_authority(text, number))
    return Rung(name, dt.timedelta(days=float(days)), **text)


def _authority(text: dict[str, str | None], number: int) -> dict[str, str | None]:
    """The authority's party checked as the operator's other words are: its name one line
    that fits a notice's party (every subject carries it), its contact one plain address (it
    is sent to unconfirmed, so a pasted list or a header must not go out), its country a
    two-letter code."""
    where = f"rung {number} (authority)"
    name = str(text["name"]).strip()
    if len(name) > MAX_PARTY_CHARS or not plain_line(name):
        raise LadderError(f"{where}: its name is one line of at most {MAX_PARTY_CHARS} "
                          "characters")
    contact = text["contact"]
    if contact is not None:
        try:
            contact = operator_address(contact.strip())
        except AddressRefused as exc:
            raise LadderError(f"{where}: its contact is not one address ({exc})") from None
    country = text["country"]
    if country is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
            raise LadderError(f"{where}: its country is a two-letter code (ISO 3166-1)")
        country = country.strip().upper()
    profile = text["form_profile"]
    if profile is not None and not 0 < len(profile.strip()) <= MAX_PROFILE_CHARS:
        raise LadderError(f"{where}: form_profile names a form profile (at most "
                          f"{MAX_PROFILE_CHARS} characters)")
    return {"name": name, "contact": contact, "country": country,
            "form_profile": profile.strip() if profile else profile}


class FoundParty(Protocol):
    """What takedown/rdap.py finds for a rung (its Party)."""

    rung: str
    name: str
    address: str | None
    form_url: str | None
    source: str
    country: str | None


# Finds the parties of a site: (engine, site, server IP, now) → {rung: party}.
PartyFinder = Callable[[Engine, str, str | None, dt.datetime], Mapping[str, FoundParty]]


@dataclass(frozen=True)
class Addressee:
    """Who a rung's notice goes to and how: the party found, or the ladder's authority."""

    name: str
    address: str
    source: str
    channel: str = "email"
    form_profile: str | None = None
    form_url: str | None = None
    language: str = "en"


def addressee(rung: Rung, found: Mapping[str, FoundParty]) -> Addressee | None:
    """The rung's addressee, or None when the rung has nobody to reach (skipped)."""
    if rung.rung == "authority":
        return Addressee(str(rung.name), rung.contact or "", FROM_LADDER,
                         "form" if rung.form_profile else "email", rung.form_profile,
                         None, rung.language or "ko")
    party = found.get(rung.rung)
    if party is None or not (party.address or party.form_url):
        return None
    language = COUNTRY_LANGUAGES.get((party.country or "").upper(), "en")
    named = form_profile_for(party)
    if named is not None:  # the operator says this party takes reports by its form only
        return Addressee(party.name, "", party.source, "form", named, party.form_url, language)
    if party.address:
        return Addressee(party.name, party.address, party.source, language=language)
    return Addressee(party.name, "", party.source, "form", form_profile_for(party, by_url=True),
                     party.form_url, language)


def form_profile_for(party: FoundParty, by_url: bool = False) -> str | None:
    """The name of the operator's form profile (takedown/forms.py) for a party: the one whose
    `parties` name it; with `by_url`, else the one at the very URL of the form it publishes;
    else None (a person adds one; sending says so)."""
    from takedown.forms import load_profiles

    profiles = sorted(load_profiles().items())
    name = party.name.strip().casefold()
    found = next((key for key, profile in profiles if name in profile.parties), None)
    if found is None and by_url and party.form_url:
        found = next((key for key, profile in profiles if profile.url == party.form_url),
                     None)
    return found


def skip_reason(rung: Rung, found: Mapping[str, FoundParty]) -> str:
    party = found.get(rung.rung)
    if rung.rung == "cdn" and party is None:
        return "no CDN fronts the site"
    if party is None:
        return "RDAP names no party for it"
    return f"{party.name} offers no usable abuse address or form"


@dataclass
class ClimbReport:
    # {"case", "rung", "party", "notice", "skipped"} for each case that climbed this pass.
    climbed: list[dict[str, Any]] = field(default_factory=list)
    # Cases whose newest rung's notice waits for a person (approval) or for sending.
    waiting: list[int] = field(default_factory=list)
    # Cases past the deadline of the ladder's last rung they can reach: nobody is left.
    top: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"climbed": self.climbed, "waiting": self.waiting, "top": self.top,
                "errors": self.errors}


def default_finder() -> PartyFinder:
    from takedown.rdap import parties

    return parties


# The parties of a (site, server address), or why they could not be looked up.
Parties = Mapping[str, FoundParty] | str


class Climber:
    """Moves cases up the ladder (see the module docstring)."""

    def __init__(self, engine: Engine, ladder: Ladder | None = None,
                 finder: PartyFinder | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 reporter: Reporter | None = None) -> None:
        self.engine = engine
        self.ladder = ladder or Ladder.load()
        self._finder = finder
        self.clock = clock
        self._reporter = reporter

    @property
    def reporter(self) -> Reporter:
        return self._reporter or Reporter.from_environment()

    @property
    def finder(self) -> PartyFinder:
        """The finder given, else RDAP's, imported only when a case is due to climb."""
        if self._finder is None:
            self._finder = default_finder()
        return self._finder

    def climb(self, case_ids: Iterable[int]) -> ClimbReport:
        """Climb each of `case_ids` (notified, still online, still pursued: the tracker's
        word) whose rung's deadline has passed."""
        report = ClimbReport()
        wanted = sorted(set(case_ids))
        if not wanted:
            return report
        with self.engine.connect() as conn:
            rows = conn.execute(select(cases).where(cases.c.id.in_(wanted),
                                                    cases.c.status.in_(CLIMBING))
                                .order_by(cases.c.id)).mappings().all()
            steps = _steps(conn, [row["id"] for row in rows])
        found: dict[tuple[str, str | None], Parties] = {}
        for row in rows:
            try:
                self._climb_one(row, steps.get(row["id"], []), found, report)
            except Exception as exc:  # one case's failure never stops the others'
                log.exception("case %s could not climb", row["id"])
                report.errors.append(f"{reference_of(row['id'])}: could not climb the ladder: "
                                     f"{type(exc).__name__}: {exc}")
        return report

    def _climb_one(self, row: Mapping[str, Any], steps: list[Mapping[str, Any]],
                   found: dict[tuple[str, str | None], Parties], report: ClimbReport
                   ) -> None:
        now = self.clock()
        # A step taken off its notice before it was sent (drop_case: the victim withdrew and
        # has registered again) is no step: the case climbs to that rung again.
        dropped = [s["id"] for s in steps if s["notice_id"] is None and s["sent_at"] is None]
        steps = [s for s in steps if s["id"] not in dropped]
        if steps and steps[-1]["sent_at"] is None:
            report.waiting.append(row["id"])
            return
        at, since = ((steps[-1]["rung"], steps[-1]["sent_at"]) if steps
                     else (SITE_RUNG, row["first_sent_at"]))
        standing = self.ladder.rung(at)
        if since is None or (standing is not None and now - since < standing.deadline):
            return
        site = row["site"]
        # The host is whoever serves the file: parties are looked up for the case's own
        # address, once per pass for every case of the site served from it.
        key = (site, row["server_ip"])
        if key not in found:
            try:
                found[key] = self.finder(self.engine, site, row["server_ip"], now)
            except Exception as exc:  # a registry down today: these cases wait a pass
                found[key] = f"{site}: its abuse contacts could not be looked up: {exc}"
                report.errors.append(found[key])
        parties = found[key]
        if isinstance(parties, str):
            return
        skipped = []
        for rung in self.ladder.above(at):
            to = addressee(rung, parties)
            if to is not None:
                break
            skipped.append({"rung": rung.rung, "why": skip_reason(rung, parties)})
        else:
            report.top.append(row["id"])
            return
        due = since + (standing.deadline if standing else dt.timedelta(0))
        with self.engine.begin() as conn:
            if dropped:  # its history is in the audit log (notice:drafted, "dropped")
                conn.execute(escalations.delete().where(escalations.c.id.in_(dropped)))
            conn.execute(escalations.insert(), [{
                "case_id": row["id"], "rung": rung.rung, "party": to.name, "due_at": due,
                "drafted_at": now}])
            notice_id = self.draft(conn, site, rung, to, now, row["id"])
            transition(conn, row["id"], "escalated", actor="tracker", at=now,
                       detail={"rung": rung.rung, "party": to.name, "notice": notice_id,
                               "skipped": skipped}, escalated_at=now)
        report.climbed.append({"case": row["id"], "rung": rung.rung, "party": to.name,
                               "notice": notice_id, "skipped": skipped})

    def draft(self, conn: Connection, site: str, rung: Rung, to: Addressee,
              at: dt.datetime, case_id: int | None = None) -> int:
        """(Re)draft the site's open notice at `rung`, listing every case of the site that
        reached the rung and is not on a notice already approved or sent. With `case_id` only
        that case's step joins it: a step drop_case took off (a victim who withdrew) stays
        off when another case of the site reaches the rung."""
        # One notice per party: cases of a site served from two networks go to each network
        # on a notice of their own, never on the other's.
        draft = conn.execute(select(notices).where(
            notices.c.site == site, notices.c.rung == rung.rung, notices.c.party == to.name,
            notices.c.status == "draft").order_by(notices.c.id.desc()).limit(1)
        ).mappings().first()
        joining = select(escalations.c.id).join(cases, cases.c.id == escalations.c.case_id) \
            .where(cases.c.site == site, escalations.c.rung == rung.rung,
                   escalations.c.party == to.name, escalations.c.notice_id.is_(None),
                   cases.c.status.in_(CLIMBING))
        if case_id is not None:
            joining = joining.where(escalations.c.case_id == case_id)
        deadline = at + rung.deadline
        values = {"site": site, "language": to.language, "recipient": to.address,
                  "recipient_source": to.source if to.address else NO_RECIPIENT,
                  "legal_basis": legal_basis(site, site_override(site).country),
                  "updated_at": at, "deadline": deadline, "rung": rung.rung,
                  "party": to.name, "channel": to.channel, "form_profile": to.form_profile}
        if draft is None:
            notice_id = int(conn.execute(notices.insert(), [{
                **values, "subject": "", "body": "", "edited": False, "status": "draft",
                "created_at": at, "attempts": 0}]).inserted_primary_key[0])
            edited = False
        else:
            notice_id, edited = draft["id"], draft["edited"]
            # Claim it while it is still a draft, before anything joins it: an approval that
            # committed after the draft was read must not be rewritten under its reviewer, nor
            # given a case they never read (this climb fails, and the case climbs next pass
            # into a notice of its own). The write holds the row until this climb commits, so
            # an approval after it sees the new version and is refused.
            claimed = conn.execute(notices.update().where(
                notices.c.id == notice_id, notices.c.status == "draft").values(
                updated_at=at)).rowcount
            if claimed != 1:
                raise LadderError(f"notice {notice_id} was approved while it was being "
                                  "redrafted; the case climbs again next pass")
        conn.execute(escalations.update().where(escalations.c.id.in_(joining))
                     .values(notice_id=notice_id))
        rows = conn.execute(listed_cases(notice_id, rung.rung)).mappings().all()
        if not edited:  # a reviewer's wording is never overwritten
            values["subject"], values["body"] = render(
                to.language, folder=_folder(rung), site=site, reporter=self.reporter,
                legal=values["legal_basis"], reference=reference_of(rows[0]["id"]),
                deadline=deadline, rows=list(rows), rung=rung.rung, party=to.name,
                earlier=_earlier(conn, [r["id"] for r in rows]), form_url=to.form_url)
        conn.execute(notices.update().where(notices.c.id == notice_id).values(**values))
        audit.append(conn, actor="tracker", action="notice:drafted", at=at,
                     notice_id=notice_id,
                     detail={"cases": [r["id"] for r in rows], "rung": rung.rung,
                             "party": to.name, "language": to.language,
                             "recipient": to.address, "recipient_source": values[
                                 "recipient_source"], "channel": to.channel})
        return notice_id


def _folder(rung: Rung | str) -> str:
    """The notice templates for the rung: the authority's blocking request has its own."""
    name = rung if isinstance(rung, str) else rung.rung
    return "authority" if name == "authority" else "rungs"


def drop_case(conn: Connection, case_id: int, at: dt.datetime, actor: str,
              reporter: Reporter, why: str = "rejected") -> list[int]:
    """Take a case no longer pursued (rejected as a false match, or its victim withdrew) off
    every rung notice of it not sent yet, and return those notices. Each is drafted again
    without it (a reviewer's wording is kept, but may still name the URL), and one that was
    approved is a draft again: what its reviewer approved listed the case. The escalation row
    stays, as history; its case is not listed again (Climber.draft joins only the case that
    climbs, and only cases still climbing)."""
    waiting = conn.execute(select(escalations.c.id, escalations.c.notice_id).join(
        notices, notices.c.id == escalations.c.notice_id).where(
        escalations.c.case_id == case_id, notices.c.status.in_(("draft", "approved")))).all()
    for step in waiting:
        conn.execute(escalations.update().where(escalations.c.id == step.id)
                     .values(notice_id=None))
        notice = conn.execute(select(notices).where(notices.c.id == step.notice_id)
                              ).mappings().one()
        rows = conn.execute(listed_cases(notice["id"], notice["rung"])).mappings().all()
        values: dict[str, Any] = {"status": "draft", "updated_at": at}
        if rows and not notice["edited"]:
            values["subject"], values["body"] = render(
                notice["language"], folder=_folder(notice["rung"]), site=notice["site"],
                reporter=reporter, legal=notice["legal_basis"],
                reference=reference_of(rows[0]["id"]), deadline=notice["deadline"] or at,
                rows=list(rows), rung=notice["rung"], party=notice["party"],
                earlier=_earlier(conn, [r["id"] for r in rows]), form_url=None)
        conn.execute(notices.update().where(notices.c.id == notice["id"]).values(**values))
        audit.append(conn, actor=actor, action="notice:drafted", at=at,
                     notice_id=notice["id"],
                     detail={"cases": [r["id"] for r in rows], "rung": notice["rung"],
                             "dropped": case_id, "why": why})
    return [step.notice_id for step in waiting]


def _steps(conn: Connection, case_ids: list[int]) -> dict[int, list[Mapping[str, Any]]]:
    """Each case's escalation rows, lowest rung first."""
    found: dict[int, list[Mapping[str, Any]]] = {}
    if not case_ids:
        return found
    for step in conn.execute(select(escalations).where(
            escalations.c.case_id.in_(case_ids))).mappings():
        found.setdefault(step["case_id"], []).append(step)
    for steps in found.values():
        steps.sort(key=lambda s: RUNGS.index(s["rung"]) if s["rung"] in RUNGS else 0)
    return found


def _earlier(conn: Connection, case_ids: list[int]) -> list[dict[str, Any]]:
    """The notices already sent for these cases, oldest first: what the next party is told
    was tried (rung, party or site, when, and to whom)."""
    sent: dict[int, dict[str, Any]] = {}
    site_notices = select(cases.c.notice_id).where(cases.c.id.in_(case_ids))
    rung_notices = select(escalations.c.notice_id).where(escalations.c.case_id.in_(case_ids))
    for notice in conn.execute(select(notices).where(
            notices.c.status == "sent",
            notices.c.id.in_(site_notices.union(rung_notices))).order_by(
            notices.c.sent_at)).mappings():
        sent[notice["id"]] = {"rung": notice["rung"], "party": notice["party"] or notice["site"],
                              "sent_at": notice["sent_at"].strftime("%Y-%m-%d %H:%M UTC"),
                              "to": notice["recipient"]}
    return list(sent.values())


def history(engine: Engine, case_id: int) -> list[dict[str, Any]]:
    """The case's climb for people and programs: every rung it reached, with its party, when
    it fell due, was drafted, sent and answered, and the answer."""
    with engine.connect() as conn:
        case = conn.execute(select(cases.c.site, cases.c.notice_id, cases.c.first_sent_at)
                            .where(cases.c.id == case_id)).mappings().first()
        if case is None:
            return []
        rungs = [{"rung": SITE_RUNG, "party": case["site"], "notice": case["notice_id"],
                  "due_at": None, "drafted_at": None, "sent_at": _iso(case["first_sent_at"]),
                  "answered_at": None, "answer": None}]
        for step in _steps(conn, [case_id]).get(case_id, []):
            rungs.append({"rung": step["rung"], "party": step["party"],
                          "notice": step["notice_id"], "due_at": _iso(step["due_at"]),
                          "drafted_at": _iso(step["drafted_at"]),
                          "sent_at": _iso(step["sent_at"]),
                          "answered_at": _iso(step["answered_at"]), "answer": step["answer"]})
    return rungs


def current_notice(engine: Engine, case_id: int) -> int | None:
    """The notice a person acts on for the case now: its newest rung's while that is not
    sent yet (to approve or send), else the site's."""
    with engine.connect() as conn:
        waiting = conn.execute(select(escalations.c.notice_id).where(
            escalations.c.case_id == case_id, escalations.c.sent_at.is_(None),
            escalations.c.notice_id.is_not(None)).order_by(escalations.c.id.desc())
            .limit(1)).scalar()
        return waiting if waiting is not None else conn.execute(
            select(cases.c.notice_id).where(cases.c.id == case_id)).scalar()


def awaiting_people(conn: Connection) -> Select:
    """The ids of cases whose newest rung's notice waits for a person (the review queue)."""
    return select(escalations.c.case_id).join(
        notices, notices.c.id == escalations.c.notice_id).where(
        escalations.c.sent_at.is_(None), notices.c.status.in_(("draft", "approved")))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def record_answer(engine: Engine, notice_id: int, answer: str, actor: str,
                  at: dt.datetime) -> list[int]:
    """A party's answer to a rung's notice, as a reviewer read it, kept on every case the
    notice listed; returns those cases."""
    text = answer.strip()
    if not text:
        raise NoticeError("say what the party answered")
    with engine.begin() as conn:
        rung = conn.execute(select(notices.c.rung).where(notices.c.id == notice_id)).scalar()
        if rung is None:
            raise NoticeError(f"no notice {notice_id}")
        listed = [row.id for row in conn.execute(listed_cases(notice_id, rung))]
        if rung != SITE_RUNG:
            conn.execute(escalations.update().where(escalations.c.notice_id == notice_id)
                         .values(answered_at=at, answer=text[:4000]))
        audit.append(conn, actor=actor, action="notice:answered", at=at, notice_id=notice_id,
                     detail={"rung": rung, "cases": listed, "answer": text[:4000]})
    return listed
