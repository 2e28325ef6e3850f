"""`haechi register`, `haechi withdraw` and `haechi bank stats`: managing the victim hash bank.

The matcher (SQLAlchemy, FAISS, the hashers) is imported when a command runs, not when the
parser is built.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engines.inputs import InputFileError, read_csv, walk_files
from haechi.progress import progress

if TYPE_CHECKING:
    from matcher.bank import VictimBank


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    register = subparsers.add_parser(
        "register",
        help="register a victim's images (only hashes are kept) or import a hash list",
        description="Register victim images. The images are hashed and never stored.",
    )
    source = register.add_mutually_exclusive_group(required=True)
    source.add_argument("--victim", metavar="ID", help="victim reference for FILE...")
    source.add_argument("--manifest", metavar="CSV", type=Path,
                        help="CSV with header victim,path (paths relative to the CSV), and "
                             "optionally minor_at_capture (yes/no per row)")
    source.add_argument("--hashes", metavar="CSV", type=Path,
                        help="hash list CSV with header victim,algorithm,hash, or "
                             "python-threatexchange's collab,signal_type,signal_str (PDQ, "
                             "vPDQ)")
    register.add_argument("files", nargs="*", metavar="FILE", help="image files or folders")
    register.add_argument("--minor-at-capture", action="store_true",
                          help="the victim was under 18 when the pictures were taken: reports "
                               "of them are sent as CSAM reports (X-ARF content/csam). Kept "
                               "until the victim withdraws; applies to every victim registered "
                               "by this command")
    register.add_argument("--json", action="store_true", help="print the summary as JSON")
    register.add_argument("--recheck", action="store_true",
                          help="fetch each earlier copy found among the crawled files again "
                               "and raise only those still online")
    register.set_defaults(run=run_register)

    withdraw = subparsers.add_parser(
        "withdraw", help="remove every hash of a victim (consent withdrawn)"
    )
    withdraw.add_argument("--victim", metavar="ID", required=True)
    withdraw.add_argument("--json", action="store_true")
    withdraw.set_defaults(run=run_withdraw)

    bank = subparsers.add_parser("bank", help="inspect the victim hash bank")
    bank_commands = bank.add_subparsers(dest="bank_command", required=True, metavar="COMMAND")
    stats = bank_commands.add_parser("stats", help="how many victims and hashes are registered")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(run=run_stats)


def _register_files(bank: VictimBank, pairs: list[tuple[str, Path]], minors: set[str]
                    ) -> dict:
    from matcher.decode import UnreadableImage
    from matcher.hasher import ImageHasher
    from matcher.signals import SIGNAL_TYPES

    hasher = ImageHasher()
    summary: dict = {"files": 0, "registered": 0, "hashes_added": 0, "errors": [],
                     "per_file": []}
    for victim, path in progress(pairs, "registering", total=len(pairs)):
        summary["files"] += 1
        try:
            records = hasher.registration_hashes(path.read_bytes(), local=True)
            summary["hashes_added"] += bank.add(victim, records, source=path.name,
                                                minor_at_capture=victim in minors)
            summary["registered"] += 1
            held = {r.algorithm for r in records}
            # Which signals hold the picture, so a picture only the local stage can find (too
            # plain for PDQ and pHash) is never taken for one the hash lists could share.
            summary["per_file"].append({"path": str(path), "victim": victim,
                                        "signals": [s for s in SIGNAL_TYPES if s in held]})
        except (UnreadableImage, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            summary["errors"].append({"path": str(path), "victim": victim, "error": reason})
    bank.save()
    return summary


# The manifest's optional column saying a row's victim was a minor when the pictures were taken.
MINOR_COLUMN = "minor_at_capture"
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}


def _manifest_pairs(manifest: Path) -> tuple[list[tuple[str, Path]], set[str]]:
    """The (victim, file) pairs a manifest lists, and the victims its minor_at_capture column
    (when the header names it; then every row says yes or no) marks as minors at capture."""
    from matcher.bank import BankError

    base = manifest.parent
    columns = ("victim", "path", MINOR_COLUMN) if _names_column(manifest, MINOR_COLUMN) else (
        "victim", "path")
    pairs, minors = [], set()
    for line_no, row in read_csv(manifest, columns):
        minor = row.get(MINOR_COLUMN, "no").lower()
        if minor not in YES | NO:
            raise BankError(f"{manifest}, line {line_no}: {MINOR_COLUMN} must be yes or no, "
                            f"not {row[MINOR_COLUMN]!r}")
        if minor in YES:
            minors.add(row["victim"])
        path = Path(row["path"])
        for file in walk_files([path if path.is_absolute() else base / path]):
            pairs.append((row["victim"], file))
    return pairs, minors


def _names_column(path: Path, column: str) -> bool:
    """Whether the CSV's header names `column` (an unreadable file is left to read_csv)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            header = next(csv.reader([handle.readline()]), [])
    except OSError:
        return False
    return column in {name.strip().lower() for name in header}


