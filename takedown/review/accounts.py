"""Reviewer accounts: a name, an argon2 password hash and a role, nothing else.

A new password ends the account's sessions on every review task (whoever knew the old one is
logged out); a role change takes effect at the account's next request, because sessions read
the role from here each time.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from takedown.review.passwords import PASSWORDS, PasswordPool
from takedown.review.roles import DEFAULT_ROLE, check_role
from takedown.review.sessions import end_sessions_of
from takedown.schema import reviewers

MIN_PASSWORD = 10
# Longer names than the column holds, and passwords longer than anyone types, are refused
# before they cost a database lookup or an argon2 check.
MAX_NAME = 100
MAX_PASSWORD = 1024


class AccountError(ValueError):
    """A bad user name, password or role; says which rule was broken."""


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.replace("-", "").replace("_", "").replace(
            ".", "").isalnum():
        raise AccountError(f"a user name is 1-{MAX_NAME} letters, digits, '.', '-' or '_'")
    return name


def add_reviewer(engine: Engine, name: str, password: str, role: str | None = None,
                 passwords: PasswordPool = PASSWORDS) -> str:
    """Make the account, or give an existing one a new password (and `role`, when named).

    Returns the account's role. Without `role` a new account is a DEFAULT_ROLE and an existing
    one keeps its own.
    """
    name = check_name(name)
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")
    if role is not None:
        try:
            check_role(role)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
    password_hash = passwords.hash(password)
    with engine.begin() as conn:
        current = conn.execute(select(reviewers.c.role).where(reviewers.c.name == name)).scalar()
        if current is not None:
            role = role or current
            conn.execute(reviewers.update().where(reviewers.c.name == name),
                         [{"password_hash": password_hash, "role": role}])
            end_sessions_of(conn, name)
        else:
            role = role or DEFAULT_ROLE
            conn.execute(reviewers.insert(), [{"name": name, "password_hash": password_hash,
                                               "role": role,
                                               "created_at": dt.datetime.now(dt.UTC)}])
    return role


def role_of(engine: Engine, name: str) -> str | None:
    """The account's role, or None when there is no account of that name."""
    with engine.connect() as conn:
        return conn.execute(select(reviewers.c.role).where(reviewers.c.name == name)).scalar()


def check_password(engine: Engine, name: str, password: str,
                   passwords: PasswordPool = PASSWORDS) -> bool:
    """True when `name` is an account and `password` is its password.

    Raises PasswordPoolBusy when no argon2 slot came free in time (nothing was checked).
    """
    with engine.connect() as conn:
        stored = conn.execute(select(reviewers.c.password_hash).where(
            reviewers.c.name == name)).scalar()
    if stored is None:
        passwords.hash(password)  # the same work for unknown names: no timing oracle
        return False
    return passwords.verify(stored, password)
