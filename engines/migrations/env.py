"""Alembic environment of every table Haechi keeps (engines/db.py runs it on open).

The revisions define their tables themselves, with plain `op.create_table` and `sa.table`,
never by importing a stage's metadata: the ground floor imports no stage, and a revision must
mean what it meant when it was written, whatever the stage's code becomes.
"""

from alembic import context
from sqlalchemy import create_engine

from engines.db import VERSION_TABLE


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, version_table=VERSION_TABLE,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
