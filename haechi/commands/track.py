"""`haechi track` and `haechi report`: following sent cases until removed, and the figures.

The takedown and matcher modules are imported when a command runs, not when the parser is
built.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from haechi.commands import UsageError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    track = subparsers.add_parser(
        "track", help="re-check sent URLs, remind hosts every 24 h, escalate, mark removals")
    track.add_argument("--json", action="store_true")
    track.set_defaults(run=run_track)
    report = subparsers.add_parser(
        "report", help="removal rates and times per host and rung, beside hotline figures")
    report.add_argument("--json", action="store_true", help="print the figures as JSON")
    report.add_argument("--html", type=Path, help="where to write the HTML page "
                        "(default: report.html in the data folder)")
    report.set_defaults(run=run_report)


def run_track(args: argparse.Namespace) -> int:
    from matcher.bank import VictimBank
    from matcher.confirm import judge_with
    from matcher.match import Matcher
    from takedown.cases import system_clock
    from takedown.database import takedown_engine
    from takedown.sending import NoticeSender
    from takedown.tracking import Tracker

    bank = VictimBank.open()
    engine = takedown_engine()
    # A withdrawn victim's sent cases are still checked, but a changed file is not called
    # removed without their hashes (takedown/tracking.py says the rule).
    result = Tracker(engine, judge_with(Matcher(bank)), NoticeSender(engine), system_clock,
                     registered=bank.is_registered).run()
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        print(f"Checked {result.checked} sent case(s): {len(result.removed)} removed, "
              f"{len(result.resent)} reminded, {len(result.escalated)} escalated, "
              f"{len(result.unreachable)} unreachable.")
        if result.withdrawn:
            print(f"{len(result.withdrawn)} case(s) of withdrawn victims checked, no longer "
                  f"pursued; {len(result.changed)} of them serve a changed file.")
        for step in result.ladder.get("climbed", []):
            skipped = "".join(f"; {s['rung']} skipped: {s['why']}" for s in step["skipped"])
            print(f"  HAECHI-{step['case']:06d} climbed to the {step['rung']} "
                  f"({step['party']}): notice {step['notice']} waits for approval{skipped}")
        if result.ladder.get("waiting"):
            print(f"{len(result.ladder['waiting'])} case(s) wait for a person to approve or "
                  "send their escalation notice.")
        for error in result.errors:
            print(f"  {error}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from engines.home import data_home
    from takedown.database import takedown_engine
    from takedown.report import build_report, render_html, render_text

    report = build_report(takedown_engine())
    html_path = args.html or data_home() / "report.html"
    try:
        html_path.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the HTML page to {html_path} "
                         f"({exc.strerror or exc})") from None
    if args.json:
        print(json.dumps(report))
        return 0
    print(render_text(report), end="")
    print(f"Charts: {html_path}")
    return 0
