"""`haechi notices`: the drafted removal requests, and sending the approved ones.

The takedown modules are imported when a command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json

from engines.inputs import case_id
from haechi.commands import ConfigurationError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    notices = subparsers.add_parser("notices", help="show and send removal notices")
    commands = notices.add_subparsers(dest="notices_command", required=True, metavar="COMMAND")
    show = commands.add_parser("show", help="the notice that lists a case")
    show.add_argument("case_id", type=case_id, metavar="CASE_ID", help="HAECHI-000001, or 1")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_show)
    send = commands.add_parser("send", help="send every approved notice (HAECHI_SMTP_URL)")
    send.add_argument("--json", action="store_true")
    send.set_defaults(run=run_send)


def run_show(args: argparse.Namespace) -> int:
    from takedown.database import takedown_engine
    from takedown.notices import NoticeError, notice_for_case, notice_json

    engine = takedown_engine()
    try:
        notice = notice_json(engine, notice_for_case(engine, args.case_id))
    except NoticeError as exc:
        raise SystemExit(f"haechi notices: {exc}") from None
    if args.json:
        print(json.dumps(notice, ensure_ascii=False))
        return 0
    print(f"To: {notice['to']}  ({notice['language']}, {notice['status']})")
    print(f"Subject: {notice['subject']}\n")
    print(notice["body"])
    return 0


def run_send(args: argparse.Namespace) -> int:
    from takedown.database import takedown_engine
    from takedown.sending import NoticeSender, SenderNotConfigured, SendError

    try:
        result = NoticeSender(takedown_engine()).send_approved()
    except SenderNotConfigured as exc:
        raise ConfigurationError(str(exc)) from None
    except SendError as exc:
        raise SystemExit(f"haechi notices: {exc}") from None
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Sent {len(result['sent'])} notice(s); {len(result['failed'])} failed.")
        for failure in result["failed"]:
            print(f"  notice {failure['notice']}: {failure['error']}")
    return 0 if not result["failed"] else 1
