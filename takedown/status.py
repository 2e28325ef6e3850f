"""The case status machine: which moves are allowed, and the one function that makes them.

    detected → drafted → approved → sent → removed
    any open status → rejected (a false match)      sent → escalated → sent/removed
    removed → reuploaded (the picture came back; a linked case carries on)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from takedown import audit
from takedown.schema import cases

OPEN = ("detected", "drafted", "approved", "sent", "escalated")
ALLOWED: dict[str, set[str]] = {
    "detected": {"drafted", "rejected"},
    "drafted": {"drafted", "approved", "rejected"},
    "approved": {"drafted", "sent", "rejected"},
    "sent": {"sent", "removed", "escalated", "rejected"},
    "escalated": {"sent", "escalated", "removed", "rejected"},
    "removed": {"reuploaded"},
    "rejected": set(),
    "reuploaded": set(),
}


class TransitionError(ValueError):
    """A move the status machine does not allow; the message names both statuses."""


def transition(conn: Connection, case_id: int, to: str, *, actor: str, at: dt.datetime,
               detail: dict[str, Any] | None = None, **values: Any) -> str:
    """Move case `case_id` to `to`, setting `values` too, and log it; returns the old status."""
    current = conn.execute(select(cases.c.status).where(cases.c.id == case_id)).scalar()
    if current is None:
        raise TransitionError(f"no case {case_id}")
    if to not in ALLOWED[current]:
        raise TransitionError(f"case {case_id} cannot go from {current} to {to}")
    conn.execute(cases.update().where(cases.c.id == case_id)
                 .values(status=to, status_at=at, **values))
    audit.append(conn, actor=actor, action=f"status:{to}", at=at, case_id=case_id,
                 detail={"from": current, **(detail or {})})
    return current
