"""Tracking sent cases until the content is gone: re-check, remind, escalate.

A URL counts as removed when it answers 404 or 410, or when what it serves no longer matches
the victim (replaced, or a page instead of the file). A host that has not removed the content
gets the notice again every 24 hours (RESEND_AFTER) and the case is escalated after
HAECHI_ESCALATE_DAYS days. Connection failures are recorded and decide nothing: a host that is
down today may serve the file tomorrow.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine, select

from haechi.outbound import BlockedAddress, default_policy
from takedown.schema import cases
from takedown.sending import NoticeSender, SendError
from takedown.status import transition

RESEND_AFTER = dt.timedelta(hours=24)
ESCALATE_AFTER = dt.timedelta(days=float(os.environ.get("HAECHI_ESCALATE_DAYS") or 7))
FETCH_TIMEOUT = 20.0
MAX_BYTES = 200 * 1024 * 1024
# httpx's default, which the tracker has always followed: a host may move its files around.
MAX_REDIRECTS = 20


@dataclass(frozen=True)
class Fetched:
    status: int | None
    body: bytes = b""
    error: str | None = None


def fetch(url: str) -> Fetched:
    """GET `url` with a size cap, under the outbound policy (haechi/outbound.py: the address
    of every hop checked before connecting); a failure, a refused address included
    (`blocked-address: ...`), is a Fetched with its error, never an exception."""
    policy = default_policy()  # a malformed HAECHI_FETCH_ALLOW is raised: configuration
    try:
        with policy.client(timeout=FETCH_TIMEOUT, max_redirects=MAX_REDIRECTS) as client, \
                client.stream("GET", url) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_BYTES:
                    return Fetched(response.status_code, bytes(body[:MAX_BYTES]))
            return Fetched(response.status_code, bytes(body))
    except BlockedAddress as exc:
        return Fetched(None, error=str(exc))
    except httpx.HTTPError as exc:
        return Fetched(None, error=f"{type(exc).__name__}: {exc}")


@dataclass
class TrackReport:
    checked: int = 0
    removed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    unreachable: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"checked": self.checked, "removed": self.removed, "resent": self.resent,
                "escalated": self.escalated, "unreachable": self.unreachable,
                "errors": self.errors}


class Tracker:
    """One pass over every sent or escalated case."""

    def __init__(self, engine: Engine, still_matches: Callable[[bytes, str], bool],
                 sender: NoticeSender, clock: Callable[[], dt.datetime],
                 fetcher: Callable[[str], Fetched] = fetch,
                 escalate_after: dt.timedelta = ESCALATE_AFTER) -> None:
        self.engine = engine
        self.still_matches = still_matches
        self.sender = sender
        self.clock = clock
        self.fetcher = fetcher
        self.escalate_after = escalate_after

    def run(self) -> TrackReport:
        report = TrackReport()
        with self.engine.connect() as conn:
            rows = conn.execute(select(cases).where(cases.c.status.in_(("sent", "escalated")))
                                .order_by(cases.c.id)).mappings().all()
        due: dict[int, list[int]] = defaultdict(list)
        for row in rows:
            report.checked += 1
            now = self.clock()
            got = self.fetcher(row["image_url"])
            gone = got.status in (404, 410) or (
                got.status is not None and 200 <= got.status < 300
                and not self.still_matches(got.body, row["victim"]))
            with self.engine.begin() as conn:
                conn.execute(cases.update().where(cases.c.id == row["id"]),
                             [{"last_checked_at": now}])
                if gone:
                    transition(conn, row["id"], "removed", actor="tracker", at=now,
                               detail={"http_status": got.status}, removed_at=now)
                    report.removed.append(row["id"])
                    continue
                if got.status is None:
                    report.unreachable.append(row["id"])
                first = row["first_sent_at"]
                if (row["status"] == "sent" and first is not None
                        and now - first >= self.escalate_after):
                    transition(conn, row["id"], "escalated", actor="tracker", at=now,
                               detail={"days_online": (now - first).days}, escalated_at=now)
                    report.escalated.append(row["id"])
            last = row["last_sent_at"]
            if last is not None and now - last >= RESEND_AFTER and row["notice_id"]:
                due[row["notice_id"]].append(row["id"])
        for notice_id, case_ids in due.items():
            try:
                self.sender.resend(notice_id, case_ids)
                report.resent.extend(case_ids)
            except SendError as exc:
                report.errors.append(str(exc))
        return report
