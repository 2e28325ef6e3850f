"""`haechi cases`: the cases opened from matches, and their evidence bundles.

A case is named by its reference as listed (HAECHI-000001) or its number. The takedown
modules (SQLAlchemy, Alembic, Jinja) are imported when a command runs, not when the parser is
built.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from engines.inputs import case_id
from haechi.commands import (
    EXIT_INPUTS_FAILED,
    ConfigurationError,
    UsageError,
    require_redis_url,
)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    cases = subparsers.add_parser("cases", help="list, inspect and export takedown cases")
    commands = cases.add_subparsers(dest="cases_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="every case, oldest first")
    listing.add_argument("--status", action="append", help="only cases in this status")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(run=run_list)
    show = commands.add_parser("show", help="one case with all its evidence")
    show.add_argument("case_id", type=case_id, metavar="ID", help="HAECHI-000001, or 1")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_show)
    export = commands.add_parser("export", help="write a signed evidence bundle (zip)")
    export.add_argument("case_id", type=case_id, metavar="ID", help="HAECHI-000001, or 1")
    export.add_argument("--out", type=Path, help="bundle path (default: in the data folder)")
    export.set_defaults(run=run_export)
    consume = commands.add_parser(
        "consume", help="open cases from the match-event stream (cluster mode, REDIS_URL)")
    consume.add_argument("--once", action="store_true",
                         help="stop when the stream is drained instead of waiting for more")
    consume.add_argument("--name", default=None, help="consumer name (default: host and pid)")
    consume.set_defaults(run=run_consume)
    json_command(commands, "seal", "encrypt the evidence and media copies of cases opened "
                 "before HAECHI_EVIDENCE_KEY was set (safe to run again)", run_seal)
    json_command(commands, "rekey", "re-encrypt every evidence and sealed media copy under the "
                 "first key of HAECHI_EVIDENCE_KEY (key rotation: new key first, old keys "
                 "after it)", run_rekey)
    json_command(commands, "dead-letters", "match events no case could be opened for, with why "
                 "(cluster mode)", run_dead_letters)
    replay = commands.add_parser(
        "replay", help="put dead letters back on the match-event stream once their cause is "
                       "fixed (cluster mode)")
    replay.add_argument("letter_ids", nargs="*", metavar="ID",
                        help="dead letters by id, as `haechi cases dead-letters` lists them")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(run=run_replay)
    verify = commands.add_parser("verify", help="check an evidence bundle was not altered")
    verify.add_argument("bundle", type=Path,
                        help="the bundle's zip file, or the case whose bundle `haechi cases "
                             "export` wrote to the data folder")
    verify.add_argument("--public-key", type=Path, metavar="FILE",
                        help="the institution's Ed25519 public key (PEM), obtained from it and "
                             "not from the bundle: without it the bundle's integrity is "
                             "checked, not who made it")
    verify.set_defaults(run=run_verify)
    json_command(commands, "anchor", "sign the audit log's head into the evidence store (run "
                 "it hourly)", run_anchor)
    json_command(commands, "audit", "check the whole audit log: order, hashes, keys, and its "
                 "newest anchor", run_audit)
    public_key = commands.add_parser(
        "public-key", help="print the institution's public key, to give to whoever checks "
                           "its bundles (haechi cases verify --public-key)")
    public_key.set_defaults(run=run_public_key)


def json_command(commands: argparse._SubParsersAction, name: str, help: str,
                 run: Callable[[argparse.Namespace], int]) -> None:
    """A subcommand whose only option is --json (output for machines)."""
    command = commands.add_parser(name, help=help)
    command.add_argument("--json", action="store_true")
    command.set_defaults(run=run)


def run_list(args: argparse.Namespace) -> int:
    from takedown.cases import CaseStore
    from takedown.status import ALLOWED

    unknown = sorted(set(args.status or ()) - set(ALLOWED))
    if unknown:
        raise UsageError(f"no such status: {', '.join(unknown)} (statuses: "
                         f"{', '.join(ALLOWED)})")
    found = CaseStore.open().list(tuple(args.status) if args.status else None)
    if args.json:
        print(json.dumps(found, ensure_ascii=False))
        return 0
    if not found:
        print("No cases.")
    for case in found:
        where = f" at {case['second']:g} s" if case["second"] is not None else ""
        print(f"{case['reference']} {case['status']:<10} victim {case['victim']}: "
              f"{case['image_url']}{where} (on {case['page_url']}, {case['algorithm']} "
              f"distance {case['distance']})")
    return 0


def _case_or_exit(case: int) -> dict:
    from takedown.cases import CaseStore
    from takedown.notices import reference_of

    found = CaseStore.open().get(case)
    if found is None:
        raise SystemExit(f"haechi cases: no case {reference_of(case)}")
    return found


def _default_bundle(reference: str) -> Path:
    """Where `haechi cases export` writes a case's bundle unless told otherwise."""
    from engines.home import data_home

    return data_home() / "exports" / f"{reference}.zip"


