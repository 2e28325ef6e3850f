#!/usr/bin/env python3
"""The held-out web evaluation: one command, one JSON line, from nothing to a recall figure.

Why it exists: the crawler's own test web was written beside the crawler, so its 18/18 says
the crawler reads what its author planted. This eval plants victim copies the way real sites
deliver media today (``testkit/heldout_web/``, written without reading the crawler) and
counts how many the crawler turns into cases, per delivery pattern, and how many cases it
opens on something else. It is a frozen split: never tune the crawler on it; report its
figure as "held-out web".

It uses Haechi only through its command line (``register``, ``crawl``, ``cases list``), in a
fresh HAECHI_HOME, with HAECHI_FETCH_ALLOW set to the loopback ranges of the web.

    .venv/bin/python scripts/eval_crawl.py [--seed 1] [--sites-per-pattern 2] [--victims 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testkit.heldout_web import media  # noqa: E402

ALLOW = "127.9.9.9/32,127.10.0.0/15"
BUDGET = 570.0  # seconds: the whole run must stay under 10 minutes on 2 cores


def haechi() -> list[str]:
    """The haechi command of this checkout's venv (or of the running interpreter)."""
    exe = ROOT / ".venv" / "bin" / "haechi"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "haechi.cli"]


def environment(home: Path) -> dict[str, str]:
    """A clean environment: embedded mode, a fresh data folder, the web's addresses allowed.
    Cluster and store settings of the caller are dropped, so the eval never touches them."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HAECHI_", "REDIS_URL", "DATABASE_URL", "AWS_"))}
    env.update(HAECHI_HOME=str(home), HAECHI_FETCH_ALLOW=ALLOW, HAECHI_LOG_LEVEL="ERROR")
    return env


def make_victims(folder: Path, k: int, seed: int) -> list[Path]:
    """K victim pictures: wallpaper photos when HAECHI_WALLPAPERS holds some, else scenes of
    the held-out generator (seeds of their own, far from the distractors')."""
    folder.mkdir(parents=True)
    photos: list = []
    if os.environ.get("HAECHI_WALLPAPERS"):
        photos = media.load_photos(Path(os.environ["HAECHI_WALLPAPERS"]), k)
    out = []
    for i in range(k):
        img = photos[i] if i < len(photos) else media.scene(70_000 + seed * 100 + i)
        path = folder / f"HV{i + 1:02d}.png"
        img.save(path)
        out.append(path)
    return out


def start_web(args: argparse.Namespace, victims: Path, planted: Path,
              env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """Start the web in a process of its own and wait for its READY line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "testkit.heldout_web", "--victims", str(victims), "--out",
         str(planted), "--seed", str(args.seed), "--sites-per-pattern",
         str(args.sites_per_pattern)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise SystemExit(f"the held-out web did not start: {line!r}")
    return proc, int(line.split()[1])


def host_of(url: str | None) -> str | None:
    """The host of a URL, or None."""
    if not url or not isinstance(url, str):
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def pick(case: dict, *names: str) -> str | None:
    """The first of these fields the case has (the case schema is the CLI's, not ours)."""
    for n in names:
        v = case.get(n)
        if isinstance(v, str) and v:
            return v
    return None


def score(planted: dict, cases: list[dict]) -> dict:
    """Planted copies found, per pattern, and false cases.

    A case on a derived file (a blurred preview of the victim) counts neither way.
    A planted copy is found when some case names its victim and its URL is one of the URLs
    carrying the copy (a segment, a playlist, a variant), or its URL or page is on one of the
    site's hosts and is not a known distractor. Every other case is false: a distractor, a
    wrong victim, or a host with no copy of that victim.
    """
    by_host: dict[str, list[dict]] = defaultdict(list)
    for p in planted["planted"]:
        for h in p["hosts"]:
            by_host[h].append(p)
    distractors = {u for s in planted["sites"] for u in s["distractor_urls"]}
    derived = {u for s in planted["sites"] for u in s.get("derived_urls", [])}
    found: set[str] = set()
    false_cases = []
    for c in cases:
        victim = pick(c, "victim", "victim_id", "victim_ref")
        url = pick(c, "image_url", "url", "media_url", "file_url")
        page = pick(c, "page", "page_url", "referer")
        if url in derived:
            continue  # a victim's blurred preview: right to report, not what is measured
        hit = None
        for h in {host_of(url), host_of(page)} - {None}:
            for p in by_host.get(h or "", []):
                if p["victim"] != victim:
                    continue
                if url in p["victim_urls"] or (url not in distractors):
                    hit = p
        if hit is None:
            false_cases.append({"victim": victim, "url": url, "page": page})
        else:
            found.add(hit["site"])
    per: dict[str, dict[str, int]] = {}
    for p in planted["planted"]:
        d = per.setdefault(p["pattern"], {"found": 0, "planted": 0})
        d["planted"] += 1
        d["found"] += p["site"] in found
    n = len(planted["planted"])
    return {"found": len(found), "planted": n, "recall": round(len(found) / n, 3) if n else 0.0,
            "false_cases": len(false_cases), "by_pattern": per,
            "false_case_examples": false_cases[:10]}


def main(argv: list[str] | None = None) -> int:
    """Run the eval end to end and print its JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sites-per-pattern", type=int, default=2)
    ap.add_argument("--victims", type=int, default=8, help="victim pictures (K)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--verbose", action="store_true", help="per-site lines on stderr")
    ap.add_argument("--oracle", action="store_true",
                    help="also walk the web with the oracle browser (the eval's own check that "
                         "every copy is reachable and matchable; adds minutes)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="haechi-heldout-"))
    home, vdir, planted_path = tmp / "home", tmp / "victims", tmp / "planted.json"
    env = environment(home)
    web = None
    try:
        make_victims(vdir, args.victims, args.seed)
        manifest = tmp / "victims.csv"
        manifest.write_text("victim,path\n" + "".join(
            f"{p.stem},{p}\n" for p in sorted(vdir.iterdir())))
        reg = subprocess.run([*haechi(), "register", "--manifest", str(manifest), "--json"],
                             env=env, capture_output=True, text=True, timeout=300)
        if reg.returncode != 0:
            raise SystemExit(f"register failed: {reg.stderr.strip()}")
        web, _port = start_web(args, vdir, planted_path, env)
        planted = json.loads(planted_path.read_text())
        starts = [s["start_url"] for s in planted["sites"]]
        left = BUDGET - (time.monotonic() - t0)
        t1 = time.monotonic()
        timed_out = False
        try:
            crawl = subprocess.run([*haechi(), "crawl", *starts, "--json"], env=env,
                                   capture_output=True, text=True, timeout=max(60.0, left))
            out, code = crawl.stdout, crawl.returncode
        except subprocess.TimeoutExpired:
            # over budget: score the cases opened so far rather than print nothing
            timed_out, out, code = True, "", -1
        crawl_seconds = time.monotonic() - t1
        try:
            summary = json.loads(out)
        except json.JSONDecodeError:
            summary = {}
        listed = subprocess.run([*haechi(), "cases", "list", "--json"], env=env,
                                capture_output=True, text=True, timeout=120)
        cases = json.loads(listed.stdout or "[]")
        result = score(planted, cases)
        result.update(seconds=round(time.monotonic() - t0, 1),
                      crawl_seconds=round(crawl_seconds, 1), cases=len(cases),
                      crawl_exit=code, crawl_timed_out=timed_out, seed=args.seed,
                      sites=len(planted["sites"]), build_seconds=planted.get("build_seconds"),
                      crawl_summary={k: summary.get(k) for k in
                                     ("pages", "files", "matches", "errors") if k in summary})
        if args.oracle:
            from testkit.heldout_web import oracle

            o = oracle.run(planted, env, haechi())
            result["oracle"] = {k: o[k] for k in ("reached", "planted", "missed",
                                                  "wrong_match_count", "wrong_matches")}
            result["oracle"]["by_pattern"] = {k: v["reached"] for k, v in o["by_pattern"].items()}
        if args.verbose:
            for p in planted["planted"]:
                print(p["site"], p["victim"], p["media_url"], file=sys.stderr)
        if args.keep:
            result["folder"] = str(tmp)
        print(json.dumps(result, indent=1))
        return 0
    finally:
        if web is not None:
            web.terminate()
            try:
                web.wait(10)
            except subprocess.TimeoutExpired:
                web.kill()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
