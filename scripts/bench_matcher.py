"""Matcher speed benchmark: hashing throughput against the naive path, and exact search at scale.

Prints JSON. Every speed is measured against its baseline in the same run, as a ratio, because
this machine is noisy:

- hashing: images per second on one core, Haechi's query path (safe reduced-size decode, views,
  PDQ and pHash in eight orientations, SHA-256) against the naive path
  (`imagehash.phash(Image.open(f))` plus PDQ on a full decode), on Debian wallpaper photos;
- search: exact range-search queries per second at PDQ's threshold on one core, at 1M and 10M
  victim hashes, against FAISS's IndexBinaryFlat on the same hashes;
- memory per victim hash, and the time for a new hash to become searchable;
- the cascade: the whole match (hashing, global stage, local stage) against the global stage
  alone, images per second of one core's CPU time, same run and bank.

    python scripts/bench_matcher.py [--sizes 1000000,10000000] [--queries 4000]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_robustness import wallpaper_files  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def bench_hashing(rounds: int) -> dict:
    import imagehash
    import pdqhash
    from PIL import Image

    from matcher.hasher import ImageHasher

    files = []
    for path in wallpaper_files():
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=90)  # crawled photos are mostly JPEG
        files.append(buffer.getvalue())

    def naive(data: bytes) -> None:
        imagehash.phash(Image.open(io.BytesIO(data)))
        pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))

    hasher = ImageHasher()
    timings = {}
    for name, run in (("naive", naive), ("haechi", hasher.query_hashes)):
        run(files[0])  # warm caches and lazy imports
        started = time.perf_counter()
        for _ in range(rounds):
            for data in files:
                run(data)
        timings[name] = len(files) * rounds / (time.perf_counter() - started)
    return {
        "images": len(files),
        "mean_megapixels": round(float(np.mean([
            np.prod(Image.open(io.BytesIO(d)).size) for d in files])) / 1e6, 2),
        "naive_images_per_second": round(timings["naive"], 2),
        "haechi_images_per_second": round(timings["haechi"], 2),
        "speedup": round(timings["haechi"] / timings["naive"], 2),
    }


def bench_cascade(rounds: int, pictures: int) -> dict:
    """The whole match (hashing and both stages of the cascade) against the global stage
    alone, on one core, same run, same bank: `pictures` generated victims registered with local
    features, the wallpaper photos (7.3 MP JPEGs, none registered, so every one goes through
    the local stage too: the worst case) matched."""
    import os
    import tempfile

    import faiss
    from PIL import Image

    os.environ["HAECHI_HOME"] = tempfile.mkdtemp(prefix="haechi-bench-cascade-")
    os.environ.pop("DATABASE_URL", None)
    from matcher.bank import VictimBank
    from matcher.hasher import ImageHasher
    from matcher.match import Matcher
    from matcher.signals import SIGNAL_TYPES
    from testkit.synthetic import encode, synthetic_picture

    faiss.omp_set_num_threads(1)
    files = []
    for path in wallpaper_files():
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=90)
        files.append(buffer.getvalue())
    bank = VictimBank.open()
    hasher = ImageHasher()
    for seed in range(pictures):
        bank.add(f"V{seed}", hasher.registration_hashes(
            encode(synthetic_picture(10_000 + seed)), local=True), "generated")
    local_rows = bank.stats()["by_algorithm"]["local"]
    global_only = Matcher(bank, ImageHasher([s for s in SIGNAL_TYPES.values()
                                             if not s.geometric]))
    cascade = Matcher(bank)
    timings = {}
    for name, matcher in (("global_only", global_only), ("cascade", cascade)):
        matcher.match_bytes(files[0])  # warm caches, load the indexes
        started = time.process_time()
        for _ in range(rounds):
            for data in files:
                matcher.match_bytes(data)
        timings[name] = len(files) * rounds / (time.process_time() - started)
    index = bank.index("local")
    return {
        "victim_pictures_with_local_features": local_rows,
        "local_descriptors": index.descriptors,
        "global_only_images_per_second": round(timings["global_only"], 2),
        "cascade_images_per_second": round(timings["cascade"], 2),
        "cascade_share_of_global_only": round(timings["cascade"] / timings["global_only"], 3),
    }


def near_copies(rng: np.random.Generator, codes: np.ndarray, flips: int) -> np.ndarray:
    queries = codes.copy()
    for row in queries:
        for bit in rng.choice(256, flips, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return queries


def bench_search(size: int, queries: int, faiss_queries: int) -> dict:
    import faiss

    from matcher.index import BinaryHashIndex

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(size)
    codes = rng.integers(0, 256, (size, 32), dtype=np.uint8)
    before = rss_bytes()
    index = BinaryHashIndex(256)
    started = time.perf_counter()
    index.add(np.arange(size, dtype=np.int64), codes)
    build_seconds = time.perf_counter() - started
    memory = rss_bytes() - before

    half = queries // 2
    picked = rng.choice(size, half, replace=False)
    probe = np.vstack([near_copies(rng, codes[picked], 31),
                       rng.integers(0, 256, (queries - half, 32), dtype=np.uint8)])
    index.search(probe[:10], 31)  # compile
    started = time.perf_counter()
    hits = index.search(probe, 31)
    qps = queries / (time.perf_counter() - started)
    found = set(hits.ids[hits.query < half].tolist())
    assert found >= set(picked.tolist()), "exact search missed a planted near copy"

    flat = faiss.IndexBinaryFlat(256)
    flat.add(codes)
    started = time.perf_counter()
    flat.range_search(probe[:faiss_queries], 32)
    faiss_qps = faiss_queries / (time.perf_counter() - started)
    del flat

    new = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    started = time.perf_counter()
    index.add(np.array([size], dtype=np.int64), new)
    visible = index.search(new, 0).ids.tolist() == [size]
    add_ms = (time.perf_counter() - started) * 1000
    return {
        "hashes": size,
        "build_seconds": round(build_seconds, 1),
        "queries_per_second": round(qps),
        "faiss_flat_queries_per_second": round(faiss_qps),
        "speedup_vs_faiss_flat": round(qps / faiss_qps, 1),
        "memory_bytes_per_hash": round(memory / size, 1),
        "memory_gb_at_10m": round(memory / size * 10_000_000 / 1e9, 2),
        "incremental_add_to_searchable_ms": round(add_ms, 3),
        "incremental_add_visible": visible,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--faiss-queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the photos")
    parser.add_argument("--local-pictures", type=int, default=200,
                        help="victim pictures registered for the cascade benchmark (0: skip)")
    args = parser.parse_args()
    result = {"hashing": bench_hashing(args.rounds), "search": []}
    print(json.dumps(result["hashing"]), file=sys.stderr)
    if args.local_pictures:
        result["cascade"] = bench_cascade(args.rounds, args.local_pictures)
        print(json.dumps(result["cascade"]), file=sys.stderr)
    for size in (int(s) for s in args.sizes.split(",") if s):
        result["search"].append(bench_search(size, args.queries, args.faiss_queries))
        print(json.dumps(result["search"][-1]), file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
