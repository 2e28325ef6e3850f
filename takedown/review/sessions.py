"""Review app sessions, kept in the database: the cookie holds only a random token.

With signed cookies a session could not be ended: a cookie copied before logout (from a shared
computer, a proxy's log, a stolen laptop) stayed valid until it expired. Here the session is
the row named by the SHA-256 of the cookie's token; logging out deletes the row, a new password
deletes all of the account's rows, and a replayed cookie then names nothing. A session also
ends after IDLE_MINUTES without a request and SESSION_HOURS after login, whichever comes first.
The row carries the session's CSRF token and the clear views it was granted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select

from takedown.schema import review_sessions, reviewers

# A working day: after it, log in again even while active.
SESSION_HOURS = 8
# A screen left unattended on a hotline desk ends its session after this long.
IDLE_MINUTES = 30
# seen_at is written at most this often per session, not on every page and picture.
TOUCH_SECONDS = 60
# Random bytes in the cookie's token (and in a CSRF token): not guessable, ever.
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    id: str
    user: str
    role: str
    csrf: str
    clear_views: dict[str, float] = field(default_factory=dict)

    def clear_until(self, case_id: int) -> float:
        """POSIX time until which this session may see case `case_id` clearly (0: never)."""
        return float(self.clear_views.get(str(case_id), 0))


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def end_sessions_of(conn: Connection, user: str) -> None:
    conn.execute(review_sessions.delete().where(review_sessions.c.reviewer == user))


class Sessions:
    """The sessions of the review app on `engine`, timed by `clock` (the app's)."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def start(self, conn: Connection, user: str) -> str:
        """A new session for `user` inside the caller's transaction; returns the cookie token.

        Expired sessions of everyone are deleted on the way, so the table holds live ones.
        """
        now = self.clock()
        conn.execute(review_sessions.delete().where(
            (review_sessions.c.expires_at <= now)
            | (review_sessions.c.seen_at <= now - dt.timedelta(minutes=IDLE_MINUTES))))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        conn.execute(review_sessions.insert(), [{
            "id": session_id(token), "reviewer": user, "csrf": secrets.token_urlsafe(TOKEN_BYTES),
            "created_at": now, "seen_at": now,
            "expires_at": now + dt.timedelta(hours=SESSION_HOURS), "clear_views": {}}])
        return token

    def load(self, token: str) -> Session | None:
        """The live session the token names, or None (none, ended, expired or idle too long)."""
        now = self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(review_sessions, reviewers.c.role)
                .join(reviewers, reviewers.c.name == review_sessions.c.reviewer)
                .where(review_sessions.c.id == session_id(token))).mappings().first()
        if row is None or row["expires_at"] <= now:
            return None
        idle = now - row["seen_at"]
        if idle >= dt.timedelta(minutes=IDLE_MINUTES):
            return None
        if idle >= dt.timedelta(seconds=TOUCH_SECONDS):
            with self.engine.begin() as conn:
                conn.execute(review_sessions.update().where(
                    review_sessions.c.id == row["id"]), [{"seen_at": now}])
        return Session(id=row["id"], user=row["reviewer"], role=row["role"], csrf=row["csrf"],
                       clear_views=dict(row["clear_views"] or {}))

    def end(self, session: Session) -> None:
        with self.engine.begin() as conn:
            conn.execute(review_sessions.delete().where(review_sessions.c.id == session.id))

    def grant_clear_view(self, session: Session, case_id: int, until: float) -> None:
        """Let this session see case `case_id` clearly until POSIX time `until`."""
        now = self.clock().timestamp()
        views = {case: at for case, at in session.clear_views.items() if at > now}
        views[str(case_id)] = until
        with self.engine.begin() as conn:
            conn.execute(review_sessions.update().where(
                review_sessions.c.id == session.id), [{"clear_views": views}])
