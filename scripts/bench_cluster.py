"""Cluster benchmark: re-scan latency, and matcher worker throughput with 1 and 2 processes.

Re-scan: one new victim against the seen index.

A victim registers with one picture: its registered PDQ codes plus its eight orientations
(about 30 codes) are searched among N seen hashes (random 256-bit codes standing in for
crawled files, with 20 near copies planted). Prints JSON: seconds to build the index (once per
process, then caught up incrementally) and the search time, median of 20 victims, at each N.

Workers: FILES generated pictures (320x240 JPEG) are stored and sent as match tasks to a
`haechi worker` with --concurrency 1, then 2 (same files, hash cache cleared), on the Redis at
REDIS_URL (default redis://127.0.0.1:6379/12, flushed); files per second and the ratio
(target 1.8x or more on this 2-core machine).

    python scripts/bench_cluster.py [--sizes 1000000,10000000] [--files 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matcher.index import BinaryHashIndex  # noqa: E402

CODES_PER_VICTIM = 32
VICTIMS = 20


def near(code: np.ndarray, flips: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(code)
    bits[rng.choice(256, flips, replace=False)] ^= 1
    return np.packbits(bits)


def bench_workers(files: int) -> dict:
    import hashlib
    import os
    import signal
    import subprocess
    import tempfile

    import redis

    from crawler.cluster import MATCH_QUEUE, MATCH_TASK, celery_app
    from crawler.store import LocalStore, media_key
    from haechi.testweb.model import unrelated_image

    url = os.environ.get("HAECHI_BENCH_REDIS", "redis://127.0.0.1:6379/12")
    client = redis.Redis.from_url(url)
    haechi = str(Path(sys.executable).with_name("haechi"))
    result = {"files": files}
    with tempfile.TemporaryDirectory(prefix="haechi-bench-cluster-") as home:
        os.environ.update(HAECHI_HOME=home, REDIS_URL=url)
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("HAECHI_STORE", None)
        store = LocalStore(Path(home) / "objects")
        records = []
        for n in range(files):
            data = unrelated_image(3, n, 0)
            sha = hashlib.sha256(data).hexdigest()
            store.put(media_key(sha), data)
            records.append({"url": f"http://b.example/{n}.jpg", "page_url": "http://b.example/",
                            "site": "b.example", "fetched_at": "2026-11-27T00:00:00+00:00",
                            "status": 200, "media_type": "image/jpeg", "kind": "image",
                            "sha256": sha, "size": len(data), "headers": {},
                            "server_ip": "127.0.0.1", "store_key": media_key(sha)})
        for concurrency in (1, 2):
            client.flushdb()
            worker = subprocess.Popen([haechi, "worker", "--concurrency", str(concurrency)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
            app = celery_app()
            # Warm up: the first task in each process loads the bank and compiles numba code.
            for n in range(concurrency * 2):
                app.send_task(MATCH_TASK, queue=MATCH_QUEUE, args=[{
                    **records[0], "url": f"http://warm.example/{n}.jpg"}])
            while len(list(client.scan_iter("haechi:matched:*"))) < concurrency * 2:
                time.sleep(0.1)
            client.delete(*client.keys("haechi:hashes:*"))
            started = time.perf_counter()
            for record in records:
                app.send_task(MATCH_TASK, queue=MATCH_QUEUE, args=[record])
            while len(list(client.scan_iter("haechi:matched:*"))) < files + concurrency * 2:
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
            result[f"files_per_s_{concurrency}_worker_process"] = round(files / seconds, 1)
        client.flushdb()
    result["ratio_2_vs_1"] = round(result["files_per_s_2_worker_process"]
                                   / result["files_per_s_1_worker_process"], 2)
    result["target_ratio"] = 1.8
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--files", type=int, default=400)
    args = parser.parse_args()
    workers = bench_workers(args.files) if args.files else None
    rng = np.random.default_rng(1)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        seen = rng.integers(0, 256, (size, 32), dtype=np.uint8)
        victims = rng.integers(0, 256, (VICTIMS, CODES_PER_VICTIM, 32), dtype=np.uint8)
        for v in range(VICTIMS):  # one earlier copy of each victim among the seen files
            seen[v * 997] = near(victims[v, 0], 12, rng)
        started = time.perf_counter()
        index = BinaryHashIndex(256)
        index.add(np.arange(size, dtype=np.int64), seen)
        build = time.perf_counter() - started
        timings, found = [], 0
        for v in range(VICTIMS):
            t0 = time.perf_counter()
            hits = index.search(victims[v], 31)
            timings.append(time.perf_counter() - t0)
            found += int(v * 997 in set(hits.ids.tolist()))
        results.append({
            "seen_hashes": size,
            "index_build_s": round(build, 1),
            "rescan_one_victim_s": {"median": round(float(np.median(timings)), 4),
                                    "max": round(max(timings), 4)},
            "planted_copies_found": f"{found}/{VICTIMS}",
        })
        del index, seen
    print(json.dumps({"workers": workers, "rescan": {
        "codes_per_victim": CODES_PER_VICTIM, "target_s_at_10M": 1.0, "results": results}},
        indent=2))


if __name__ == "__main__":
    main()
