"""The database engine of this process: SQLite in the data folder on the embedded default,
PostgreSQL when DATABASE_URL names one, and the column type every stage's tables share.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
from pathlib import Path

from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event

from engines.home import PRIVATE_FILE_MODE, data_home


def database_url() -> str:
    """DATABASE_URL if set (PostgreSQL in cluster mode), else SQLite inside the data folder."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{data_home() / 'haechi.sqlite3'}"


def _private_sqlite_file(engine: Engine) -> None:
    """Create a SQLite database file mode 600 before SQLite does (it would use the umask's
    mode); its WAL and shared-memory files take the database file's mode. A missing folder is
    not made: a database URL naming one is a configuration error, which SQLite reports."""
    database = engine.url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


@functools.cache
def _engine_for(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        _private_sqlite_file(engine)

        # Crawling, matching and case intake write from several threads of one process: WAL
        # lets readers go on while one writes, and the busy timeout queues writers instead of
        # failing them.
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def open_engine(url: str | None = None) -> Engine:
    """The one SQLAlchemy engine of this process for `url` (default: `database_url()`)."""
    return _engine_for(url or database_url())


class UtcDateTime(TypeDecorator):
    """A timestamp column that always reads back as an aware UTC datetime.

    Every time Haechi stores is UTC, but SQLite keeps no zone and hands datetimes back naive,
    and PostgreSQL hands them back in the session's zone; reading them through this type means
    no caller has to repair them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
