"""`haechi match`: check files on disk against the victim hash bank.

The matcher is imported when the command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engines.inputs import walk_files
from haechi.progress import progress

if TYPE_CHECKING:
    from matcher.match import Matcher


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    match = subparsers.add_parser(
        "match", help="check image files (or folders of them) against the victim hash bank"
    )
    match.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    match.add_argument("--json", action="store_true", help="one JSON object per input line")
    match.set_defaults(run=run_match)


def match_path(matcher: Matcher, path: Path) -> dict:
    """The contract's JSON object for one input; `error` only when it could not be read."""
    from matcher.decode import UnreadableImage

    result: dict = {"path": str(path), "matches": []}
    try:
        result["matches"] = [m.as_json() for m in matcher.match_bytes(path.read_bytes())]
    except UnreadableImage as exc:
        result["error"] = str(exc)
    except OSError as exc:
        result["error"] = f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # one strange file must never stop a run over thousands
        result["error"] = f"internal error while matching this file: {type(exc).__name__}: {exc}"
    return result


def _describe(result: dict) -> str:
    if "error" in result:
        return f"{result['path']}: error: {result['error']}"
    if not result["matches"]:
        return f"{result['path']}: no match"
    found = "; ".join(
        f"victim {m['victim']} ({m['algorithm']}, "
        + (f"{m['inliers']} inliers)" if "inliers" in m else f"distance {m['distance']})")
        for m in result["matches"]
    )
    return f"{result['path']}: MATCH {found}"


def run_match(args: argparse.Namespace) -> int:
    from matcher.bank import VictimBank
    from matcher.match import Matcher

    bank = VictimBank.open()
    if bank.stats()["hashes"] == 0:
        # Every file will say "no match"; that is the bank, not the files.
        print("haechi match: the victim bank is empty, so nothing can match (register "
              "victims' pictures or a hash list with `haechi register` first)", file=sys.stderr)
    matcher = Matcher(bank)
    files = list(walk_files(args.paths))
    for path in progress(files, "matching", total=len(files)):
        result = match_path(matcher, path)
        print(json.dumps(result, ensure_ascii=False) if args.json else _describe(result),
              flush=True)
    return 0


