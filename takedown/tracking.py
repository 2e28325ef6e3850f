"""Tracking sent cases until the content is gone: re-check, remind, escalate.

What the tracker decides about a sent case's URL, from what matcher/confirm.py finds it shows:

- **gone** (404 or 410), or **other bytes the bank no longer matches** to the victim (replaced,
  a page instead of the file): removed.
- **unreachable** (a connection failure, a refused address): recorded, decides nothing: a host
  that is down today may serve the file tomorrow.
- **the very file** the case was opened on (its SHA-256), **a copy the bank still matches**
  (re-encoded, resized), or **nothing to judge by** (403, 5xx, a body over the crawler's size
  cap): still online. The case's own file is its own proof, so this holds after the victim's
  hashes are gone.
- **a segment of a streamed video serving other bytes that do not match**: still online. The
  crawler matched the segment as a player assembles it (a DASH or fMP4 segment behind its
  initialisation segment, an AES-128 HLS segment decrypted with its key); fetched again alone,
  the same segment is other bytes that cannot even be decoded, which prove no removal. Only a
  404 or 410 removes such a case.
- **other bytes, the victim withdrawn** (`registered` says their hashes are gone): *changed*.
  Without the victim's hashes Haechi cannot tell whether it is still their picture, so the
  case is not called removed: it stays open, is listed under `changed`, and is checked again
  on the next pass (a later 404 or 410 still removes it).

Withdrawal is consent withdrawn, so Haechi stops acting for that victim: their cases get no
reminders and no escalation (they are listed under `withdrawn`), but they are still checked,
so that what the record says about them stays true. Closing them needs a status of their own
in takedown/status.py.

A host that has not removed the content gets the notice again every 24 hours (RESEND_AFTER),
and a case climbs the escalation ladder (takedown/ladder.py: hosting network, CDN, registrar,
authority) each time the deadline of the rung it stands at passes, the site's being
HAECHI_ESCALATE_DAYS days. Requests go out like every fetch
outside a crawl (engines/fetch.py, with crawler/refetch.py's limits): the crawler's User-Agent,
timeout and size cap, under the outbound policy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from crawler import refetch
from engines import fetch as outbound
from engines.fetch import Fetched
from matcher.confirm import Judge, Showing, still_shows
from takedown.ladder import Climber, Ladder, drop_case
from takedown.schema import cases
from takedown.sending import NoticeSender, SendError
from takedown.status import transition

RESEND_AFTER = dt.timedelta(hours=24)
# httpx's default, which the tracker has always followed: a host may move its files around.
MAX_REDIRECTS = 20
LIMITS = dataclasses.replace(refetch.LIMITS, max_redirects=MAX_REDIRECTS)


def fetch(url: str) -> Fetched:
    """The tracker's GET of one case's URL (engines/fetch.py): a failure is an answer, a
    malformed HAECHI_FETCH_ALLOW is raised (configuration)."""
    return outbound.fetch(url, LIMITS)


def everyone_registered(victim: str) -> bool:
    """The default `registered`: no word on withdrawals, so the bank's answer is final."""
    return True


class Verdict(enum.StrEnum):
    """What one check says about a case's URL (the rule is in the module docstring)."""

    REMOVED = "removed"
    ONLINE = "online"
    CHANGED = "changed"
    UNREACHABLE = "unreachable"


# What each thing a URL may show means for its case (the rule is in the module docstring).
VERDICTS = {
    Showing.UNREACHABLE: Verdict.UNREACHABLE,
    Showing.GONE: Verdict.REMOVED,
    Showing.NO_LONGER: Verdict.REMOVED,
    Showing.UNJUDGED: Verdict.ONLINE,
    Showing.SAME_FILE: Verdict.ONLINE,
    Showing.MATCHES: Verdict.ONLINE,
    Showing.CHANGED: Verdict.CHANGED,
}


@dataclass
class TrackReport:
    checked: int = 0
    removed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    unreachable: list[int] = field(default_factory=list)
    # Cases of withdrawn victims whose URL now serves other bytes: not known to be removed.
    changed: list[int] = field(default_factory=list)
    # Cases of withdrawn victims: checked, but neither reminded nor escalated.
    withdrawn: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # What the escalation ladder did this pass (takedown/ladder.py ClimbReport.as_json).
    ladder: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "removed": self.removed, "resent": self.resent,
                "escalated": self.escalated, "unreachable": self.unreachable,
                "changed": self.changed, "withdrawn": self.withdrawn, "errors": self.errors,
                "ladder": self.ladder}


