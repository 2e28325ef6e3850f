"""Alembic environment for the takedown tables (its own version table, so other areas of
Haechi can keep their own schema history)."""

from alembic import context
from sqlalchemy import create_engine

VERSION_TABLE = "alembic_version_takedown"


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
