"""Crawl benchmark on the local test web: many small synthetic sites on the embedded default.

Prints JSON:
- total time to crawl every site (an index page, a few images, security.txt) with
  `haechi crawl`, as a person runs it (target: 20,000 sites in 15 minutes or less);
- responses and pages per second, each against `scrapy bench` run on this machine right after
  each crawl, in the same run, as a ratio (scrapy bench follows links on a local server and
  does nothing with the pages, so each of its responses is a page);
- peak memory of the crawl and its hash workers (and Chromium's processes when it renders),
  as the sum of their proportional set sizes (PSS: a page shared by processes is counted
  once, split between them; the RSS sum, which counts it in each, is printed beside it), and
  the PSS of each kind of process at that peak (target 1.5 GB or less);
- seconds from a planted file being served to its case existing, p50/p99/max
  (target p99 2 s or less), and whether every planted picture became a case;
- pages rendered in Chromium and rendered pages per second. With `--markups spa-gallery` every
  site is a script-built gallery that only a browser shows, so the run measures rendering
  (HAECHI_BROWSER_PAGES pages at once, 4 by default) and its peak memory (target 1.5 GB).

Several site counts in one run: `--sites 2000,20000` (or `--sites` repeated); each count is
crawled into a fresh data folder and its figures are listed under `runs`, while the top level
keeps the figures of the largest count under the keys above. The JSON is also written to
benchmarks/bench_crawl-<commit>-<date>.json (or `--out`), with the commit it measured (and
whether the work tree differed from it), so a figure quoted elsewhere names the run it came
from.

    python scripts/bench_crawl.py [--sites 20000] [--plant-every 50] [--markups spa-gallery]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.synthetic import encode  # noqa: E402
from testkit.testweb.model import (  # noqa: E402
    FETCH_ALLOW,
    WebPlan,
    victim_name,
    victim_original,
)
from testkit.testweb.server import start_testweb  # noqa: E402

HAECHI = str(Path(sys.executable).with_name("haechi"))
SCRAPY = str(Path(sys.executable).with_name("scrapy"))


def tree_memory(pid: int) -> tuple[int, int, dict[str, int]]:
    """(RSS, PSS, PSS by command) of a process and all its descendants, in bytes. RSS counts a
    page shared by Chromium's processes (or forked hash workers) once per process; PSS splits
    it between them, so the PSS sum is what the tree really holds."""
    rss = pss = 0
    by_command: dict[str, int] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                fields = dict(line.split(":", 1) for line in handle.read().splitlines()[1:])
            with open(f"/proc/{current}/comm") as handle:
                command = handle.read().strip()
            rss += int(fields["Rss"].split()[0]) * 1024
            own = int(fields["Pss"].split()[0]) * 1024
            pss += own
            by_command[command] = by_command.get(command, 0) + own
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending.extend(int(c) for c in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError, KeyError):
            continue
    return rss, pss, by_command


def scrapy_bench(seconds: int) -> float:
    """Pages per second `scrapy bench` reaches on this machine."""
    result = subprocess.run(
        [SCRAPY, "bench", "-s", f"CLOSESPIDER_TIMEOUT={seconds}", "-s", "LOG_LEVEL=INFO"],
        capture_output=True, text=True, timeout=seconds + 120, cwd=tempfile.gettempdir(),
    )
    rates = [int(r) for r in re.findall(r"Crawled \d+ pages \(at (\d+) pages/min\)",
                                        result.stderr)]
    # The first minute-rate line covers the warm-up; the rest are steady state.
    steady = rates[1:] or rates
    return round(sum(steady) / len(steady) / 60, 1) if steady else 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def site_counts(values: list[str]) -> list[int]:
    """`--sites` values, each one count or several separated by commas, in the order given."""
    counts = [int(v) for value in values for v in value.split(",") if v.strip()]
    if not counts or min(counts) < 1:
        raise SystemExit("--sites: give one or more site counts, e.g. --sites 2000,20000")
    return counts


def measured_commit() -> dict:
    """The commit this run measured, and whether the work tree had changes beside it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"),
                "work_tree_changed": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "work_tree_changed": None}


