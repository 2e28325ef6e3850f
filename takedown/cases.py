"""The case store: one case per (victim, URL), opened from match events.

A case is the unit a reviewer approves and a notice cites. Repeated events for the same victim
and URL (another algorithm, another frame of a video, a re-crawl) join the existing case
instead of opening another. The takedown stages (notices, review, sending, tracking) build on
this table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import IntegrityError

from haechi.home import open_engine
from matcher.events import MatchEvent

metadata = MetaData()

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("victim", String(200), nullable=False),
    Column("image_url", Text, nullable=False),
    Column("page_url", Text, nullable=False),
    Column("site", String(255), nullable=False),
    Column("algorithm", String(32), nullable=False),
    Column("distance", Integer, nullable=False),
    Column("second", Float),
    Column("sha256", String(64), nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("server_ip", String(64)),
    Column("headers", JSON, nullable=False),
    Column("store_key", String(200)),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
    Column("signals", JSON, nullable=False),
    UniqueConstraint("victim", "image_url", name="uq_cases_victim_url"),
)

LIST_FIELDS = ("id", "victim", "image_url", "page_url", "site", "algorithm", "distance",
               "second", "sha256", "server_ip", "detected_at", "status")


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands datetimes back without their zone; every time Haechi stores is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def case_json(row: Any, fields: tuple[str, ...] = LIST_FIELDS) -> dict[str, Any]:
    data = {name: row[name] for name in fields}
    for name, value in data.items():
        if isinstance(value, dt.datetime):
            data[name] = _aware(value).isoformat()
    return data


class CaseStore:
    """Opens and reads cases."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    @classmethod
    def open(cls, url: str | None = None) -> CaseStore:
        return cls(open_engine(url))

    def open_cases(self, events: list[MatchEvent]) -> list[int]:
        """Open a case per new (victim, URL) among `events`; returns the ids of new cases."""
        opened = []
        for event in events:
            signal = {"algorithm": event.algorithm, "distance": event.distance,
                      "second": event.second}
            with self.engine.begin() as conn:
                existing = conn.execute(
                    select(cases.c.id, cases.c.signals).where(
                        cases.c.victim == event.victim, cases.c.image_url == event.image_url)
                ).first()
                if existing is not None:
                    if signal not in existing.signals:
                        conn.execute(cases.update().where(cases.c.id == existing.id),
                                     [{"signals": [*existing.signals, signal]}])
                    continue
                try:
                    result = conn.execute(cases.insert(), [{
                        "victim": event.victim, "image_url": event.image_url,
                        "page_url": event.page_url, "site": event.site,
                        "algorithm": event.algorithm, "distance": event.distance,
                        "second": event.second, "sha256": event.sha256,
                        "media_type": event.media_type, "server_ip": event.server_ip,
                        "headers": event.headers, "store_key": event.store_key,
                        "fetched_at": event.fetched_at, "detected_at": event.detected_at,
                        "status": "detected", "signals": [signal],
                    }])
                except IntegrityError:  # another writer opened it a moment ago
                    continue
                opened.append(int(result.inserted_primary_key[0]))
        return opened

    def list(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(cases).order_by(cases.c.id)).mappings().all()
        return [case_json(row) for row in rows]
