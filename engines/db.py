"""The database engine of this process: SQLite in the data folder on the embedded default,
PostgreSQL when DATABASE_URL names one; the column type every stage's tables share; and the one
schema history of every table (Alembic, engines/migrations/), brought to head on open.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event, inspect, text

from engines.home import PRIVATE_FILE_MODE, data_home
from engines.settings import ConfigurationError, current

if TYPE_CHECKING:
    from alembic.config import Config


def database_url() -> str:
    """DATABASE_URL if set (PostgreSQL in cluster mode), else SQLite inside the data folder."""
    return current().database_url or f"sqlite:///{data_home() / 'haechi.sqlite3'}"


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
            # The timeout first: switching to WAL takes a lock too, and without it a second
            # process starting beside one that migrates fails at once ("database is locked").
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA journal_mode=WAL")
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


# --- the schema ------------------------------------------------------------------------------

# Every table's history (takedown's, the crawler's, the matcher's, grooming's) is one line of
# Alembic revisions here; a stage that opens the database calls `upgrade` instead of making its
# own tables, so every process works on the same schema.
MIGRATIONS = Path(__file__).with_name("migrations")
# The table Alembic keeps the revision in. It keeps the name it had when only takedown's tables
# were migrated: the databases of that release hold their revision in it, and a new name would
# be one more step an upgrade could fail at, for nothing.
VERSION_TABLE = "alembic_version_takedown"
# Revision files are named after their revision (`0005_stage_tables.py`), one after the other.
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
# The PostgreSQL advisory lock every upgrade takes first ("HaechiDb"): processes starting at
# once on a new release migrate one after the other, and the later ones find the work done.
_UPGRADE_LOCK = 0x4861656368694462

_upgraded: set[str] = set()
_upgrading = threading.Lock()


class SchemaVersionError(ConfigurationError):
    """The database is at a revision this release does not have: a newer Haechi upgraded it."""


def alembic_config() -> Config:
    """The Alembic configuration of MIGRATIONS (what `alembic -c` would read)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision, from the revision files' names: a process whose database is at head
    then never imports Alembic (tests/test_migrations.py holds this to Alembic's own head)."""
    return max(match.group(1) for path in (MIGRATIONS / "versions").iterdir()
               if (match := _REVISION_FILE.match(path.name)))


def current_revision(engine: Engine) -> str | None:
    """The revision `engine`'s database is at; None for a database no revision was applied to
    (new, or made by a release that only had `create_all`)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def shown_url(engine: Engine) -> str:
    """`engine`'s URL as it may be printed: without its password."""
    return engine.url.render_as_string(hide_password=True)


def upgrade(engine: Engine) -> None:
    """Bring every table of `engine`'s database to the head revision, once per process and
    database.

    A database already at head costs one query and no Alembic import (`haechi match` stays
    light). Otherwise the revisions run in one transaction that holds the database for its
    length (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE), so two processes starting
    on a new release do not both migrate.
    """
    key = engine.url.render_as_string(hide_password=False)
    with _upgrading:
        if key in _upgraded:
            return
        before = current_revision(engine)
        if before != head_revision():
            _migrate(engine, before)
        _upgraded.add(key)


def _migrate(engine: Engine, before: str | None) -> None:
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        elif engine.dialect.name == "sqlite":
            # pysqlite would begin only at the first INSERT, leaving the DDL before it outside
            # the transaction and unlocked.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise SchemaVersionError(
                f"the database {shown_url(engine)} is at revision {before}, which this release "
                f"of Haechi does not have (its newest is {head_revision()}): a newer release "
                "upgraded it; run that one") from exc
    if engine.dialect.name == "sqlite":
        # A revision that rewrote rows (the bank's encryption) leaves their old pages in the
        # write-ahead log until a checkpoint: write them back and empty the log now.
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def migrated_engine(url: str | None = None) -> Engine:
    """The engine for `url` (default: `database_url()`), its tables at the head revision."""
    engine = open_engine(url)
    upgrade(engine)
    return engine
