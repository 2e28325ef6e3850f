"""The append-only, hash-chained audit log of everything done to cases and notices.

Each entry's hash covers its own content and the previous entry's hash, so editing, deleting
or reordering any entry breaks every hash after it: `verify` finds the first broken entry.
Reviewers' clear views of evidence are logged here too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from takedown.schema import audit_log

GENESIS = "0" * 64


def entry_hash(prev_hash: str, at: dt.datetime, case_id: int | None, notice_id: int | None,
               actor: str, action: str, detail: dict[str, Any]) -> str:
    when = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    payload = json.dumps(
        [prev_hash, when, case_id, notice_id, actor, action, detail],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def append(conn: Connection, *, actor: str, action: str, at: dt.datetime,
           case_id: int | None = None, notice_id: int | None = None,
           detail: dict[str, Any] | None = None) -> str:
    """Add one entry inside the caller's transaction; returns its hash."""
    detail = detail or {}
    last = conn.execute(
        select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1).with_for_update()
    ).scalar()
    prev = last or GENESIS
    digest = entry_hash(prev, at, case_id, notice_id, actor, action, detail)
    conn.execute(audit_log.insert(), [{
        "at": at, "case_id": case_id, "notice_id": notice_id, "actor": actor,
        "action": action, "detail": detail, "prev_hash": prev, "hash": digest,
    }])
    return digest


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_bad_id: int | None = None
    reason: str = ""


def verify_rows(rows: list[dict[str, Any]]) -> ChainCheck:
    """Check a sequence of entries (as stored or as exported) link and hash correctly."""
    prev = GENESIS
    for row in rows:
        if row["prev_hash"] != prev:
            return ChainCheck(False, len(rows), row["id"], "entry does not follow the one "
                              "before it (an entry was removed, inserted or reordered)")
        at = row["at"] if isinstance(row["at"], dt.datetime) else dt.datetime.fromisoformat(
            row["at"])
        expected = entry_hash(prev, at, row["case_id"], row["notice_id"], row["actor"],
                              row["action"], row["detail"])
        if expected != row["hash"]:
            return ChainCheck(False, len(rows), row["id"], "entry content was changed")
        prev = row["hash"]
    return ChainCheck(True, len(rows))


def verify(engine: Engine) -> ChainCheck:
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.id))
                .mappings()]
    return verify_rows(rows)


def entries_for_case(engine: Engine, case_id: int) -> list[dict[str, Any]]:
    """The case's entries as exported: times in the exact text form their hashes cover."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(audit_log).where(audit_log.c.case_id == case_id).order_by(audit_log.c.id)
        ).mappings()]
    for row in rows:
        row["at"] = row["at"].astimezone(dt.UTC).isoformat(timespec="microseconds")
    return rows
