"""Flagged excerpts, kept for a limited time: the only chat text Haechi stores.

A scan keeps nothing of a conversation that raised no alert. For one that did, it keeps the
lines that weighed most (pseudonymised speakers, the words, their times) so an agency can
read why, until HAECHI_EXCERPT_RETENTION_DAYS (default 90) have passed; every scan first
deletes what has expired.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, delete, select

from engines.db import UtcDateTime, open_engine, upgrade
from engines.settings import current

RETENTION_DAYS = 90.0
metadata = MetaData()
excerpts = Table(
    "grooming_excerpts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation", String(64), nullable=False),
    Column("speaker", String(64), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("alert", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)


def retention() -> dt.timedelta:
    return dt.timedelta(days=current().excerpt_retention_days)


class ExcerptStore:
    def __init__(self, url: str | None = None) -> None:
        self.engine = open_engine(url)
        upgrade(self.engine)

    def purge(self, now: dt.datetime | None = None) -> int:
        now = now or dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            return conn.execute(delete(excerpts).where(excerpts.c.expires_at <= now)).rowcount

    def keep(self, alert: dict[str, Any], now: dt.datetime | None = None) -> int:
        now = now or dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            return conn.execute(excerpts.insert().values(
                conversation=alert["conversation"], speaker=alert["speaker"],
                tier=alert["tier"], score=alert["score"], alert=alert, created_at=now,
                expires_at=now + retention())).inserted_primary_key[0]

    def alerted(self, conversation: str, speaker: str, tiers: tuple[str, ...]) -> bool:
        """Whether this speaker in this conversation already raised an alert at one of
        `tiers` (a scan of the same export again must not alert the agency again)."""
        with self.engine.connect() as conn:
            return conn.execute(select(excerpts.c.id).where(
                excerpts.c.conversation == conversation, excerpts.c.speaker == speaker,
                excerpts.c.tier.in_(tiers)).limit(1)).first() is not None

    def all(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(excerpts)).mappings()]
