"""The takedown database: this installation's engine, upgraded to the newest schema on open."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from engines.db import open_engine

MIGRATIONS = Path(__file__).with_name("migrations")
_upgraded: set[str] = set()
_lock = threading.Lock()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the takedown tables of `engine` to the newest revision (once per process)."""
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key in _upgraded:
            return
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        _upgraded.add(key)


def takedown_engine(url: str | None = None) -> Engine:
    """The engine for `url` (default: this installation's database), schema up to date."""
    engine = open_engine(url)
    upgrade(engine)
    return engine
