#!/usr/bin/env python3
"""The robustness eval of matching on the frozen split (issue 15): one command, one JSON object.

Why it exists: the project's own robustness benchmark was written beside the matcher, on the
edits its peelers were made for. This split (``testkit/robustness_eval/``) was written by
someone who had not read the matcher, from other Debian wallpaper photos, with edits made by
AugLy and albumentations (and Pillow for meme and caption bands). It is frozen: never tune a
threshold, a peeler or a model on it; report its figures as "robustness eval (frozen split)".

It makes the split (or reuses the cached one), registers the 40 victims with
``haechi register --manifest`` in a fresh HAECHI_HOME, runs ``haechi match --json`` over every
query in batches, and prints recall per edit family (mild and all), overall, and every false
match (a distractor matched, or a query matched to a victim it is not) by file name. A file the
matcher fails on (an ``"error"``, no answer, a crashed batch) is counted, not fatal.

    .venv/bin/python scripts/eval_robustness.py [--text] [--jobs 2] [--batch 150] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.robustness_eval import load_manifest  # noqa: E402
from testkit.robustness_eval.edits import FAMILIES  # noqa: E402
from testkit.robustness_eval.generate import generate, manifest_digest  # noqa: E402

BATCH_TIMEOUT = 600.0  # seconds one `haechi match` call over a batch may take


def haechi() -> list[str]:
    """The haechi command of this checkout's venv (or of the running interpreter)."""
    exe = ROOT / ".venv" / "bin" / "haechi"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "haechi.cli"]


def environment(home: Path) -> dict[str, str]:
    """Embedded mode in a fresh data folder: the caller's cluster, store and bank settings are
    dropped, so the eval never touches them."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HAECHI_", "REDIS_URL", "DATABASE_URL", "AWS_"))}
    env.update(HAECHI_HOME=str(home), HAECHI_LOG_LEVEL="ERROR")
    return env


def register(split: Path, manifest: dict, env: dict) -> dict:
    rows = split / "victims.csv"
    with open(rows, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["victim", "path"])
        for v in manifest["victims"]:
            w.writerow([v["victim"], v["file"]])
    out = subprocess.run([*haechi(), "register", "--manifest", str(rows), "--json"],
                         env=env, capture_output=True, text=True, timeout=BATCH_TIMEOUT)
    if out.returncode != 0:
        raise SystemExit(f"haechi register failed ({out.returncode}): {out.stderr[-2000:]}")
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {"output": out.stdout[-2000:]}


def _run_batch(files: list[Path], env: dict) -> tuple[dict[str, dict], str]:
    """One `haechi match --json` over files: path -> its JSON object, and any trouble."""
    try:
        out = subprocess.run([*haechi(), "match", "--json", *map(str, files)], env=env,
                             capture_output=True, text=True, timeout=BATCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {}, f"timed out after {BATCH_TIMEOUT:.0f} s"
    got = {}
    for line in out.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "path" in obj:
            got[obj["path"]] = obj
    trouble = "" if out.returncode == 0 else f"exit {out.returncode}: {out.stderr[-500:]}"
    return got, trouble


def match_all(files: list[Path], env: dict, batch: int, jobs: int, log) -> tuple[dict, dict]:
    """Every file's answer (path -> object) and the failures (path -> why)."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [files[i:i + batch] for i in range(0, len(files), batch)]
    answers: dict[str, dict] = {}
    failures: dict[str, str] = {}
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for part, (got, trouble) in zip(batches, pool.map(lambda b: _run_batch(b, env),
                                                          batches), strict=True):
            missing = [f for f in part if str(f) not in got]
            answers.update(got)
            # a crashed or cut-short batch: each file it did not answer gets a run of its own
            for f in missing:
                one, why = _run_batch([f], env)
                if str(f) in one:
                    answers[str(f)] = one[str(f)]
                else:
                    failures[str(f)] = why or trouble or "no answer"
            done += len(part)
            log(f"matched {done}/{len(files)}")
    for path, obj in answers.items():
        if obj.get("error"):
            failures[path] = str(obj["error"])
    return answers, failures