def run_show(args: argparse.Namespace) -> int:
    from takedown.database import takedown_engine
    from takedown.ladder import history

    case = _case_or_exit(args.case_id)
    case["ladder"] = history(takedown_engine(), args.case_id)
    if args.json:
        print(json.dumps(case, ensure_ascii=False, default=str))
        return 0
    steps = case.pop("ladder")
    for key, value in case.items():
        print(f"{key:>16}: {value}")
    print("\nEscalation ladder:")
    for step in steps:
        answered = f"; answered {step['answered_at']}: {step['answer']}" if step[
            "answered_at"] else ""
        print(f"  {step['rung']:>9}: {step['party'] or '?'}; sent "
              f"{step['sent_at'] or 'not yet'}{answered}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from engines.home import KeySettingError
    from takedown.audit import entries_for_case
    from takedown.cases import CaseStore
    from takedown.evidence import (
        EvidenceError,
        SigningKeyError,
        consistent_snapshot,
        export_bundle,
        verify_audit,
    )
    from takedown.notices import notice_json

    store = CaseStore.open()
    out = args.out or _default_bundle(_case_or_exit(args.case_id)["reference"])
    try:
        case, entries = consistent_snapshot(
            lambda: store.get(args.case_id), lambda: entries_for_case(store.engine, args.case_id))
        notice = notice_json(store.engine, case["notice_id"]) if case["notice_id"] else None
        chain = verify_audit(store.engine)
        export_bundle(out, case, entries, notice, chain=chain)
    except (SigningKeyError, KeySettingError) as exc:
        raise ConfigurationError(str(exc)) from None
    except EvidenceError as exc:
        print(f"haechi cases: {exc}", file=sys.stderr)
        return EXIT_INPUTS_FAILED
    except OSError as exc:
        raise UsageError(f"cannot write the bundle to {out} ({exc.strerror or exc})") from None
    if not chain.ok:
        print(f"haechi cases: warning: the audit log does not verify ({chain.reason}); the "
              "bundle says so", file=sys.stderr)
    print(out)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from takedown.evidence import (
        BundleError,
        SigningKeyError,
        check_bundle,
        fingerprint,
        load_public_key,
    )

    try:
        public_key = load_public_key(args.public_key) if args.public_key else None
    except SigningKeyError as exc:
        raise UsageError(f"--public-key: {exc}") from None
    bundle = _bundle_path(args.bundle)
    try:
        check = check_bundle(bundle, public_key)
    except OSError as exc:
        print(f"haechi cases: {bundle}: cannot be read ({exc.strerror or exc})", file=sys.stderr)
        return EXIT_INPUTS_FAILED
    except BundleError as exc:
        print(f"haechi cases: {bundle}: not an evidence bundle Haechi wrote: {exc}",
              file=sys.stderr)
        return EXIT_INPUTS_FAILED
    if check.problems:
        print("ALTERED: " + "; ".join(check.problems))
        return EXIT_INPUTS_FAILED
    print("bundle OK")
    if check.origin_checked:
        print(f"signed by the holder of {args.public_key} ({fingerprint(public_key)})")
    else:
        print(f"haechi cases: {bundle}: its integrity is checked, its origin is not: give "
              "--public-key FILE (the institution's public key, obtained from it) to check who "
              "signed it", file=sys.stderr)
    logged = check.manifest.get("audit_log") or {}
    if logged.get("verified") is False:
        print(f"haechi cases: note: when this bundle was made the audit log did not verify "
              f"({logged.get('problem')})", file=sys.stderr)
    return 0


def _signing_error(exc: Exception) -> ConfigurationError:
    return ConfigurationError(f"the institution's signing key: {exc}")


def run_anchor(args: argparse.Namespace) -> int:
    from takedown.database import takedown_engine
    from takedown.evidence import EvidenceError, SigningKeyError, anchor_chain

    try:
        head = anchor_chain(takedown_engine())
    except SigningKeyError as exc:
        raise _signing_error(exc) from None
    except EvidenceError as exc:
        print(f"haechi cases: {exc}", file=sys.stderr)
        return EXIT_INPUTS_FAILED
    if args.json:
        print(json.dumps(None if head is None else vars(head)))
    elif head is None:
        print("The audit log is empty: nothing to anchor.")
    else:
        print(f"Audit log anchored at entry {head.seq} ({head.hash}), {head.at}.")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    from takedown.database import takedown_engine
    from takedown.evidence import SigningKeyError, verify_audit

    try:
        check = verify_audit(takedown_engine())
    except SigningKeyError as exc:
        raise _signing_error(exc) from None
    if args.json:
        print(json.dumps({"ok": check.ok, "entries": check.entries,
                          "first_bad_id": check.first_bad_id, "reason": check.reason,
                          "head": vars(check.head) if check.head else None,
                          "anchor": vars(check.anchor) if check.anchor else None}))
    elif check.ok:
        anchored = (f"anchored at entry {check.anchor.seq} ({check.anchor.at})" if check.anchor
                    else "never anchored (haechi cases anchor)")
        print(f"audit log OK: {check.entries} entries, {anchored}")
    else:
        print(f"audit log ALTERED: {check.reason}"
              + (f" (first bad entry: {check.first_bad_id})" if check.first_bad_id else ""))
    return 0 if check.ok else EXIT_INPUTS_FAILED


def run_public_key(args: argparse.Namespace) -> int:
    from takedown.evidence import SigningKeyError, public_key_pem, signing_key

    try:
        print(public_key_pem(signing_key().public_key()).decode(), end="")
    except SigningKeyError as exc:
        raise _signing_error(exc) from None
    return 0


def _bundle_path(given: Path) -> Path:
    """The zip file given or, when there is no such file and it names a case, the bundle
    `haechi cases export` wrote for that case."""
    if given.exists():
        return given
    try:
        case = case_id(str(given))
    except argparse.ArgumentTypeError:
        return given  # not a case either: reported as the missing file it is
    from takedown.notices import reference_of

    return _default_bundle(reference_of(case))


def run_seal(args: argparse.Namespace) -> int:
    from engines.objects import open_store
    from engines.sealed import SealedMediaError
    from takedown.cases import CaseStore

    try:
        counts = CaseStore.open(store=open_store()).seal_earlier()
    except SealedMediaError as exc:
        raise ConfigurationError(str(exc)) from None
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"{counts['copied']} evidence copies made; {counts['sealed']} cases' media copies "
              f"sealed; {counts['missing']} cases without a stored file")
    return 0


