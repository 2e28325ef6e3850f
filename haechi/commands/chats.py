"""`haechi chats scan`: score chat exports for grooming and alert support agencies;
`haechi chats watch`: the same on open chat rooms, live; `haechi chats dispositions`: what the
alert desk decided of the alerts, as labelled data.

The grooming modules (the classifier, the normaliser, the excerpt store) are imported when a
scan runs, not when the parser is built, and the classifier is loaded once per run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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
    watch = commands.add_parser(
        "watch", help="follow open chat rooms (irc://host[:port]/#channel, ircs://...) live "
                      "and alert on grooming",
        description="Joins each room as a silent member and prints one result per alert, the "
                    "same object as `chats scan --json` with the room's URL: once per speaker "
                    "and target when the tier first reaches review or urgent, and again when "
                    "it rises to urgent. Alerts go to HAECHI_ALERT_WEBHOOK and "
                    "HAECHI_ALERT_EMAIL as a scan's do. Runs until Ctrl-C or SIGTERM; "
                    "reconnects when a connection drops.")
    watch.add_argument("rooms", nargs="+", metavar="ROOM_URL")
    watch.add_argument("--json", action="store_true", help="one JSON object per alert")
    watch.add_argument("--no-alerts", action="store_true",
                       help="report only: send no alert and keep no excerpt")
    watch.add_argument("--nick", default="haechi",
                       help="the watcher's nickname in the rooms (at most 9 characters; "
                            "digits are added when it is taken)")
    watch.set_defaults(run=run_watch)
    dispositions = commands.add_parser(
        "dispositions", help="the alerts given a disposition at the alert desk, as labelled data",
        description="Prints one line per alert a person disposed of at the review app's alert "
                    "desk, oldest disposition first: conversation, speaker and target "
                    "(pseudonyms), tier, score, stages, the target's minor probability, the "
                    "count of reported speech, the disposition (false_alert, confirmed, "
                    "referred_police, referred_agency) and when. Never the chat's words, nor "
                    "who disposed of it; kept after the excerpt itself has expired.")
    dispositions.add_argument("--json", action="store_true",
                              help="one JSON object per disposed alert")
    dispositions.set_defaults(run=run_dispositions)


def run_scan(args: argparse.Namespace) -> int:
    from grooming.alerts import configured_sinks, describe
    from grooming.excerpts import ExcerptStore
    from grooming.scan import ChatScanner, FileError

    # One scanner for the whole run: the classifier is loaded once, not once per file.
    scanner = ChatScanner(sinks=[] if args.no_alerts else configured_sinks(),
                          store=None if args.no_alerts else ExcerptStore())
    # With --json stdout carries only the JSON objects; the timings go to stderr.
    timings = sys.stderr if args.json else sys.stdout
    failed = 0
    for path in args.files:
        started = time.perf_counter()
        conversations = 0
        readable = True
        for result in scanner.scan_file(path):
            if isinstance(result, FileError):
                failed += 1
                readable = False
                print(f"haechi chats scan: {result.error}", file=sys.stderr)
                continue
            conversations += 1
            if args.json:
                print(json.dumps(result, ensure_ascii=False), flush=True)
            elif result["tier"] == "none":
                print(f"{result['conversation']} ({result['file']}): no grooming pattern "
                      f"found (highest score {result['score']}).")
            else:
                print(describe(result))
                for sink, outcome in result.get("alerts", {}).items():
                    print(f"  alert by {sink}: {outcome}")
                print()
        if readable:
            plural = "" if conversations == 1 else "s"
            print(f"{path}: {conversations} conversation{plural} scanned in "
                  f"{time.perf_counter() - started:.2f} s", file=timings, flush=True)
    return 1 if failed else 0


def run_watch(args: argparse.Namespace) -> int:
    from grooming.alerts import configured_sinks
    from grooming.excerpts import ExcerptStore
    from grooming.watch import watch

    store = None
    if not args.no_alerts:
        store = ExcerptStore()
        store.purge()  # as a scan does: what has expired goes before anything new is kept
    return watch(args.rooms, json_output=args.json,
                 sinks=[] if args.no_alerts else configured_sinks(), store=store,
                 nick=args.nick)


def run_dispositions(args: argparse.Namespace) -> int:
    from grooming.excerpts import ExcerptStore

    for label in ExcerptStore().labels():
        if args.json:
            print(json.dumps(label, ensure_ascii=False), flush=True)
        else:
            print(f"{label['disposed_at']} {label['disposition']}: {label['tier']} alert "
                  f"(score {label['score']}) on speaker {label['speaker']} in conversation "
                  f"{label['conversation']}; stages {', '.join(label['stages']) or 'none'}")
    return 0
