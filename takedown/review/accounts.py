"""Reviewer accounts: names and argon2 password hashes, nothing else."""

from __future__ import annotations

import datetime as dt

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select

from takedown.schema import reviewers

_hasher = PasswordHasher()
MIN_PASSWORD = 10


class AccountError(ValueError):
    """A bad user name or password; says which rule was broken."""


def add_reviewer(engine: Engine, name: str, password: str) -> None:
    name = name.strip()
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").replace(
            ".", "").isalnum():
        raise AccountError("a user name is 1-100 letters, digits, '.', '-' or '_'")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    with engine.begin() as conn:
        if conn.execute(select(reviewers.c.name).where(reviewers.c.name == name)).first():
            conn.execute(reviewers.update().where(reviewers.c.name == name),
                         [{"password_hash": _hasher.hash(password)}])
        else:
            conn.execute(reviewers.insert(), [{"name": name, "password_hash":
                                               _hasher.hash(password),
                                               "created_at": dt.datetime.now(dt.UTC)}])


def check_password(engine: Engine, name: str, password: str) -> bool:
    with engine.connect() as conn:
        stored = conn.execute(select(reviewers.c.password_hash).where(
            reviewers.c.name == name)).scalar()
    if stored is None:
        _hasher.hash(password)  # the same work for unknown names: no timing oracle
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
