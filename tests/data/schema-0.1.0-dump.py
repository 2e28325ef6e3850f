"""Writes the schema snapshots of release 0.1.0 (git commit 15ecf16) that tests/test_migrations.py
upgrades: run once, against that release's code, never by the tests.

    git archive 15ecf16 | tar -x -C /tmp/haechi-0.1.0
    .venv/bin/python tests/data/schema-0.1.0-dump.py /tmp/haechi-0.1.0

In 0.1.0 takedown's tables came from Alembic revisions 0001-0004 (still in
engines/migrations/versions, unchanged) and the crawler's, matcher's and grooming's from
`metadata.create_all`, the way each stage opened them. The SQLite snapshot is the release's
own database as its stages made it (every `sqlite_master` statement, and the rows a new
database had: the version row and the audit log's head); the
PostgreSQL one is the DDL `create_all` emits for the four stage metadata objects of the
release (the takedown tables are made by upgrading to 0004 first, as the release did).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = "-- Haechi 0.1.0 (15ecf16) schema, written by tests/data/schema-0.1.0-dump.py\n"


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def script(statements: list[str]) -> str:
    """One statement per `;` line end, without the trailing spaces SQLAlchemy's DDL has."""
    lines = "\n".join(f"{sql};" for sql in statements).splitlines()
    return "".join(line.rstrip() + "\n" for line in lines)


def main(release: Path) -> None:
    sys.path.insert(0, str(release))
    with tempfile.TemporaryDirectory() as home:
        os.environ["HAECHI_HOME"] = home
        os.environ.pop("DATABASE_URL", None)
        from sqlalchemy import create_mock_engine

        from crawler.records import CrawlRecords
        from crawler.records import metadata as crawler_metadata
        from grooming.excerpts import ExcerptStore
        from grooming.excerpts import metadata as grooming_metadata
        from matcher.bank import VictimBank
        from matcher.bank import metadata as bank_metadata
        from matcher.seen import SeenIndex
        from matcher.seen import metadata as seen_metadata
        from takedown.database import takedown_engine

        path = Path(home) / "haechi.sqlite3"
        url = f"sqlite:///{path}"
        engine = takedown_engine(url)  # what every stage did when it opened the database
        CrawlRecords(engine)
        VictimBank(engine, Path(home) / "index")
        SeenIndex(engine)
        ExcerptStore(url)
        engine.dispose()
        with sqlite3.connect(path) as conn:
            statements = [sql for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]
            tables = [name for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
            # The rows a new database already had: the version row, the audit log's head.
            for table in tables:
                statements += [f'INSERT INTO "{table}" VALUES ({", ".join(map(literal, row))})'
                               for row in conn.execute(f'SELECT * FROM "{table}"')]
        (HERE / "schema-0.1.0-sqlite.sql").write_text(
            HEADER + script(statements))

        emitted: list[str] = []
        mock = create_mock_engine("postgresql+psycopg://",
                                  lambda sql, *_, **__: emitted.append(
                                      str(sql.compile(dialect=mock.dialect)).strip()))
        for metadata in (crawler_metadata, bank_metadata, seen_metadata, grooming_metadata):
            metadata.create_all(mock, checkfirst=False)
        (HERE / "schema-0.1.0-postgresql.sql").write_text(
            HEADER + "-- after takedown's revisions 0001-0004\n"
            + script(emitted))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
