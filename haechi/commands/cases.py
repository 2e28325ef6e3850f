"""`haechi cases`: the cases opened from matches."""

from __future__ import annotations

import argparse
import json

from takedown.cases import CaseStore


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    cases = subparsers.add_parser("cases", help="list and inspect takedown cases")
    commands = cases.add_subparsers(dest="cases_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="every case, oldest first")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    found = CaseStore.open().list()
    if args.json:
        print(json.dumps(found, ensure_ascii=False))
        return 0
    if not found:
        print("No cases.")
        return 0
    for case in found:
        where = f" at {case['second']:g} s" if case["second"] is not None else ""
        print(f"#{case['id']:<5} {case['status']:<9} victim {case['victim']}: "
              f"{case['image_url']}{where} (on {case['page_url']}, {case['algorithm']} "
              f"distance {case['distance']})")
    return 0
