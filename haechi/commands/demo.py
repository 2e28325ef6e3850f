"""`haechi demo`: the README's main job, on the embedded default.

For now it registers generated stand-in pictures, makes the edited copies re-uploaders make,
and shows which copies the matcher catches; later stages add crawling, cases and notices.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from haechi.edits import EDITS
from haechi.home import data_home
from haechi.synthetic import encode, synthetic_picture
from matcher.bank import VictimBank
from matcher.hasher import ImageHasher
from matcher.match import Matcher

DEMO_VICTIMS = 3
DEMO_DECOYS = 5


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run the end-to-end demo on generated pictures")
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    # The demo keeps its own bank under the data folder, started afresh each run, so it never
    # adds stand-in victims to a real installation's bank.
    folder = data_home() / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    bank = VictimBank.open(url=f"sqlite:///{folder / 'bank.sqlite3'}", index_dir=folder / "index")
    hasher = ImageHasher()
    matcher = Matcher(bank, hasher)
    rng = np.random.default_rng(2026)
    results = []
    with tempfile.TemporaryDirectory(prefix="haechi-demo-") as tmp:
        folder = Path(tmp)
        for number in range(DEMO_VICTIMS):
            victim = f"demo-victim-{number + 1}"
            original = synthetic_picture(seed=1000 + number)
            bank.add(victim, hasher.registration_hashes(encode(original)), source="generated")
            for edit_name, edit in EDITS.items():
                data = encode(edit(original, rng))
                path = folder / f"{victim}-{edit_name}.jpg"
                path.write_bytes(data)
                found = [m.victim for m in matcher.match_bytes(data)]
                results.append({"file": path.name, "expected": victim, "found": found})
        for number in range(DEMO_DECOYS):
            data = encode(synthetic_picture(seed=5000 + number))
            found = [m.victim for m in matcher.match_bytes(data)]
            results.append({"file": f"unrelated-{number + 1}.jpg", "expected": None,
                            "found": found})
    bank.save()
    caught = sum(r["expected"] in r["found"] for r in results if r["expected"])
    edited = sum(1 for r in results if r["expected"])
    false = sum(1 for r in results if set(r["found"]) - {r["expected"]})
    summary = {"edited_copies": edited, "caught": caught, "false_matches": false,
               "results": results}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"Registered {DEMO_VICTIMS} generated victim pictures (hashes only).")
    print(f"Made {edited} edited re-uploads ({len(EDITS)} kinds of edit) and "
          f"{DEMO_DECOYS} unrelated pictures.\n")
    for r in results:
        verdict = ("caught" if r["expected"] in r["found"] else "MISSED") if r["expected"] else (
            "FALSE MATCH" if r["found"] else "no match (correct)")
        print(f"  {r['file']:<48} {verdict}")
    print(f"\nCaught {caught} of {edited} edited copies; {false} false matches.")
    return 0
