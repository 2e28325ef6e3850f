"""`haechi notices`: the drafted removal requests, and sending the approved ones.

The takedown modules are imported when a command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json

from engines.inputs import case_id
from haechi.commands import ConfigurationError, UsageError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    notices = subparsers.add_parser("notices", help="show and send removal notices")
    commands = notices.add_subparsers(dest="notices_command", required=True, metavar="COMMAND")
    show = commands.add_parser("show", help="the notice that lists a case")
    show.add_argument("case_id", type=case_id, metavar="CASE_ID", help="HAECHI-000001, or 1")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_show)
    send = commands.add_parser("send", help="send every approved notice (HAECHI_SMTP_URL)")
    send.add_argument("--as", dest="sender", metavar="NAME",
                      help="the account that sends, in the audit log (required with "
                           "HAECHI_FOUR_EYES=1: a notice its approver, or whoever saw its "
                           "pictures clearly, approved or saw is held for someone else)")
    send.add_argument("--json", action="store_true")
    send.set_defaults(run=run_send)
    answer = commands.add_parser(
        "answer", help="record what a party answered to a notice (kept on its cases' ladder)")
    answer.add_argument("notice_id", type=int, metavar="NOTICE_ID")
    answer.add_argument("--text", required=True, help="the answer, as the reviewer read it")
    answer.add_argument("--as", dest="reviewer", required=True, metavar="NAME",
                        help="who read it, in the audit log")
    answer.add_argument("--json", action="store_true")
    answer.set_defaults(run=run_answer)


def run_answer(args: argparse.Namespace) -> int:
    import datetime as dt

    from takedown.database import takedown_engine
    from takedown.ladder import record_answer
    from takedown.notices import NoticeError

    try:
        listed = record_answer(takedown_engine(), args.notice_id, args.text, args.reviewer,
                               dt.datetime.now(dt.UTC))
    except NoticeError as exc:
        raise SystemExit(f"haechi notices: {exc}") from None
    if args.json:
        print(json.dumps({"notice": args.notice_id, "cases": listed}))
    else:
        print(f"Answer kept on notice {args.notice_id} and its {len(listed)} case(s).")
    return 0


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
    from sqlalchemy import Connection

    from engines.settings import current
    from takedown.database import takedown_engine
    from takedown.review.accounts import role_of
    from takedown.review.roles import SEND, four_eyes_objection, may, refusal
    from takedown.sending import NoticeSender, SenderNotConfigured, SendError

    four_eyes = current().four_eyes
    if four_eyes and not args.sender:
        raise UsageError("with four eyes (HAECHI_FOUR_EYES=1) say who sends: --as NAME")
    engine = takedown_engine()
    if args.sender:
        role = role_of(engine, args.sender)
        if role is None:
            raise UsageError(f"no account {args.sender!r} (haechi users add NAME --role sender)")
        if not may(role, SEND):
            raise UsageError(refusal(role, SEND))

    def hold(conn: Connection, notice_id: int) -> str | None:
        return four_eyes_objection(conn, notice_id, args.sender) if four_eyes else None

    try:
        result = NoticeSender(engine).send_approved(actor=args.sender or "system", hold=hold)
    except SenderNotConfigured as exc:
        raise ConfigurationError(str(exc)) from None
    except SendError as exc:
        raise SystemExit(f"haechi notices: {exc}") from None
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Sent {len(result['sent'])} notice(s); {len(result['failed'])} failed; "
              f"{len(result['held'])} held for another sender.")
        for failure in result["failed"]:
            print(f"  notice {failure['notice']}: {failure['error']}")
        for held in result["held"]:
            print(f"  notice {held['notice']} held: {held['reason']}")
    return 0 if not result["failed"] else 1
