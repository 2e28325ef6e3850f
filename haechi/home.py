"""Where Haechi keeps its data: one folder, chosen by HAECHI_HOME.

Every stage asks this module for its paths so that nothing is written anywhere else, and a test
or a second installation can point HAECHI_HOME at a folder of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_home() -> Path:
    """The data folder: HAECHI_HOME if set, else the per-user data folder of the platform."""
    configured = os.environ.get("HAECHI_HOME")
    if configured:
        home = Path(configured).expanduser()
    else:
        home = Path(platformdirs.user_data_dir("haechi"))
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url() -> str:
    """DATABASE_URL if set (PostgreSQL in cluster mode), else SQLite inside the data folder."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{data_home() / 'haechi.sqlite3'}"
