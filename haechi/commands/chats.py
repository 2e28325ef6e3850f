"""`haechi chats scan`: score chat exports for grooming and alert support agencies."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    chats = subparsers.add_parser("chats", help="grooming early warning on chat exports")
    commands = chats.add_subparsers(dest="chats_command", required=True, metavar="COMMAND")
    scan = commands.add_parser(
        "scan", help="score chat exports (KakaoTalk .txt, Telegram result.json, "
                     "DiscordChatExporter .json) and alert on grooming",
        description="Prints one result per conversation: its riskiest speaker (a pseudonym), "
                    "score, tier (none, review, urgent), stages and the lines that weighed "
                    "most. Alerts go to HAECHI_ALERT_WEBHOOK and HAECHI_ALERT_EMAIL; only "
                    "flagged excerpts are kept, for HAECHI_EXCERPT_RETENTION_DAYS.")
    scan.add_argument("files", nargs="+", type=Path, metavar="FILE")
    scan.add_argument("--json", action="store_true", help="one JSON object per conversation")
    scan.add_argument("--no-alerts", action="store_true",
                      help="report only: send no alert and keep no excerpt")
    scan.set_defaults(run=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    from grooming.alerts import configured_sinks, describe
    from grooming.excerpts import ExcerptStore
    from grooming.scan import FileError, scan

    sinks = [] if args.no_alerts else configured_sinks()
    store = None if args.no_alerts else ExcerptStore()
    failed = 0
    for result in scan(args.files, sinks=sinks, store=store):
        if isinstance(result, FileError):
            failed += 1
            print(f"haechi chats scan: {result.error}", file=sys.stderr)
        elif args.json:
            print(json.dumps(result, ensure_ascii=False))
        elif result["tier"] == "none":
            print(f"{result['conversation']} ({result['file']}): no grooming pattern found "
                  f"(highest score {result['score']}).")
        else:
            print(describe(result))
            for sink, outcome in result.get("alerts", {}).items():
                print(f"  alert by {sink}: {outcome}")
            print()
    return 1 if failed else 0
