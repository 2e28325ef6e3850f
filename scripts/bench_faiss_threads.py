"""FAISS threads benchmark: where a second OpenMP thread pays for the fresh tier's range search.

The fresh tier of matcher/index.py is a FAISS flat binary index of at most FRESH_LIMIT hashes,
range-searched at PDQ's threshold. Each case times the same search with one thread and with
every core's thread, interleaved (old and new side by side, REPEATS rounds, medians), at
several tier sizes and query batches, twice: on an otherwise idle process, and beside one busy
process per core standing in for the crawl's hash workers or a host's other Celery workers.
Prints JSON: per case the median microseconds per search with each thread count and their
ratio (many threads / one thread: under 1 means more threads pay).

    python scripts/bench_faiss_threads.py [--tiers 1000,10000] [--batches 1,16,130,1000,10000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPEATS = 7


def _spin(stop) -> None:  # a busy neighbour: a hash worker's CPU use
    while not stop.is_set():
        sum(range(10_000))


def cases(tiers: list[int], batches: list[int], threads: int) -> list[dict]:
    import faiss

    rng = np.random.default_rng(0)
    found = []
    for tier in tiers:
        index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(256))
        index.add_with_ids(rng.integers(0, 256, (tier, 32), np.uint8),
                           np.arange(tier, dtype=np.int64))
        for batch in batches:
            queries = rng.integers(0, 256, (batch, 32), np.uint8)
            calls = max(3, min(300, 3_000_000 // (batch * tier)))
            took: dict[int, list[float]] = {1: [], threads: []}
            for _ in range(REPEATS):
                for count in took:
                    faiss.omp_set_num_threads(count)
                    started = time.perf_counter()
                    for _ in range(calls):
                        index.range_search(queries, 32)
                    took[count].append((time.perf_counter() - started) / calls)
            one, many = statistics.median(took[1]), statistics.median(took[threads])
            found.append({"tier": tier, "queries": batch, "one_thread_us": round(one * 1e6, 1),
                          f"{threads}_threads_us": round(many * 1e6, 1),
                          "ratio": round(many / one, 2)})
            print(json.dumps(found[-1]), file=sys.stderr)
    faiss.omp_set_num_threads(1)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", default="1000,10000")
    parser.add_argument("--batches", default="1,16,130,1000,10000")
    args = parser.parse_args()
    tiers = [int(t) for t in args.tiers.split(",") if t]
    batches = [int(b) for b in args.batches.split(",") if b]
    threads = max(2, os.cpu_count() or 2)
    result = {"cores": os.cpu_count(), "threads_compared": threads, "repeats": REPEATS,
              "idle": cases(tiers, batches, threads)}
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    busy = [context.Process(target=_spin, args=(stop,), daemon=True)
            for _ in range(os.cpu_count() or 1)]
    for process in busy:
        process.start()
    try:
        result["beside_busy_workers"] = cases(tiers, batches, threads)
    finally:
        stop.set()
        for process in busy:
            process.join()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