def score(manifest: dict, split: Path, answers: dict, failures: dict) -> dict:
    fam = defaultdict(Counter)
    by_algorithm = Counter()
    false_matches, by_kind = [], Counter()
    distractors = 0
    for q in manifest["queries"]:
        path = str(split / q["file"])
        obj = answers.get(path, {})
        matched = sorted({m.get("victim") for m in obj.get("matches", [])} - {None})
        failed = path in failures
        if q["expected"]:
            c = fam[q["family"]]
            found = q["expected"] in matched
            c["queries"] += 1
            c["found"] += found
            c["failed"] += failed
            if q["difficulty"] == "mild":
                c["mild_queries"] += 1
                c["mild_found"] += found
            for m in obj.get("matches", []):
                if m.get("victim") == q["expected"]:
                    by_algorithm[m.get("algorithm", "?")] += 1
            wrong = [v for v in matched if v != q["expected"]]
            if wrong:
                false_matches.append({"file": q["file"], "kind": "wrong_victim",
                                      "family": q["family"], "expected": q["expected"],
                                      "matched": wrong, "answer": obj.get("matches")})
        else:
            distractors += 1
            if matched:
                by_kind[q["kind"]] += 1
                false_matches.append({"file": q["file"], "kind": q["kind"],
                                      "family": q["family"], "expected": None,
                                      "matched": matched, "answer": obj.get("matches")})

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 3) if b else None

    by_family = {}
    for f in [f for f in FAMILIES if f in fam]:
        c = fam[f]
        by_family[f] = {"all": ratio(c["found"], c["queries"]),
                        "mild": ratio(c["mild_found"], c["mild_queries"]),
                        "found": c["found"], "queries": c["queries"],
                        "mild_found": c["mild_found"], "mild_queries": c["mild_queries"],
                        "failed": c["failed"]}
    tot = Counter()
    for c in fam.values():
        tot.update(c)
    return {
        "recall": {"mild": ratio(tot["mild_found"], tot["mild_queries"]),
                   "all": ratio(tot["found"], tot["queries"]),
                   "found": tot["found"], "queries": tot["queries"],
                   "mild_found": tot["mild_found"], "mild_queries": tot["mild_queries"]},
        "by_family": by_family,
        "false_matches": len(false_matches),
        "false_match_files": false_matches,
        "false_matches_by_kind": dict(by_kind),
        "distractors": distractors,
        "found_by_algorithm": dict(by_algorithm),
        "failures": {"count": len(failures),
                     "files": {Path(p).name: why for p, why in sorted(failures.items())}},
    }


def text_report(r: dict) -> str:
    rec = r["recall"]
    lines = [
        "Robustness eval (frozen split, testkit/robustness_eval/): never tune on it.",
        f"Recall: mild {rec['mild']} ({rec['mild_found']} of {rec['mild_queries']}), "
        f"all {rec['all']} ({rec['found']} of {rec['queries']}).",
        f"False matches: {r['false_matches']} among {r['distractors']} distractors and the "
        f"wrong victims of {rec['queries']} copies.",
        f"Matcher failures: {r['failures']['count']} files.",
        "",
        f"{'family':<14} {'mild':>7} {'all':>7}   found/queries (mild found/queries)",
    ]
    for f, c in r["by_family"].items():
        mild = "-" if c["mild"] is None else f"{c['mild']:.3f}"
        lines.append(f"{f:<14} {mild:>7} {c['all']:>7.3f}   {c['found']}/{c['queries']} "
                     f"({c['mild_found']}/{c['mild_queries']})")
    if r["false_match_files"]:
        lines += ["", "False matches:"]
        for fm in r["false_match_files"]:
            lines.append(f"  {fm['file']}: {fm['kind']} ({fm['family']}), matched "
                         f"{', '.join(fm['matched'])}"
                         + (f", expected {fm['expected']}" if fm["expected"] else ""))
    if r["failures"]["count"]:
        lines += ["", "Failures:"] + [f"  {k}: {v}" for k, v in r["failures"]["files"].items()]
    s = r["seconds"]
    lines += ["", f"Seconds: {s['total']} (generate {s['generate']}, register {s['register']}, "
                  f"match {s['match']})."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", action="store_true", help="plain words instead of JSON")
    ap.add_argument("--split", type=Path, help="the split folder (default: the user's cache)")
    ap.add_argument("--photos", type=Path, help="fetch.sh's folder (default: fetch it)")
    ap.add_argument("--workers", type=int, default=2, help="processes that make the split")
    ap.add_argument("--jobs", type=int, default=2, help="`haechi match` calls at once")
    ap.add_argument("--batch", type=int, default=150, help="files per `haechi match` call")
    ap.add_argument("--keep", action="store_true", help="keep the temporary HAECHI_HOME")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    split = generate(args.split, args.photos, args.workers, log=log)
    manifest = load_manifest(split / "manifest.json")
    t1 = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="haechi-robustness-"))
    try:
        env = environment(home)
        registered = register(split, manifest, env)
        t2 = time.monotonic()
        files = [split / q["file"] for q in manifest["queries"]]
        answers, failures = match_all(files, env, args.batch, args.jobs, log)
        t3 = time.monotonic()
    finally:
        if args.keep:
            log(f"HAECHI_HOME kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    report = {"split": "robustness eval (frozen split, testkit/robustness_eval/)",
              "manifest_sha256": manifest_digest(split / "manifest.json"),
              "victims": len(manifest["victims"]), "registered": registered,
              **score(manifest, split, answers, failures),
              "hard_rule": manifest["hard_rule"],
              "seconds": {"generate": round(t1 - t0, 1), "register": round(t2 - t1, 1),
                          "match": round(t3 - t2, 1), "total": round(t3 - t0, 1)}}
    print(text_report(report) if args.text else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
