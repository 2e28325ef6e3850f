"""Crawl benchmark on the local test web: many small synthetic sites on the embedded default.

Prints JSON:
- total time to crawl every site (an index page, a few images, security.txt) with
  `haechi crawl`, as a person runs it (target: 20,000 sites in 15 minutes or less);
- responses and pages per second, against `scrapy bench` run on this machine in the same run,
  as a ratio (scrapy bench follows links on a local server and does nothing with the pages);
- peak memory of the crawl and its hash workers (and Chromium's processes when it renders),
  as the sum of their proportional set sizes (PSS: a page shared by processes is counted
  once, split between them; the RSS sum, which counts it in each, is printed beside it), and
  the PSS of each kind of process at that peak (target 1.5 GB or less);
- seconds from a planted file being served to its case existing, p50/p99/max
  (target p99 2 s or less), and whether every planted picture became a case;
- pages rendered in Chromium and rendered pages per second. With `--markups spa-gallery` every
  site is a script-built gallery that only a browser shows, so the run measures rendering
  (HAECHI_BROWSER_PAGES pages at once, 4 by default) and its peak memory (target 1.5 GB).

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--images", type=int, default=3, help="images per site")
    parser.add_argument("--plant-every", type=int, default=50)
    parser.add_argument("--scrapy-bench-seconds", type=int, default=30)
    parser.add_argument("--markups", default="",
                        help="the test web's markups the sites cycle through (default: all "
                             "the static ones), e.g. spa-gallery")
    args = parser.parse_args()

    plan = WebPlan(sites=args.sites, pages=1, images_per_page=args.images,
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
    print(json.dumps({
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
        "pages_per_s": round(summary["pages"] / seconds, 1),
        "scrapy_bench_pages_per_s": reference,
        "responses_per_s_vs_scrapy_bench": round(responses_per_s / reference, 2)
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
    }, indent=2))


if __name__ == "__main__":
    main()