def run_register(args: argparse.Namespace) -> int:
    from matcher.bank import BankError, VictimBank, hash_list_victims

    bank = VictimBank.open()
    try:
        if args.hashes:
            if args.files:
                raise BankError("--hashes takes no FILE arguments")
            summary = bank.import_hash_list(args.hashes, minor_at_capture=args.minor_at_capture)
            bank.save()
            text = (f"imported {summary['hashes']} hashes for {summary['victims']} victims "
                    f"({summary['added']} new)")
            if summary.get("skipped"):
                kinds = ", ".join(f"{n} {kind}" for kind, n in summary["skipped"].items())
                text += f"; skipped signal types Haechi does not match: {kinds}"
            pictures: dict[str, list[Path]] = {
                victim: [] for victim in hash_list_victims(args.hashes)}
        else:
            if args.manifest:
                if args.files:
                    raise BankError("--manifest takes no FILE arguments")
                pairs, minors = _manifest_pairs(args.manifest)
            else:
                if not args.files:
                    raise BankError("--victim needs at least one FILE")
                pairs, minors = [(args.victim, f) for f in walk_files(args.files)], set()
            if not pairs:
                # Registering nothing must not look like a victim is now protected.
                raise BankError("no files to register: the folders given hold none")
            if args.minor_at_capture:
                minors = {victim for victim, _ in pairs}
            summary = _register_files(bank, pairs, minors)
            text = "".join(f"{f['path']}: registered under {', '.join(f['signals'])}\n"
                           for f in summary["per_file"])
            text += (f"registered {summary['registered']} of {summary['files']} files "
                     f"({summary['hashes_added']} new hashes)")
            pictures = {}
            for victim, path in pairs:
                pictures.setdefault(victim, []).append(path)
            for error in summary["errors"]:
                print(f"error: {error['path']}: {error['error']}", file=sys.stderr)
    except (BankError, InputFileError, OSError) as exc:
        print(f"haechi register: {exc}", file=sys.stderr)
        return 2
    found, gone = rescan_registered(bank, pictures, args.recheck)
    summary["rescan"] = {"earlier_copies": found}
    if args.recheck:
        summary["rescan"]["gone"] = gone
    if found or gone:
        text += f"; {found} earlier copies found among the files already crawled"
        if args.recheck:
            text += f" and still online ({gone} gone since)"
    # As stored, not as asked: a victim registered as a minor earlier stays one.
    summary["minor_at_capture"] = {victim: bank.minor_at_capture(victim)
                                   for victim in sorted(pictures)}
    minors_now = [victim for victim, minor in summary["minor_at_capture"].items() if minor]
    if minors_now:
        text += (f"\nminor at capture (reports are sent as CSAM reports): "
                 f"{', '.join(minors_now)}")
    print(json.dumps(summary) if args.json else text)
    return 1 if summary.get("errors") else 0


def rescan_registered(bank: VictimBank, pictures: dict[str, list[Path]],
                      recheck_online: bool = False) -> tuple[int, int]:
    """Search what was crawled before for the victims just registered; raise their matches
    (with `recheck_online`, only those still online). Returns (raised, gone).

    On the embedded default the cases open here; in cluster mode (REDIS_URL) the events go to
    the match-event stream for the takedown consumers.
    """
    from crawler.records import CrawlRecords
    from engines.broker import redis_url
    from engines.objects import open_store
    from matcher.match import Matcher
    from matcher.rescan import recheck, rescan
    from matcher.seen import SeenIndex

    seen = SeenIndex.open()
    store = open_store()
    records = CrawlRecords.open()
    events = []
    for victim, paths in pictures.items():
        data = [p.read_bytes() for p in paths if p.is_file()]
        events.extend(rescan(victim, data, bank, seen, store, records))
    gone = 0
    if recheck_online and events:
        events, gone = recheck(events, Matcher(bank), store)
    if not events:
        return 0, gone
    if redis_url():
        from engines.broker import redis_client
        from matcher.streams import RedisStreamSink

        RedisStreamSink(redis_client()).deliver(events)
    else:
        from takedown.cases import CaseStore

        CaseStore.open(store=store).open_cases(events)
    return len(events), gone


def run_withdraw(args: argparse.Namespace) -> int:
    from matcher.bank import VictimBank

    bank = VictimBank.open()
    removed = bank.withdraw(args.victim)
    bank.save()
    if args.json:
        print(json.dumps({"victim": args.victim, "hashes_removed": removed}))
    elif removed:
        print(f"withdrew victim {args.victim}: {removed} hashes removed from the bank and index, "
              "with what they said at registration")
    else:
        print(f"victim {args.victim} has no registered hashes; nothing to withdraw")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from matcher.bank import VictimBank

    stats = VictimBank.open().stats()
    if args.json:
        print(json.dumps(stats))
    else:
        per = ", ".join(f"{n} {name}" for name, n in stats["by_algorithm"].items())
        print(f"{stats['victims']} victims, {stats['hashes']} hashes ({per})")
    return 0