def run_rekey(args: argparse.Namespace) -> int:
    from engines.objects import open_store
    from engines.sealed import SealedMediaError, media_cipher
    from takedown.cases import CaseStore

    if media_cipher() is None:
        raise ConfigurationError("HAECHI_EVIDENCE_KEY is not set: there is no key to rotate to")
    try:
        counts = CaseStore.open(store=open_store()).rekey()
    except SealedMediaError as exc:
        raise SystemExit(f"haechi cases rekey: {exc}") from None
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"{counts['evidence']} evidence copies and {counts['media']} sealed media copies "
              "now under the first key; the others can be removed from HAECHI_EVIDENCE_KEY")
    return 0


def run_dead_letters(args: argparse.Namespace) -> int:
    require_redis_url("dead letters are kept in Redis")
    from engines.broker import redis_client
    from matcher.streams import dead_letters

    letters = dead_letters(redis_client())
    if args.json:
        print(json.dumps([letter.to_json() for letter in letters]))
    elif not letters:
        print("no dead letters: every match event was handled")
    else:
        for letter in letters:
            print(f"{letter.id}  {letter.dead_at}  after {letter.attempts} attempt(s): "
                  f"{letter.error}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    if args.all == bool(args.letter_ids):
        raise UsageError("name the dead letters to replay, or --all (not both)")
    require_redis_url("dead letters are kept in Redis")
    from engines.broker import redis_client
    from matcher.streams import dead_letters, replay_dead_letters

    client = redis_client()
    wanted = [letter.id for letter in dead_letters(client, count=10**9)] if args.all \
        else args.letter_ids
    replayed = replay_dead_letters(client, wanted)
    missing = sorted(set(wanted) - set(replayed))
    if args.json:
        print(json.dumps({"replayed": replayed, "not_found": missing}))
    else:
        print(f"{len(replayed)} dead letter(s) back on the match-event stream"
              + (f"; not dead letters: {', '.join(missing)}" if missing else ""))
    return EXIT_INPUTS_FAILED if missing else 0


def run_consume(args: argparse.Namespace) -> int:
    import os
    import socket

    from engines.broker import redis_client
    from engines.objects import open_store
    from matcher.streams import StreamConsumer
    from takedown.cases import CaseStore
    from takedown.consumer import GROUP, consume

    name = args.name or f"{socket.gethostname()}-{os.getpid()}"
    consumer = StreamConsumer(redis_client(), GROUP, name)
    report = consume(consumer, CaseStore.open(store=open_store()), once=args.once)
    print(json.dumps(report.__dict__))
    return 0
