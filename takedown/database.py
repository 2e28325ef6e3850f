"""The takedown stage's name for the database engine with every table at head: the migrations
and the machinery that applies them are on the ground floor now (engines/db.py), one history
for every stage's tables."""

from __future__ import annotations

from engines.db import MIGRATIONS, alembic_config, migrated_engine, upgrade

__all__ = ["MIGRATIONS", "alembic_config", "takedown_engine", "upgrade"]

takedown_engine = migrated_engine
