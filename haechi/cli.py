"""The `haechi` command: one entry point whose subcommands are defined next to their area.

Each module in haechi/commands adds its own subcommands; this file only wires them together,
so adding a command never means editing a central switch. It also turns a command's failure
into a sentence and its exit code family (haechi/commands/__init__.py), and imports nothing
heavy itself: `haechi --help` must stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from haechi.commands import (
    EXIT_CONFIGURATION,
    EXIT_USAGE,
    ConfigurationError,
    UsageError,
)

# In the order of the chain: bank and match, crawl, cases and notices, review, tracking; then
# the installation's own (cluster, database).
COMMAND_MODULES = ("bank", "match", "crawl", "cases", "notices", "contacts", "review", "track",
                   "cluster", "db", "chats", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="haechi",
        description="Find re-posted images of registered victims and drive their removal.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"haechi.commands.{name}").add_commands(subparsers)
    return parser


def _is_database_error(exc: BaseException) -> bool:
    """Whether `exc` is SQLAlchemy's; checked without importing SQLAlchemy, which only a
    command that already imported it can have raised."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def _missing_package(exc: ImportError) -> str:
    name = exc.name or str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    if any(f"sqlalchemy{os.sep}dialects{os.sep}" in frame.filename for frame in frames):
        return f"DATABASE_URL names a database driver that is not installed: {name}"
    return f"a package is missing from this installation: {name} (reinstall Haechi)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = f"haechi {args.command}"
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:
        return 0
    except UsageError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigurationError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except ImportError as exc:
        print(f"{command}: {_missing_package(exc)}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except Exception as exc:
        # Per-file problems are reported per file by the commands; what reaches here is the
        # installation itself: an unwritable data folder or an unreachable database.
        if not (isinstance(exc, OSError) or _is_database_error(exc)):
            raise
        print(f"{command}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION


if __name__ == "__main__":
    sys.exit(main())
