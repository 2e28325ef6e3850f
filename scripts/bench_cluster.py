"""Cluster benchmark, first part: re-scan latency of one new victim against the seen index.

A victim registers with one picture: its registered PDQ codes plus its eight orientations
(about 30 codes) are searched among N seen hashes (random 256-bit codes standing in for
crawled files, with 20 near copies planted). Prints JSON: seconds to build the index (once per
process, then caught up incrementally) and the search time, median of 20 victims, at each N.

    python scripts/bench_cluster.py [--sizes 1000000,10000000]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    args = parser.parse_args()
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
    print(json.dumps({"codes_per_victim": CODES_PER_VICTIM, "target_s_at_10M": 1.0,
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
