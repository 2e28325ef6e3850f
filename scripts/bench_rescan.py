"""Re-scan benchmark: parity with the live crawl on the project's test web, and speed at 10M.

Parity (`parity`): the test web (testkit/testweb/) is crawled twice, into two data folders:
once with the victims registered before the crawl (the live match), once with them registered
after it (`haechi register` re-scans what was crawled). Each plan is one site per markup with
one seed; seeds 0-6 together plant all 14 of the test web's edits (a site's edit is
(site * 7 + seed) mod 14), and the demo's plan (seed 2026) is run as the demo runs it. Prints
JSON: per plan and in total, planted copies, those the live crawl found, those the re-scan
found, and the edits of every copy one found and the other did not.

Speed (`speed`): one victim against N synthetic seen files (random codes standing in for the
global hashes and visual words of crawled files, with near copies of the victim planted),
through matcher/seen.py's own index; prints the index build time and the search time per
victim (median and max of VICTIMS victims) at each N, the bytes kept per file, and whether the
planted copies were among the candidates.

    python scripts/bench_rescan.py parity [--seeds 0,1,2,3,4,5,6,2026]
    python scripts/bench_rescan.py speed [--sizes 1000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HAECHI = str(Path(sys.executable).with_name("haechi"))
# The cluster and store settings of the caller are dropped: each run has its own data folder.
DROPPED = ("DATABASE_URL", "REDIS_URL", "HAECHI_STORE", "HAECHI_EVIDENCE_STORE",
           "HAECHI_ALERT_WEBHOOK", "HAECHI_ALERT_EMAIL", "HAECHI_SMTP_URL")
DEMO_SEED = 2026



def crawl_both(urls: list[str], envs: tuple[dict, dict], timeout: float) -> None:
    """`haechi crawl` of `urls` in each of the two homes at once (they share nothing but the
    sites); raises when either fails."""
    crawls = [subprocess.Popen([HAECHI, "crawl", "--json", *urls], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for env in envs]
    for crawl in crawls:
        _, err = crawl.communicate(timeout=timeout)
        if crawl.returncode != 0:
            raise RuntimeError(f"haechi crawl failed: {err[-2000:]}")

def _haechi(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    result = subprocess.run([HAECHI, *args], capture_output=True, text=True, env=env,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"haechi {args[0]} failed: {result.stderr[-2000:]}")
    return result.stdout


def _env(home: Path) -> dict[str, str]:
    from testkit.testweb.model import FETCH_ALLOW

    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    env.update(HAECHI_HOME=str(home), HAECHI_FETCH_ALLOW=FETCH_ALLOW,
               HAECHI_SCRAPY_DOWNLOAD_TIMEOUT="5", HAECHI_SCRAPY_RETRY_TIMES="3",
               HAECHI_SCRAPY_RETRY_BACKOFF_BASE="0.5")
    return env


def _register(env: dict[str, str], folder: Path, plan) -> int:
    """Register every victim of `plan`; returns the earlier copies the re-scans raised."""
    from testkit.synthetic import encode
    from testkit.testweb.model import victim_name, victim_original

    folder.mkdir(parents=True, exist_ok=True)
    found = 0
    for number in range(plan.victims):
        path = folder / f"{victim_name(number)}.jpg"
        path.write_bytes(encode(victim_original(plan.seed, number)))
        result = json.loads(_haechi(env, "register", "--json", "--victim", victim_name(number),
                                    str(path)))
        found += result["rescan"]["earlier_copies"]
    return found


def _cases(env: dict[str, str]) -> set[tuple[str, str]]:
    return {(c["image_url"], c["victim"]) for c in json.loads(_haechi(env, "cases", "list",
                                                                      "--json"))}


def parity_plan(seed: int, work: Path) -> dict:
    """Live and re-scan recall of one plan of the test web."""
    from testkit.testweb.model import MARKUPS, WebPlan
    from testkit.testweb.server import start_testweb

    if seed == DEMO_SEED:  # as haechi/commands/demo.py runs it, traps and hostile files too
        plan = WebPlan(sites=len(MARKUPS), seed=seed, victims=3, pages=2, images_per_page=3)
    else:
        plan = WebPlan(sites=len(MARKUPS), seed=seed, victims=3, pages=2, images_per_page=2,
                       traps=False, hostile=False)
    live_env, later_env = _env(work / "live"), _env(work / "later")
    _register(live_env, work / "victims-live", plan)
    web = start_testweb(plan)
    try:
        urls = [web.web.site_url(i) for i in range(plan.sites)]
        # Both crawls at once: they share nothing but the test web.
        crawl_both(urls, (live_env, later_env), 900)
        planted = {(web.web.image_url(p.site, p), p.victim): p for p in web.web.planted()}
    finally:
        web.stop()
    started = time.perf_counter()
    raised = _register(later_env, work / "victims-later", plan)
    register_s = time.perf_counter() - started
    live, later = _cases(live_env) & set(planted), _cases(later_env)
    return {
        "seed": seed, "planted": len(planted), "live": len(live),
        "rescan": len(later & set(planted)), "rescan_events": raised,
        "rescan_false_cases": len(later - set(planted)),
        "register_and_rescan_s": round(register_s, 1),
        "live_only": sorted(f"{planted[k].edit}/{planted[k].markup}" for k in live - later),
        "rescan_only": sorted(f"{planted[k].edit}/{planted[k].markup}"
                              for k in (later & set(planted)) - live),
        "neither": sorted(f"{planted[k].edit}/{planted[k].markup}"
                          for k in set(planted) - live - later),
    }


def parity(seeds: list[int]) -> dict:
    plans = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="haechi-bench-rescan-") as work:
            plans.append(parity_plan(seed, Path(work)))
            print(json.dumps(plans[-1]), file=sys.stderr)
    total = {key: sum(p[key] for p in plans)
             for key in ("planted", "live", "rescan", "rescan_false_cases")}
    return {"crawl": "testkit/testweb, one site per markup per seed", "seeds": seeds,
            "total": total, "plans": plans}


# The edits site: one site of its own (an address of the test web's block, far past its sites)
# serving every edit of testkit/edits.py (the mild ones the test web plants and the hard ones:
# crops, tilts, captions, memes, screenshots) of each victim, among unrelated pictures.
EDITS_SITE = 60_000
EDITS_VICTIMS = 3
WALLPAPER_VICTIMS = 4
DISTRACTORS = 40


def _edits_victims() -> list[tuple[str, Image.Image]]:
    """The generated victims of the test web's demo seed, and a few wallpaper photos when
    scripts/fetch_wallpapers.sh has fetched them."""
    from testkit.testweb.model import victim_original

    victims = [(f"gen-{n + 1}", victim_original(DEMO_SEED, n)) for n in range(EDITS_VICTIMS)]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = Path(os.environ.get("HAECHI_WALLPAPERS") or cache / "haechi" / "wallpapers")
    if (folder / ".done").exists():
        photos = sorted(p for p in (folder / "root/usr/share/backgrounds").rglob("*")
                        if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        for path in photos[:WALLPAPER_VICTIMS]:
            with Image.open(path) as im:
                picture = im.convert("RGB")
            picture.thumbnail((1280, 1280))
            victims.append((f"photo-{path.stem}", picture))
    return victims


def edits_site() -> tuple[dict[str, bytes], dict[str, tuple[str, str]]]:
    """The site's files by path, and each planted path's (victim, edit)."""
    import numpy as np

    from testkit.edits import EDITS
    from testkit.synthetic import encode
    from testkit.testweb.model import unrelated_image

    files: dict[str, bytes] = {}
    planted: dict[str, tuple[str, str]] = {}
    links = []
    for number, (victim, picture) in enumerate(_edits_victims()):
        images = []
        for index, (name, edit) in enumerate(EDITS.items()):
            path = f"/media/{victim}/{name}.jpg"
            edited = edit(picture, np.random.default_rng((number, index))).convert("RGB")
            files[path] = encode(edited, quality=88)
            planted[path] = (victim, name)
            images.append(path)
        for n in range(DISTRACTORS // (EDITS_VICTIMS + WALLPAPER_VICTIMS)):
            path = f"/media/other-{number}-{n}.jpg"
            files[path] = unrelated_image(DEMO_SEED, EDITS_SITE + number, n)
            images.append(path)
        page = f"/gallery/{victim}.html"
        files[page] = ("<html><body>" + "".join(f'<img src="{i}">' for i in images)
                       + "</body></html>").encode()
        links.append(page)
    files["/"] = ("<html><body>" + "".join(f'<a href="{p}">{p}</a>' for p in links)
                  + "</body></html>").encode()
    return files, planted


def parity_edits(work: Path) -> dict:
    """Live and re-scan recall of every edit of testkit/edits.py, crawled from one site."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from testkit.synthetic import encode
    from testkit.testweb.model import site_address

    files, planted = edits_site()
    victims = dict(_edits_victims())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            kind = "text/html" if self.path.endswith((".html", "/")) else "image/jpeg"
            self.send_header("Content-Type", kind if body is not None else "text/plain")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((site_address(EDITS_SITE), 0), Handler)
    base = f"http://{site_address(EDITS_SITE)}:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def register(env: dict[str, str]) -> int:
        found = 0
        for victim, picture in victims.items():
            path = work / f"{victim}.jpg"
            path.write_bytes(encode(picture, quality=92))
            found += json.loads(_haechi(env, "register", "--json", "--victim", victim,
                                        str(path)))["rescan"]["earlier_copies"]
        return found

    live_env, later_env = _env(work / "live"), _env(work / "later")
    try:
        register(live_env)
        crawl_both([base + "/"], (live_env, later_env), 1800)
    finally:
        server.shutdown()
    started = time.perf_counter()
    raised = register(later_env)
    register_s = time.perf_counter() - started
    keys = {(base + path, victim): edit for path, (victim, edit) in planted.items()}
    # Some wallpapers are one photo at several sizes (Elephants, Elephants_3840x2160): a case
    # of one of them on another's copy is right, not false.
    def photo(victim: str) -> str:
        return victim.split("_")[0]

    copies = {(url, photo(victim)) for url, victim in keys}
    live, later = _cases(live_env), _cases(later_env)

    def false(cases: set[tuple[str, str]]) -> int:
        return len({(url, v) for url, v in cases if (url, photo(v)) not in copies})

    by_edit: dict[str, dict[str, int]] = {}
    for key, edit in keys.items():
        counts = by_edit.setdefault(edit, {"planted": 0, "live": 0, "rescan": 0})
        counts["planted"] += 1
        counts["live"] += key in live
        counts["rescan"] += key in later
    return {
        "crawl": f"one site of every edit in testkit/edits.py x {len(victims)} victims",
        "planted": len(keys), "live": len(live & set(keys)), "rescan": len(later & set(keys)),
        "rescan_events": raised, "live_false_cases": false(live),
        "rescan_false_cases": false(later),
        "register_and_rescan_s": round(register_s, 1),
        "live_only": sorted(f"{keys[k]}/{k[1]}" for k in (live & set(keys)) - later),
        "rescan_only": sorted(f"{keys[k]}/{k[1]}" for k in (later & set(keys)) - live),
        "by_edit": by_edit,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parity = commands.add_parser("parity", help="live vs re-scan recall on the test web")
    run_parity.add_argument("--seeds", default=f"0,1,2,3,4,5,6,{DEMO_SEED}")
    commands.add_parser("edits", help="live vs re-scan recall on a site of every edit")
    run_speed = commands.add_parser("speed", help="one victim against N seen files")
    run_speed.add_argument("--sizes", default="1000000,10000000")
    args = parser.parse_args()
    if args.command == "parity":
        result = parity([int(s) for s in args.seeds.split(",")])
    elif args.command == "edits":
        with tempfile.TemporaryDirectory(prefix="haechi-bench-rescan-") as work:
            result = parity_edits(Path(work))
    else:
        result = speed([int(s) for s in args.sizes.split(",")])
    print(json.dumps(result, indent=2))
    return 0


# A synthetic seen file: this many PDQ and pHash view codes (the crawled pictures of the
# test web keep 2-5 views) and this many distinct words (170-250 of WORDS_PER_FILE).
VIEWS_PER_FILE = 3
WORDS_PER_SEEN_FILE = 200
VICTIMS = 10


def speed(sizes: list[int]) -> dict:
    """One victim's candidate search against N synthetic seen files, timed, as SeenIndex runs
    it (its global indexes and its inverted file, built here from arrays, not from rows)."""
    import numpy as np

    from matcher import seen_words
    from matcher.index import BinaryHashIndex
    from matcher.seen import MIN_WORD_SCORE, WORD_CANDIDATES, WordIndex

    def near(code: np.ndarray, flips: int, rng: np.random.Generator) -> np.ndarray:
        bits = np.unpackbits(code)
        bits[rng.choice(len(bits), flips, replace=False)] ^= 1
        return np.packbits(bits)

    rng = np.random.default_rng(0)
    results = []
    for size in sizes:
        # The victim's side as matcher/rescan.py builds it for one picture: ~130 PDQ and
        # ~130 pHash codes (17 views x 8 orientations, deduplicated) and ~1,000 words.
        victims = [{"pdq": rng.integers(0, 256, (130, 32), np.uint8),
                    "phash": rng.integers(0, 256, (130, 8), np.uint8),
                    "words": np.unique(rng.integers(0, 2 ** 16, 1000)).astype(np.uint16)}
                   for _ in range(VICTIMS)]
        started = time.perf_counter()
        indexes = {}
        for name, nbytes, flips in (("pdq", 32, 20), ("phash", 8, 2)):
            codes = rng.integers(0, 256, (size * VIEWS_PER_FILE, nbytes), np.uint8)
            for v, victim in enumerate(victims):  # one earlier copy of each victim
                codes[(v * 997 + 1) * VIEWS_PER_FILE] = near(victim[name][v], flips, rng)
            index = BinaryHashIndex(nbytes * 8)
            index.add(np.repeat(np.arange(size, dtype=np.int64), VIEWS_PER_FILE), codes)
            indexes[name] = index
            del codes
        # The inverted file: each file's words as postings, sorted by word.
        postings = size * WORDS_PER_SEEN_FILE
        words = WordIndex()
        words.rows = np.arange(size, dtype=np.int64)
        counts = rng.multinomial(postings, np.full(2 ** seen_words.WORD_BITS,
                                                   2.0 ** -seen_words.WORD_BITS))
        words.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        words.postings = rng.integers(0, size, postings, dtype=np.int32)
        for v, victim in enumerate(victims):  # a copy sharing 40 of the victim's words
            target = (v * 997 + 2) % size
            for w in victim["words"][:40].tolist():
                words.postings[words.starts[w]] = target
        # Each list in row order, as SeenIndex's own merge leaves it (rows are added in order).
        for start, end in zip(words.starts[:-1].tolist(), words.starts[1:].tolist(),
                              strict=True):
            words.postings[start:end].sort()
        build = time.perf_counter() - started
        indexes["pdq"].search(victims[0]["pdq"][:1], 31)  # compiles the search kernel
        timings, parts, found = [], {"pdq": [], "phash": [], "words": []}, 0
        for v, victim in enumerate(victims):
            t0 = time.perf_counter()
            hits = set(indexes["pdq"].search(victim["pdq"], 31).ids.tolist())
            t1 = time.perf_counter()
            hits |= set(indexes["phash"].search(victim["phash"], 3).ids.tolist())
            t2 = time.perf_counter()
            proposed = words.search(victim["words"], WORD_CANDIDATES, MIN_WORD_SCORE)
            t3 = time.perf_counter()
            timings.append(t3 - t0)
            for name, took in zip(parts, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                parts[name].append(took)
            found += (v * 997 + 1 in hits) + ((v * 997 + 2) % size in proposed)
        results.append({
            "seen_files": size,
            "index_build_s": round(build, 1),
            "rescan_one_victim_s": {"median": round(float(np.median(timings)), 3),
                                    "max": round(max(timings), 3)},
            "median_s_by_part": {k: round(float(np.median(t)), 3) for k, t in parts.items()},
            "planted_found": f"{found}/{2 * VICTIMS}",
        })
        del indexes, words
    return {"views_per_file": VIEWS_PER_FILE, "words_per_file": WORDS_PER_SEEN_FILE,
            "bytes_per_file": VIEWS_PER_FILE * (32 + 8) + 2 * WORDS_PER_SEEN_FILE,
            "target_s_at_10M": 1.0, "results": results}


if __name__ == "__main__":
    sys.exit(main())
