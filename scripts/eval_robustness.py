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
matcher fails on (an ``"error"``, no answer, a crashed batch) is counted, not fatal; a victim
picture that registration refuses is reported, and its copies count as not found.

By default it measures the working tree's matcher (the report says which commit, and which
matcher files differ from it); ``--commit REV`` measures a commit's tree instead (git archive
into the temporary folder, run with the venv's packages), which is what a figure to quote
should come from while others edit the checkout.

    .venv/bin/python scripts/eval_robustness.py [--text] [--commit REV] [--jobs 2] [--keep]
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
from testkit.robustness_eval.generate import (  # noqa: E402
    generate,
    library_versions,
    manifest_digest,
)

BATCH_TIMEOUT = 600.0  # seconds one `haechi match` call over a batch may take


def haechi() -> list[str]:
    """The haechi command of this checkout's venv (or of the running interpreter)."""
    exe = ROOT / ".venv" / "bin" / "haechi"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "haechi.cli"]


def environment(home: Path, code: Path | None = None) -> dict[str, str]:
    """Embedded mode in a fresh data folder: the caller's cluster, store and bank settings are
    dropped, so the eval never touches them. ``code``: a tree whose Haechi is run instead of
    the checkout's (first on PYTHONPATH, ahead of the venv's editable install)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HAECHI_", "REDIS_URL", "DATABASE_URL", "AWS_", "PYTHONPATH"))}
    env.update(HAECHI_HOME=str(home), HAECHI_LOG_LEVEL="ERROR")
    if code is not None:
        # ahead of the venv's editable install, whose finder comes after sys.path
        env["PYTHONPATH"] = str(code)
    return env


def run(cmd: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    """A command of the eval, run beside the data folder (never in the checkout, whose
    packages a `python -c` would otherwise find first)."""
    return subprocess.run(cmd, env=env, cwd=Path(env["HAECHI_HOME"]).parent,
                          capture_output=True, text=True, **kw)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def export_commit(rev: str, into: Path) -> str:
    """The tree of commit ``rev`` in ``into`` (git archive: the repository is not touched);
    returns the full commit id."""
    commit = _git("rev-parse", "--verify", rev + "^{commit}")
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


def what_is_measured(commit: str | None) -> dict:
    """Which matcher answered: a commit's tree, or the working tree (and whether it differs
    from HEAD in the code that matches)."""
    if commit:
        return {"commit": commit, "tree": "git archive of the commit"}
    try:
        head = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--", "matcher", "engines", "haechi")
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "tree": "working tree (not a git checkout)"}
    return {"commit": head, "tree": "working tree",
            "uncommitted_changes": sorted(line[3:] for line in dirty.splitlines())}


def register(split: Path, manifest: dict, env: dict) -> dict:
    """Registers every victim through ``haechi register --manifest``. A picture the command
    refuses (it stops at the first) is left out and the rest registered again; the refused
    victims are reported, and their copies count as not found."""
    rows = {v["victim"]: v["file"] for v in manifest["victims"]}
    refused: dict[str, str] = {}
    answers = []
    while rows:
        table = split / "victims.csv"
        with open(table, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["victim", "path"])
            w.writerows(rows.items())
        out = run([*haechi(), "register", "--manifest", str(table), "--json"], env,
                  timeout=BATCH_TIMEOUT)
        if out.returncode == 0:
            try:
                answers.append(json.loads(out.stdout))
            except ValueError:
                answers.append(out.stdout[-2000:])
            break
        named = [v for v, file in rows.items() if Path(file).name in out.stderr]
        if not named:
            raise SystemExit(f"haechi register failed ({out.returncode}): {out.stderr[-2000:]}")
        for v in named:
            refused[v] = out.stderr.strip().splitlines()[-1][-300:]
            del rows[v]
    return {"registered": len(rows), "refused": refused, "answer": answers}


def _run_batch(files: list[Path], env: dict) -> tuple[dict[str, dict], str]:
    """One `haechi match --json` over files: path -> its JSON object, and any trouble."""
    try:
        out = run([*haechi(), "match", "--json", *map(str, files)], env,
                  timeout=BATCH_TIMEOUT)
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


def score(manifest: dict, split: Path, answers: dict, failures: dict,
          refused: set[str] = frozenset()) -> dict:
    fam = defaultdict(Counter)
    reg = Counter()  # the copies of victims whose registration was not refused
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
            if q["expected"] not in refused:
                reg["queries"] += 1
                reg["found"] += found
                if q["difficulty"] == "mild":
                    reg["mild_queries"] += 1
                    reg["mild_found"] += found
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
        "recall_registered_victims_only": {
            "mild": ratio(reg["mild_found"], reg["mild_queries"]),
            "all": ratio(reg["found"], reg["queries"]),
            "note": "the copies of victims whose picture registration refused left out"},
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
        f"Matcher: {r['matcher']['tree']} at {r['matcher']['commit']}"
        + (f", with uncommitted changes to {', '.join(r['matcher']['uncommitted_changes'])}"
           if r["matcher"].get("uncommitted_changes") else "") + ".",
        f"Recall: mild {rec['mild']} ({rec['mild_found']} of {rec['mild_queries']}), "
        f"all {rec['all']} ({rec['found']} of {rec['queries']}).",
        f"False matches: {r['false_matches']} among {r['distractors']} distractors and the "
        f"wrong victims of {rec['queries']} copies.",
        f"Matcher failures: {r['failures']['count']} files.",
        f"Registration: {r['registered_victims']} of {r['victims']} victims registered"
        + ("; refused: " + "; ".join(f"{v} ({why})" for v, why in
                                      r["registration_refused"].items())
           + f". Without their copies: mild {r['recall_registered_victims_only']['mild']}, "
             f"all {r['recall_registered_victims_only']['all']}."
           if r["registration_refused"] else "."),
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
    ap.add_argument("--commit", help="measure the matcher of this commit (its tree by git "
                    "archive, with the venv's packages), not the working tree")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    split = generate(args.split, args.photos, args.workers, log=log)
    manifest = load_manifest(split / "manifest.json")
    t1 = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="haechi-robustness-"))
    commit = None
    try:
        code = None
        if args.commit:
            code = home / "code"
            code.mkdir()
            commit = export_commit(args.commit, code)
        env = environment(home / "data", code)
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
              "matcher": what_is_measured(commit),
              "libraries": {"frozen_with": manifest["made_with"], "now": library_versions()},
              "victims": len(manifest["victims"]),
              "registered_victims": registered["registered"],
              "registration_refused": registered["refused"],
              "register_answer": registered["answer"],
              **score(manifest, split, answers, failures, set(registered["refused"])),
              "hard_rule": manifest["hard_rule"],
              "seconds": {"generate": round(t1 - t0, 1), "register": round(t2 - t1, 1),
                          "match": round(t3 - t2, 1), "total": round(t3 - t0, 1)}}
    print(text_report(report) if args.text else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
