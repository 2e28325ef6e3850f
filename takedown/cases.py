"""The case store: one case per (victim, URL), opened from match events.

A case is the unit a reviewer approves and a notice cites. Repeated events for the same victim
and URL (another algorithm, another frame of a video, a re-crawl) join the open case instead of
opening another. A pair a reviewer rejected as a false match (victim, file SHA-256) never opens
a case again. A victim's picture that comes back after removal opens a new case linked to the
removed one. Every change is written to the hash-chained audit log, and the host's draft notice
is brought up to date in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, or_, select

from crawler.store import ObjectStore
from matcher.events import MatchEvent
from takedown import audit
from takedown.evidence import keep_encrypted_copy
from takedown.notices import NoticeDrafter, reference_of
from takedown.schema import cases, false_matches
from takedown.status import OPEN, transition

Clock = Callable[[], dt.datetime]

LIST_FIELDS = ("id", "victim", "image_url", "page_url", "site", "algorithm", "distance",
               "second", "sha256", "server_ip", "detected_at", "status", "reupload_of",
               "notice_id")


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def case_json(row: Any, fields: tuple[str, ...] = LIST_FIELDS) -> dict[str, Any]:
    data = {name: row[name] for name in fields}
    for name, value in data.items():
        if isinstance(value, dt.datetime):
            data[name] = value.isoformat()
    data["reference"] = reference_of(row["id"])
    return data


class CaseStore:
    """Opens, reads and rejects cases."""

    def __init__(self, engine: Engine, store: ObjectStore | None = None,
                 clock: Clock = system_clock) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.drafter = NoticeDrafter(engine)

    @classmethod
    def open(cls, url: str | None = None, store: ObjectStore | None = None,
             clock: Clock = system_clock) -> CaseStore:
        from takedown.database import takedown_engine

        return cls(takedown_engine(url), store, clock)

    def open_cases(self, events: list[MatchEvent]) -> list[int]:
        """Open or join a case per event, then redraft the hosts' notices; new case ids."""
        opened: list[int] = []
        at = self.clock()
        with self.engine.begin() as conn:
            sites = set()
            for event in events:
                if conn.execute(select(false_matches.c.id).where(
                        false_matches.c.victim == event.victim,
                        false_matches.c.sha256 == event.sha256)).first():
                    continue
                signal = {"algorithm": event.algorithm, "distance": event.distance,
                          "second": event.second}
                current = conn.execute(select(cases.c.id, cases.c.signals).where(
                    cases.c.victim == event.victim, cases.c.image_url == event.image_url,
                    cases.c.status.in_(OPEN))).first()
                if current is not None:
                    if signal not in current.signals:
                        conn.execute(cases.update().where(cases.c.id == current.id),
                                     [{"signals": [*current.signals, signal]}])
                    continue
                removed = conn.execute(select(cases.c.id).where(
                    cases.c.victim == event.victim, cases.c.status == "removed",
                    or_(cases.c.image_url == event.image_url, cases.c.sha256 == event.sha256),
                ).order_by(cases.c.id.desc()).limit(1)).scalar()
                result = conn.execute(cases.insert(), [{
                    "victim": event.victim, "image_url": event.image_url,
                    "page_url": event.page_url, "site": event.site,
                    "algorithm": event.algorithm, "distance": event.distance,
                    "second": event.second, "sha256": event.sha256,
                    "media_type": event.media_type, "server_ip": event.server_ip,
                    "headers": event.headers, "store_key": event.store_key,
                    "fetched_at": event.fetched_at, "detected_at": event.detected_at,
                    "status": "detected", "status_at": at, "signals": [signal],
                    "reupload_of": removed, "sent_count": 0,
                }])
                case_id = int(result.inserted_primary_key[0])
                audit.append(conn, actor="matcher", action="case:opened", at=at,
                             case_id=case_id, detail={"event": event.to_json()})
                if removed is not None:
                    transition(conn, removed, "reuploaded", actor="matcher", at=at,
                               detail={"new_case": case_id})
                if self.store is not None:
                    key = keep_encrypted_copy(self.store, event.store_key, case_id)
                    if key:
                        conn.execute(cases.update().where(cases.c.id == case_id),
                                     [{"evidence_key": key}])
                opened.append(case_id)
                sites.add(event.site)
            for site in sorted(sites):
                self.drafter.draft_for_site(conn, site, at)
        return opened

    def reject_false_match(self, case_id: int, reviewer: str) -> None:
        """The reviewer says this is not the victim: close it and never raise the pair again."""
        at = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).mappings().one()
            transition(conn, case_id, "rejected", actor=reviewer, at=at,
                       detail={"reason": "false match"})
            exists = conn.execute(select(false_matches.c.id).where(
                false_matches.c.victim == row["victim"],
                false_matches.c.sha256 == row["sha256"])).first()
            if exists is None:
                conn.execute(false_matches.insert(), [{
                    "victim": row["victim"], "sha256": row["sha256"], "decided_by": reviewer,
                    "decided_at": at}])
            self.drafter.draft_for_site(conn, row["site"], at, actor=reviewer)

    def list(self, statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        query = select(cases).order_by(cases.c.id)
        if statuses:
            query = query.where(cases.c.status.in_(statuses))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [case_json(row) for row in rows]

    def get(self, case_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).mappings().first()
        if row is None:
            return None
        full = case_json(row, tuple(c.name for c in cases.columns))
        return full

    def count_open(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(cases).where(
                cases.c.status.in_(OPEN))).scalar_one()