class Tracker:
    """One pass over every sent or escalated case.

    `still_matches(body, victim)` is the bank's word on a file that is not the case's own;
    `registered(victim)` whether the victim's hashes are still in the bank (the command passes
    VictimBank.is_registered; the default knows of no withdrawal).
    """

    def __init__(self, engine: Engine, still_matches: Judge,
                 sender: NoticeSender, clock: Callable[[], dt.datetime],
                 fetcher: Callable[[str], Fetched] = fetch,
                 escalate_after: dt.timedelta | None = None,
                 registered: Callable[[str], bool] = everyone_registered,
                 climber: Climber | None = None) -> None:
        self.engine = engine
        self.still_matches = still_matches
        self.sender = sender
        self.clock = clock
        self.fetcher = fetcher
        self.registered = registered
        if climber is None:
            ladder = Ladder.load()
            if escalate_after is not None:
                ladder = ladder.with_site_deadline(escalate_after)
            climber = Climber(engine, ladder, clock=clock, reporter=sender.reporter)
        self.climber = climber

    def _drop(self, case_id: int, now: dt.datetime, report: TrackReport) -> None:
        """A withdrawn victim's case is not named to a provider by a rung's notice nobody
        sent yet (ladder.drop_case); a failure is this case's error, not the pass's."""
        try:
            with self.engine.begin() as conn:
                drop_case(conn, case_id, now, "tracker", self.sender.reporter, why="withdrawn")
        except Exception as exc:
            report.errors.append(f"case {case_id}: could not be taken off its rung notices: "
                                 f"{type(exc).__name__}: {exc}")

    def run(self) -> TrackReport:
        report = TrackReport()
        with self.engine.connect() as conn:
            rows = conn.execute(select(cases).where(cases.c.status.in_(("sent", "escalated")))
                                .order_by(cases.c.id)).mappings().all()
        due: dict[int, list[int]] = defaultdict(list)
        registered: dict[str, bool] = {}
        pursued: list[int] = []  # still online, victim still registered: may climb
        for row in rows:
            report.checked += 1
            now = self.clock()
            victim = row["victim"]
            if victim not in registered:
                registered[victim] = self.registered(victim)
            seen = still_shows(row["image_url"], victim, row["sha256"], self.still_matches,
                               self.fetcher, registered[victim])
            verdict = VERDICTS[seen.showing]
            if row["manifest_url"] and seen.showing is Showing.NO_LONGER:
                verdict = Verdict.ONLINE  # a segment alone proves no removal (see above)
            with self.engine.begin() as conn:
                conn.execute(cases.update().where(cases.c.id == row["id"]),
                             [{"last_checked_at": now}])
                if verdict is Verdict.REMOVED:
                    transition(conn, row["id"], "removed", actor="tracker", at=now,
                               detail={"http_status": seen.fetched.status}, removed_at=now)
                    report.removed.append(row["id"])
                    continue
                if verdict is Verdict.UNREACHABLE:
                    report.unreachable.append(row["id"])
                elif verdict is Verdict.CHANGED:
                    report.changed.append(row["id"])
                if not registered[victim]:  # consent withdrawn: checked, no longer pursued
                    report.withdrawn.append(row["id"])
            if not registered[victim]:
                self._drop(row["id"], now, report)
                continue
            pursued.append(row["id"])
            last = row["last_sent_at"]
            if last is not None and now - last >= RESEND_AFTER and row["notice_id"]:
                due[row["notice_id"]].append(row["id"])
        for notice_id, case_ids in due.items():
            try:
                self.sender.resend(notice_id, case_ids)
                report.resent.extend(case_ids)
            except SendError as exc:
                report.errors.append(str(exc))
        climbed = self.climber.climb(pursued)
        report.escalated = [step["case"] for step in climbed.climbed]
        report.ladder = climbed.as_json()
        report.errors.extend(climbed.errors)
        return report
