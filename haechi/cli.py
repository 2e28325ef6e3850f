"""The `haechi` command: one entry point whose subcommands are defined next to their area.

Each module in haechi/commands adds its own subcommands; this file only wires them together,
so adding a command never means editing a central switch.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from haechi.commands import (
    bank,
    cases,
    chats,
    cluster,
    crawl,
    demo,
    match,
    notices,
    review,
    track,
)

COMMAND_MODULES = (bank, match, crawl, cases, notices, review, track, cluster, chats, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="haechi",
        description="Find re-posted images of registered victims and drive their removal.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:
        return 0
    except (OSError, ImportError, SQLAlchemyError) as exc:
        # Per-file problems are reported per file by the commands; what reaches here is the
        # installation itself: an unwritable data folder, an unreachable database or a
        # database driver that is not installed.
        print(f"haechi: configuration error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
