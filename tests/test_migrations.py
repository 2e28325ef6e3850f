"""One schema history for every table: a database as release 0.1.0 left it (takedown's tables
from revisions 0001-0004, the crawler's, matcher's and grooming's from `create_all`) upgrades
in place with the real `haechi db upgrade`, keeps every row, and ends with the schema a new
database gets, which is the one the stages' own table definitions describe. SQLite and
PostgreSQL.

The 0.1.0 schema is a snapshot (tests/data/schema-0.1.0-*.sql, written from that release's
code by tests/data/schema-0.1.0-dump.py), so these tests do not depend on git history.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from engines.bankkey import KEY_VARIABLE
from engines.db import VERSION_TABLE, alembic_config, head_revision
from tests.takedown_helpers import postgres_database

DATA = Path(__file__).resolve().parent / "data"
HAECHI = str(Path(sys.executable).with_name("haechi"))
START = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
# The revision 0.1.0 left in its version table.
RELEASE_REVISION = "0004"
# The bank key every upgrade here is given (a database with victim hashes outside the data
# folder needs one: engines.bankkey.key_for_existing_rows).
KEY = "test-bank-key-" + "0123456789abcdef" * 3
# What an upgrade changes in rows that survive it: victims' codes are encrypted since 0006
# (tests/test_bank_at_rest.py checks they decrypt to what was registered).
CHANGED = {"victim_hashes": {"code"}}
# Tables made by revisions after 0.1.0 (empty after the upgrade: nothing to keep).
ADDED_SINCE = {"grooming_dispositions", "escalations", "rdap_cache", "victims"}


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest, haechi_home: Path,
                 ) -> Iterator[Callable[[], str]]:
    """Makes new, empty databases of one kind (each call another), gone after the test."""
    haechi_home.mkdir(parents=True, exist_ok=True)
    numbers = itertools.count(1)
    with contextlib.ExitStack() as made:
        def make() -> str:
            if request.param == "sqlite":
                return f"sqlite:///{haechi_home / f'database-{next(numbers)}.sqlite3'}"
            return made.enter_context(postgres_database())

        yield make


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    return new_database()


def statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.startswith("--")]
    return [sql.strip() for sql in "\n".join(lines).split(";\n") if sql.strip().strip(";")]


def make_release_database(url: str) -> None:
    """The database 0.1.0 made at `url`, empty."""
    engine = sa.create_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            with sqlite3.connect(engine.url.database) as raw:
                raw.executescript((DATA / "schema-0.1.0-sqlite.sql").read_text())
            return
        # On PostgreSQL the release's takedown tables are its revisions (unchanged since);
        # the snapshot holds what create_all added.
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, RELEASE_REVISION)
            for sql in statements((DATA / "schema-0.1.0-postgresql.sql").read_text()):
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def column_value(column: sa.Column, n: int) -> Any:
    """Row `n`'s value of `column`, by its reflected type; a foreign key takes the value of the
    column it names, so every reference holds."""
    for key in column.foreign_keys:
        return column_value(key.column, n)
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return n % 2 == 0
    if isinstance(kind, sa.Integer):
        return n
    if isinstance(kind, sa.Float):
        return n + 0.25
    if isinstance(kind, sa.DateTime):
        return START + dt.timedelta(minutes=n)
    if isinstance(kind, sa.JSON):
        return {"n": n, "text": "해치"}
    if isinstance(kind, sa.LargeBinary):
        return bytes([n]) * 32
    return f"{column.name}-{n}"[:getattr(kind, "length", None) or 100]


def table_rows(table: sa.Table) -> list[dict[str, Any]]:
    """Two rows for `table`, ids left to the database."""
    return [{column.name: column_value(column, n) for column in table.columns
             if not (column.primary_key and isinstance(column.type, sa.Integer))}
            for n in (1, 2)]


def fill(url: str, rows: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """Rows in every table of `url`'s database (`rows` for the tables it names)."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            # A table the release filled itself (the version, the audit log's head) is left.
            if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0:
                conn.execute(table.insert(), (rows or {}).get(table.name) or table_rows(table))
    engine.dispose()


