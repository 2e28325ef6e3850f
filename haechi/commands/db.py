"""`haechi db upgrade`: every table of this installation's database to the newest revision.

Every command upgrades the database it opens anyway (engines/db.py); this one does it on its
own, for a deployment step before the services start, and says from which revision to which.
SQLAlchemy and Alembic are imported when it runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="the database's schema")
    commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = commands.add_parser(
        "upgrade", help="bring every table to the newest revision (DATABASE_URL, else the "
                        "data folder's SQLite)")
    upgrade.add_argument("--json", action="store_true",
                         help='print {"database": ..., "from": ..., "to": ...}')
    upgrade.set_defaults(run=run_upgrade)


def run_upgrade(args: argparse.Namespace) -> int:
    from engines.db import current_revision, open_engine, shown_url, upgrade

    engine = open_engine()
    before = current_revision(engine)
    upgrade(engine)
    summary = {"database": shown_url(engine), "from": before, "to": current_revision(engine)}
    if args.json:
        print(json.dumps(summary))
    elif before == summary["to"]:
        print(f"{summary['database']}: already at revision {before}.")
    else:
        print(f"{summary['database']}: upgraded from revision {before or '(none)'} to "
              f"{summary['to']}.")
    return 0
