"""Flagged excerpts, kept for a limited time: the only chat text Haechi stores.

A scan keeps nothing of a conversation that raised no alert. For one that did, it keeps the
lines that weighed most (pseudonymised speakers, the words, their times) so an agency can
read why, until HAECHI_EXCERPT_RETENTION_DAYS (default 90) have passed; every scan first
deletes what has expired.

A person at the alert desk (grooming/desk.py) gives each alert a disposition: a false alert,
confirmed, referred to the police or to a support agency. That is kept apart from the excerpt,
in `grooming_dispositions`, with what a later training run learns from: the alert's
pseudonyms, tier, score, stages and numbers (the target's minor evidence, the count of
reported speech), the label, who set it and when; never the words. When the excerpt expires it
is deleted as before, disposition or not, and the disposition loses its link to it and the
reviewer's note with it (a note may quote the chat), so the labelled data outlives the text
and carries none of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

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

# What a person at the alert desk may say of an alert, in the order the desk offers them.
DISPOSITIONS = {
    "false_alert": "false alert",
    "confirmed": "confirmed grooming",
    "referred_police": "referred to the police",
    "referred_agency": "referred to a support agency",
}
# A disposition's note, in characters: a sentence or two for the next reader, not a report.
MAX_NOTE = 2000
# The stages a label keeps, at most (the scorer knows eleven; an alert stored by anything else
# is not trusted to be small).
MAX_LABEL_STAGES = 32
PSEUDONYM_CHARS = 64
STAGE_CHARS = 32
dispositions = Table(
    "grooming_dispositions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # The excerpt it was given to; NULL once that excerpt expired and was deleted.
    Column("excerpt_id", Integer),
    Column("conversation", String(64), nullable=False),
    Column("speaker", String(64), nullable=False),
    Column("target", String(64)),
    Column("tier", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("stages", JSON, nullable=False),
    Column("minor_probability", Float),
    Column("reported_speech", Integer),
    Column("disposition", String(32), nullable=False),
    Column("note", Text),
    Column("disposed_by", String(100), nullable=False),
    Column("disposed_at", UtcDateTime, nullable=False),
    Column("alerted_at", UtcDateTime, nullable=False),
    Column("text_purged_at", UtcDateTime),
    UniqueConstraint("excerpt_id", name="uq_grooming_dispositions_excerpt_id"),
)
LABEL_SCHEMA = "haechi.grooming-label/1"


class DispositionError(ValueError):
    """A disposition that cannot be set; says why in a sentence for the person who tried."""


def retention() -> dt.timedelta:
    return dt.timedelta(days=current().excerpt_retention_days)


class ExcerptStore:
    def __init__(self, url: str | None = None) -> None:
        self.engine = open_engine(url)
        upgrade(self.engine)

    def purge(self, now: dt.datetime | None = None) -> int:
        now = now or dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            return purge(conn, now)

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

    def labels(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return list(labels(conn))


def purge(conn: Connection, now: dt.datetime) -> int:
    """Delete the excerpts that expired by `now`; their dispositions stay, without the link to
    the excerpt and without their note. Returns how many excerpts went."""
    expired = select(excerpts.c.id).where(excerpts.c.expires_at <= now)
    conn.execute(update(dispositions).where(dispositions.c.excerpt_id.in_(expired))
                 .values(excerpt_id=None, note=None, text_purged_at=now))
    return conn.execute(delete(excerpts).where(excerpts.c.expires_at <= now)).rowcount


# Urgent alerts first, then the rest; within a tier the one waiting longest.
_URGENCY = case((excerpts.c.tier == "urgent", 0), else_=1)


def open_alerts(conn: Connection, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """The alerts nobody has disposed of yet and whose excerpt has not expired, urgent first
    and then oldest first; at most `limit`."""
    disposed = select(dispositions.c.excerpt_id).where(dispositions.c.excerpt_id.is_not(None))
    rows = conn.execute(
        select(excerpts).where(excerpts.c.expires_at > now, excerpts.c.id.not_in(disposed))
        .order_by(_URGENCY, excerpts.c.created_at, excerpts.c.id).limit(limit)).mappings()
    return [dict(row) for row in rows]


def count_open(conn: Connection, now: dt.datetime) -> int:
    disposed = select(dispositions.c.excerpt_id).where(dispositions.c.excerpt_id.is_not(None))
    return conn.execute(select(func.count()).select_from(excerpts).where(
        excerpts.c.expires_at > now, excerpts.c.id.not_in(disposed))).scalar_one()


def excerpt(conn: Connection, excerpt_id: int, now: dt.datetime) -> dict[str, Any] | None:
    """The excerpt `excerpt_id` if it has not expired, with its disposition (None if none)."""
    row = conn.execute(select(excerpts).where(
        excerpts.c.id == excerpt_id, excerpts.c.expires_at > now)).mappings().first()
    if row is None:
        return None
    given = conn.execute(select(dispositions).where(
        dispositions.c.excerpt_id == excerpt_id)).mappings().first()
    return {**row, "disposition": dict(given) if given else None}


def _bounded_text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def label_features(alert: Mapping[str, Any]) -> dict[str, Any]:
    """What a label keeps of an alert besides its columns, read defensively (an alert is JSON
    that any version of the scorer, or anyone with the database, may have written): the
    target's pseudonym, the stage names, the target's minor probability, the count of
    reported speech. Numbers and names only."""
    alert = alert if isinstance(alert, Mapping) else {}
    stages = alert.get("stages")
    names = [s[:STAGE_CHARS] for s in stages if isinstance(s, str)] if isinstance(
        stages, list) else []
    minor = alert.get("minor_evidence")
    probability = minor.get("probability") if isinstance(minor, Mapping) else None
    if not (isinstance(probability, int | float) and not isinstance(probability, bool)
            and 0.0 <= probability <= 1.0):
        probability = None
    reported = alert.get("reported_speech")
    if not (isinstance(reported, int) and not isinstance(reported, bool) and reported >= 0):
        reported = None
    return {"target": _bounded_text(alert.get("target"), PSEUDONYM_CHARS),
            "stages": names[:MAX_LABEL_STAGES],
            "minor_probability": None if probability is None else float(probability),
            "reported_speech": reported}


def dispose(conn: Connection, excerpt_id: int, disposition: str, by: str, at: dt.datetime,
            note: str = "") -> dict[str, Any]:
    """Give the excerpt's alert its disposition inside the caller's transaction (the caller
    writes the audit entry in the same one); returns the stored row. Raises DispositionError
    for an unknown disposition, an alert that is gone or expired, or one already disposed of
    (also when another person's disposition won the race)."""
    if disposition not in DISPOSITIONS:
        raise DispositionError(f"unknown disposition {disposition!r}: one of "
                               f"{', '.join(DISPOSITIONS)}")
    if len(note) > MAX_NOTE:
        raise DispositionError(f"the note is {len(note)} characters; at most {MAX_NOTE}")
    found = excerpt(conn, excerpt_id, at)
    if found is None:
        raise DispositionError(f"there is no alert {excerpt_id} (it may have expired)")
    if found["disposition"] is not None:
        raise DispositionError(_already(found["disposition"]))
    row = {"excerpt_id": excerpt_id, "conversation": found["conversation"],
           "speaker": found["speaker"], "tier": found["tier"], "score": found["score"],
           **label_features(found["alert"]), "disposition": disposition,
           "note": note.strip() or None, "disposed_by": by, "disposed_at": at,
           "alerted_at": found["created_at"]}
    try:
        with conn.begin_nested():
            conn.execute(dispositions.insert(), [row])
    except IntegrityError:  # another person's disposition, between the read and the write
        given = conn.execute(select(dispositions).where(
            dispositions.c.excerpt_id == excerpt_id)).mappings().first()
        raise DispositionError(_already(dict(given) if given else None)) from None
    return row


def _already(given: Mapping[str, Any] | None) -> str:
    if given is None:
        return "this alert was already disposed of"
    said = DISPOSITIONS.get(given["disposition"], given["disposition"])
    return f"this alert was already disposed of: {said}, by {given['disposed_by']}"


def labels(conn: Connection) -> Iterator[dict[str, Any]]:
    """Every disposed alert as labelled data, oldest disposition first: pseudonyms, numbers
    and the label, no words: what a later training run reads."""
    rows = conn.execute(select(dispositions).order_by(dispositions.c.disposed_at,
                                                       dispositions.c.id)).mappings()
    for row in rows:
        yield {"schema": LABEL_SCHEMA, "conversation": row["conversation"],
               "speaker": row["speaker"], "target": row["target"], "tier": row["tier"],
               "score": row["score"], "stages": row["stages"],
               "minor_probability": row["minor_probability"],
               "reported_speech": row["reported_speech"], "disposition": row["disposition"],
               "alerted_at": row["alerted_at"].isoformat(),
               "disposed_at": row["disposed_at"].isoformat()}