def bench_sites(sites: int, args: argparse.Namespace) -> dict:
    """One crawl of `sites` test-web sites, then `scrapy bench` beside it: the figures."""
    plan = WebPlan(sites=sites, pages=1, images_per_page=args.images,
                   plant_every=args.plant_every, traps=False, hostile=False,
                   markups=args.markups)
    with tempfile.TemporaryDirectory(prefix="haechi-bench-crawl-") as tmp:
        home = Path(tmp) / "home"
        # The outbound policy fetches public addresses only: the test web's are allowed.
        env = {**os.environ, "HAECHI_HOME": str(home), "HAECHI_FETCH_ALLOW": FETCH_ALLOW}
        env.pop("DATABASE_URL", None)
        env.pop("HAECHI_STORE", None)
        home.mkdir()
        for number in range(plan.victims):
            path = Path(tmp) / f"{victim_name(number)}.jpg"
            path.write_bytes(encode(victim_original(plan.seed, number)))
            subprocess.run([HAECHI, "register", "--victim", victim_name(number), str(path)],
                           env=env, check=True, capture_output=True)
        served_log = Path(tmp) / "served.log"
        web = start_testweb(plan, served_log=served_log)
        try:
            urls = [web.web.site_url(i) for i in range(plan.sites)]
            started = time.monotonic()
            crawl = subprocess.Popen([HAECHI, "crawl", "--json", *urls], env=env,
                                     stdout=subprocess.PIPE, text=True)
            peak = peak_rss = 0
            peak_parts: dict[str, int] = {}
            done = threading.Event()

            def watch() -> None:
                nonlocal peak, peak_rss, peak_parts
                while not done.is_set():
                    rss, pss, parts = tree_memory(crawl.pid)
                    peak_rss = max(peak_rss, rss)
                    if pss > peak:
                        peak, peak_parts = pss, parts
                    time.sleep(0.5)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            output, _ = crawl.communicate()
            seconds = time.monotonic() - started
            done.set()
            watcher.join()
        finally:
            web.stop()
        summary = json.loads(output)
        cases = json.loads(subprocess.run([HAECHI, "cases", "list", "--json"], env=env,
                                          capture_output=True, text=True, check=True).stdout)
        served: dict[str, float] = {}
        for line in served_log.read_text().splitlines():
            stamp, url = line.split("\t")
            served.setdefault(url, float(stamp))
        delays = [
            dt.datetime.fromisoformat(c["detected_at"]).timestamp() - served[c["image_url"]]
            for c in cases if c["image_url"] in served
        ]
        planted = web.web.planted()
        found = {(c["image_url"], c["victim"]) for c in cases}
        missed = sum((web.web.image_url(p.site, p), p.victim) not in found for p in planted)
    reference = scrapy_bench(args.scrapy_bench_seconds) if args.scrapy_bench_seconds else 0.0
    responses_per_s = summary["requests"] / seconds
    pages_per_s = summary["pages"] / seconds
    return {
        "sites": plan.sites,
        "images_per_site": plan.images_per_page,
        "seconds": round(seconds, 1),
        "target_seconds_for_20000_sites": 900,
        "pages": summary["pages"],
        "files": summary["files"],
        "files_hashed": summary["files_hashed"],
        "requests": summary["requests"],
        "errors": summary["errors"],
        "responses_per_s": round(responses_per_s, 1),
        "pages_per_s": round(pages_per_s, 1),
        "scrapy_bench_pages_per_s": reference,
        "responses_per_s_vs_scrapy_bench": round(responses_per_s / reference, 2)
        if reference else None,
        "pages_per_s_vs_scrapy_bench": round(pages_per_s / reference, 3)
        if reference else None,
        "peak_memory_mb": round(peak / 2**20),
        "peak_memory_mb_by_process": {k: round(v / 2**20) for k, v in sorted(
            peak_parts.items(), key=lambda kv: -kv[1])},
        "peak_rss_sum_mb": round(peak_rss / 2**20),
        "rendered_pages": sum(summary.get("rendered", {}).values()),
        "rendered_pages_per_s": round(sum(summary.get("rendered", {}).values()) / seconds, 2),
        "browser_pages": int(os.environ.get("HAECHI_BROWSER_PAGES", "4")),
        "planted": len(planted),
        "planted_missed": missed,
        "cases": len(cases),
        "served_to_case_s": {
            "p50": round(percentile(delays, 0.5), 3),
            "p99": round(percentile(delays, 0.99), 3),
            "max": round(max(delays, default=0.0), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", action="append", default=None,
                        help="site count, or counts separated by commas; may be repeated "
                             "(default: 20000)")
    parser.add_argument("--images", type=int, default=3, help="images per site")
    parser.add_argument("--plant-every", type=int, default=50)
    parser.add_argument("--scrapy-bench-seconds", type=int, default=30)
    parser.add_argument("--markups", default="",
                        help="the test web's markups the sites cycle through (default: all "
                             "the static ones), e.g. spa-gallery")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON (default: "
                             "benchmarks/bench_crawl-<commit>-<date>.json)")
    args = parser.parse_args()
    counts = site_counts(args.sites or ["20000"])

    measured = measured_commit()
    started = dt.datetime.now(dt.UTC)
    runs = []
    for sites in counts:
        runs.append(bench_sites(sites, args))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    largest = max(runs, key=lambda run: run["sites"])
    result = {**largest, **measured, "started_at": started.isoformat(timespec="seconds"),
              "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(),
              "site_counts": counts, "runs": runs}
    out = args.out or ROOT / "benchmarks" / (
        f"bench_crawl-{measured['commit'][:12]}-{started:%Y-%m-%dT%H%M%SZ}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    out.write_text(text + "\n")
    print(text)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
