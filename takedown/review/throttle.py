"""Login throttling, per account name and per client address, kept in the database.

Without it a guesser had as many tries as it could send (30 wrong passwords, then the right
one, went through). Every login attempt is counted as a failure *before* its password is
checked, in one transaction that locks the two rows it counts against (the name typed and the
client's address), so concurrent attempts on any number of processes or review tasks cannot
slip past the limit together; a success then takes its count back. After ACCOUNT_FAILURES
failures for one name, or ADDRESS_FAILURES from one address, with no QUIET_MINUTES pause
between them, logins are refused for FIRST_LOCK_SECONDS, and each failure after that doubles
the wait, up to LONGEST_LOCK_SECONDS. A refused attempt checks no password, costs no argon2
and does not lengthen the wait (so a guesser cannot keep a colleague locked out for longer).

Unknown names are counted and locked exactly as accounts are, and the refusal names neither:
it never says whether an account exists.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from takedown.schema import login_throttle

ACCOUNT = "account"
ADDRESS = "address"
# Failures for one name before it is locked: room for a few typos, far too few to guess.
ACCOUNT_FAILURES = 5
# Failures from one address: higher, because an office's workers share its address, yet a
# guesser trying many names from it is stopped after this many.
ADDRESS_FAILURES = 20
LIMITS = {ACCOUNT: ACCOUNT_FAILURES, ADDRESS: ADDRESS_FAILURES}
# Failures are forgotten after this long without one (counted from the end of a lock).
QUIET_MINUTES = 15
# The first lock, doubled by each failure after it, up to the longest: past the limit a
# guesser gets about 24 tries a day per name.
FIRST_LOCK_SECONDS = 60
LONGEST_LOCK_SECONDS = 3600
# An IPv6 client usually holds a whole /64; counted per address it could change address at
# every try.
IPV6_PREFIX = 64
# The longest address text kept (an IPv6 network with its prefix fits).
MAX_SUBJECT = 100


@dataclass(frozen=True)
class Refusal:
    """A login refused without checking its password, for `seconds` more."""

    seconds: int

    @property
    def message(self) -> str:
        if self.seconds >= 60:
            minutes = math.ceil(self.seconds / 60)
            wait = f"{minutes} minute{'s' if minutes > 1 else ''}"
        else:
            wait = f"{self.seconds} second{'s' if self.seconds > 1 else ''}"
        return (f"Too many failed logins with this name or from this address: wait {wait}, "
                "then try again. Nothing was checked this time.")


def address_subject(address: str) -> str:
    """What an address is counted as: itself, or its /64 for IPv6 (an IPv4 mapped into IPv6
    counts as the IPv4 address)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_SUBJECT]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


def lock_seconds(failures: int, limit: int) -> int:
    """How long a count of `failures` locks (0 below `limit`)."""
    if failures < limit:
        return 0
    return min(LONGEST_LOCK_SECONDS, FIRST_LOCK_SECONDS * 2 ** min(failures - limit, 32))


def _insert_if_missing(conn: Connection, values: dict[str, Any]) -> None:
    """Insert the row unless it is there: the write that takes the lock (SQLite's write lock,
    PostgreSQL's row lock is taken by the SELECT ... FOR UPDATE after it)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(login_throttle).values(**values).on_conflict_do_nothing())


class LoginThrottle:
    """The failed-login counts on `engine`, timed by `clock` (the review app's)."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime]) -> None:
        self.engine = engine
        self.clock = clock

    @staticmethod
    def _subjects(name: str, address: str) -> list[tuple[str, str]]:
        # Always in the same order, so that two transactions never wait on each other's rows.
        return sorted([(ACCOUNT, name[:MAX_SUBJECT]), (ADDRESS, address_subject(address))])

    @staticmethod
    def _where(scope: str, subject: str) -> ColumnElement[bool]:
        return (login_throttle.c.scope == scope) & (login_throttle.c.subject == subject)

    def _locked_row(self, conn: Connection, scope: str, subject: str, now: dt.datetime
                    ) -> dict[str, Any]:
        _insert_if_missing(conn, {"scope": scope, "subject": subject, "failures": 0,
                                  "last_failure_at": now, "locked_until": None})
        return dict(conn.execute(select(login_throttle).where(self._where(scope, subject))
                                 .with_for_update()).mappings().one())

    def admit(self, name: str, address: str) -> Refusal | None:
        """Count one attempt for `name` from `address`, or refuse it while either is locked."""
        now = self.clock()
        quiet = dt.timedelta(minutes=QUIET_MINUTES)
        with self.engine.begin() as conn:
            rows = [self._locked_row(conn, scope, subject, now)
                    for scope, subject in self._subjects(name, address)]
            waits = [(row["locked_until"] - now).total_seconds() for row in rows
                     if row["locked_until"] is not None and row["locked_until"] > now]
            if waits:
                return Refusal(math.ceil(max(waits)))
            for row in rows:
                last = max(row["last_failure_at"], row["locked_until"] or row["last_failure_at"])
                failures = (0 if now - last >= quiet else row["failures"]) + 1
                wait = lock_seconds(failures, LIMITS[row["scope"]])
                conn.execute(login_throttle.update().where(
                    self._where(row["scope"], row["subject"])), [{
                        "failures": failures, "last_failure_at": now,
                        "locked_until": now + dt.timedelta(seconds=wait) if wait else None}])
            # Rows quiet for good (a lock never outlasts its last failure by more than the
            # longest lock): forgotten, so names typed once do not pile up.
            conn.execute(login_throttle.delete().where(
                login_throttle.c.last_failure_at
                < now - quiet - dt.timedelta(seconds=LONGEST_LOCK_SECONDS)))
        return None

    def _take_back(self, conn: Connection, scope: str, subject: str) -> None:
        """Undo one counted attempt: it was not a failure. The decrement is the first write,
        so it holds the row (and SQLite's write lock) before anything is read."""
        where = self._where(scope, subject)
        conn.execute(login_throttle.update().where(where).values(
            failures=login_throttle.c.failures - 1))
        row = conn.execute(select(login_throttle).where(where)).mappings().first()
        if row is None:
            return
        if row["failures"] <= 0:
            conn.execute(login_throttle.delete().where(where))
        elif row["failures"] < LIMITS[scope] and row["locked_until"] is not None:
            # The lock this attempt's count set is lifted; one later failures set stays.
            conn.execute(login_throttle.update().where(where).values(locked_until=None))

    def succeeded(self, conn: Connection, name: str, address: str) -> None:
        """The right password: the name's failures are forgotten, the address's attempt taken
        back (other names' failures from it still count)."""
        conn.execute(login_throttle.delete().where(self._where(ACCOUNT, name[:MAX_SUBJECT])))
        self._take_back(conn, ADDRESS, address_subject(address))

    def not_checked(self, name: str, address: str) -> None:
        """The attempt was counted but its password never checked (no argon2 slot came
        free): it is taken back from both counts."""
        with self.engine.begin() as conn:
            for scope, subject in self._subjects(name, address):
                self._take_back(conn, scope, subject)