def read_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary key order."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        found = {table.name: [dict(row) for row in conn.execute(
                     sa.select(table).order_by(*table.primary_key.columns)).mappings()]
                 for table in metadata.sorted_tables}
    engine.dispose()
    return found


def schema(url: str) -> dict[str, dict[str, Any]]:
    """What SQLAlchemy's inspector says of every table: the shape two databases must share."""
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    described = {}
    for name in sorted(inspector.get_table_names()):
        key = inspector.get_pk_constraint(name)
        described[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in inspector.get_columns(name)],
            "primary_key": (key["name"], key["constrained_columns"]),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]),
                               sorted((option, str(value)) for option, value
                                      in i.get("dialect_options", {}).items()))
                              for i in inspector.get_indexes(name)),
            "unique": sorted((u["name"], tuple(u["column_names"]))
                             for u in inspector.get_unique_constraints(name)),
            "foreign_keys": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                                    tuple(f["referred_columns"]), str(f.get("options")))
                                   for f in inspector.get_foreign_keys(name)),
            "checks": sorted((c["name"], c["sqltext"])
                             for c in inspector.get_check_constraints(name)),
        }
    engine.dispose()
    return described


def db_upgrade(url: str, *extra: str, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DATABASE_URL": url, KEY_VARIABLE: KEY, **(env or {})}
    return subprocess.run([HAECHI, "db", "upgrade", *extra], env=environment,
                          capture_output=True, text=True, timeout=300)


def upgraded(url: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = db_upgrade(url, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_release_database_upgrades_in_place_keeping_every_row(database_url: str) -> None:
    make_release_database(database_url)
    fill(database_url)
    before = read_rows(database_url)
    assert all(before[name] for name in before if name != VERSION_TABLE)
    report = upgraded(database_url)
    assert report == {"database": sa.make_url(database_url).render_as_string(),
                      "from": RELEASE_REVISION, "to": head_revision()}
    after = read_rows(database_url)
    assert set(after) == set(before) | ADDED_SINCE
    assert all(after[name] == [] for name in ADDED_SINCE)
    for name, rows in before.items():
        if name != VERSION_TABLE:
            same = set(rows[0]) - CHANGED.get(name, set())
            assert [{c: row[c] for c in same} for row in after[name]] == [
                {c: row[c] for c in same} for row in rows], name
    assert upgraded(database_url)["from"] == head_revision()  # nothing left to do


def test_an_upgraded_release_database_has_the_schema_of_a_new_one(
        new_database: Callable[[], str]) -> None:
    release, fresh = new_database(), new_database()
    make_release_database(release)
    upgraded(release)
    assert upgraded(fresh)["from"] is None
    assert schema(release) == schema(fresh)


def test_the_migrated_schema_is_the_one_the_stages_define(database_url: str) -> None:
    """A revision and its stage's Table may not drift apart: what autogenerate would write
    for the stages' metadata against a migrated database is nothing."""
    from crawler.records import metadata as crawler
    from grooming.excerpts import metadata as grooming
    from matcher.bank import metadata as bank
    from matcher.seen import metadata as seen
    from takedown.schema import metadata as takedown

    upgraded(database_url)
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, [takedown, crawler, bank, seen, grooming]) == []
    engine.dispose()


def test_two_processes_upgrading_at_once_both_succeed(database_url: str) -> None:
    make_release_database(database_url)
    environment = {**os.environ, "DATABASE_URL": database_url}
    running = [subprocess.Popen([HAECHI, "db", "upgrade", "--json"], env=environment,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    results = [(process.wait(timeout=300), *process.communicate()) for process in running]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    assert {json.loads(out)["to"] for _, out, _ in results} == {head_revision()}


def test_a_database_from_a_newer_release_is_refused_in_a_sentence(database_url: str) -> None:
    upgraded(database_url)
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    result = db_upgrade(database_url)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "revision 9999" in result.stderr and "newer release" in result.stderr


def test_the_head_read_from_file_names_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
