"""Memory, load time and query cost of the local-feature index at 100,000 victim pictures.

Issue 15 asks for 100,000 victim pictures searchable in at most 2 GB. The pictures here are
synthetic (each at the registration cap of 500 descriptors, the worst case: most photos reach
it): descriptors are random list centroids with 16 bits flipped, so each one's list is known
by construction and the build skips assigning 50 million descriptors (training 28,284 lists
and assigning every descriptor to them is what loading cost before, at every load). The index
is saved sealed, then a fresh process loads it and reports its memory (PSS and RSS from
/proc), the load time, and the cost of a query (candidates and verification of copies of
registered pictures) against FAISS's own inverted file on the same lists, in the same run.
Prints JSON.

    python scripts/bench_local_index.py [--pictures 100000] [--queries 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PER_PICTURE = 500
FLIPS = 16


def memory() -> dict:
    """This process's PSS and RSS in MB (10^6 bytes)."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss"):
            fields[name.lower() + "_mb"] = round(int(value.split()[0]) * 1024 / 1e6)
    return fields


def build(pictures: int, path: Path, key: bytes) -> None:
    """The synthetic index laid out as LocalIndex lays it out, saved sealed under `key`."""
    from engines.bankkey import BankCipher
    from matcher import local_index as li
    from matcher.index import IndexStamp

    total = pictures * PER_PICTURE
    lists = min(li.IVF_MAX_LISTS, int(li.IVF_LISTS_PER_SQRT * np.sqrt(total)),
                total // li.IVF_TRAIN_PER_LIST)
    rng = np.random.default_rng(15)
    index = li.LocalIndex()
    index._centroids = rng.integers(0, 256, (lists, 32), dtype=np.uint8)
    index._trained_for = total
    owner_list = rng.integers(0, lists, total).astype(np.int32)
    order = np.argsort(owner_list, kind="stable")  # by list, then by slot (serial order)
    index._codes = np.empty((total, 32), np.uint8)
    index._meta = np.empty(total, np.uint32)
    for begin in range(0, total, 1 << 22):
        part = order[begin:begin + (1 << 22)]
        codes = index._centroids[owner_list[part]]
        for _ in range(FLIPS):
            bit = rng.integers(0, 256, len(part))
            codes[np.arange(len(part)), bit // 8] ^= (1 << (bit % 8)).astype(np.uint8)
        index._codes[begin:begin + len(part)] = codes
        slots = part // PER_PICTURE
        points = np.stack([rng.integers(0, 512, len(part)), rng.integers(0, 384, len(part))], 1)
        index._meta[begin:begin + len(part)] = (
            points[:, 0] | (points[:, 1] << li.POINT_BITS)
            | ((slots & (li.SLOT_RUN - 1)) << (2 * li.POINT_BITS))).astype(np.uint32)
    index._rows = np.arange(1, pictures + 1, dtype=np.int64)
    index._slot_of = {row: row - 1 for row in range(1, pictures + 1)}
    index._sizes = np.tile(np.uint16([512, 384]), (pictures, 1))
    index._counts = np.full(pictures, PER_PICTURE, np.int32)
    index._set_tables(owner_list[order].astype(np.int64), (order // PER_PICTURE))
    del order, owner_list
    index._tables_changed()
    index.save(path, IndexStamp(pictures, pictures), BankCipher(key))


def copy_of(picture, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple]:
    """A query showing `picture` scaled by 0.9 and shifted, beside 500 unrelated keypoints."""
    codes = picture.descriptors.copy()
    codes[np.arange(len(codes)), rng.integers(0, 32, len(codes))] ^= 1
    noise = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    points = np.vstack([picture.points * 0.9 + 20, rng.uniform(0, 480, (500, 2))])
    return points.astype(np.float32), np.ascontiguousarray(np.vstack([codes, noise])), (512, 512)


def measure(path: Path, key: bytes, queries: int) -> dict:
    """Load the index in this (fresh) process; its memory, load time and query cost."""
    import faiss

    from engines.bankkey import BankCipher
    from matcher import local_index as li
    from matcher.verification import verify

    faiss.omp_set_num_threads(1)
    started = time.perf_counter()
    index, _ = li.LocalIndex.load(path, cipher=BankCipher(key))
    loaded = time.perf_counter() - started
    rng = np.random.default_rng(1)
    rows = rng.choice(len(index), queries, replace=False) + 1
    asked = [copy_of(index.picture(int(row)), rng) for row in rows]
    index.candidates(asked[0][1])  # compile (or load numba's cache)
    result = {"pictures": len(index), "descriptors": index.descriptors, "lists": index.lists,
              "load_seconds": round(loaded, 1), **memory()}

    def ours(points, codes, size) -> int:
        return sum(verify(points, codes, index.picture(row), size).confirmed
                   for row, _ in index.candidates(codes))

    # FAISS's inverted file over the same lists (what the index held before): built after the
    # memory figure, as a second copy, by its own add with the lists already known.
    quantizer = faiss.IndexBinaryFlat(li.BITS)
    quantizer.add(index._centroids)
    ivf = faiss.IndexBinaryIVF(quantizer, li.BITS, index.lists)
    ivf.nprobe = li.IVF_PROBES
    owner = index._stored_slots()
    lists = np.repeat(np.arange(index.lists), np.diff(index._starts))
    serial = np.lexsort((np.arange(len(owner)), owner))  # back to the order they were added
    for begin in range(0, len(serial), 1 << 22):
        part = serial[begin:begin + (1 << 22)]
        # The arrays are named: a pointer to a temporary would outlive its memory.
        codes = np.ascontiguousarray(index._codes[part])
        ids = np.arange(begin, begin + len(part), dtype=np.int64)
        assigned = np.ascontiguousarray(lists[part].astype(np.int64))
        ivf.add_core(len(part), faiss.swig_ptr(codes), faiss.swig_ptr(ids),
                     faiss.swig_ptr(assigned))
    row_of_serial = index._rows[owner[serial]]
    del lists, serial, owner
    pictures = {int(row): index.picture(int(row)) for row in rows}

    def before(points, codes, size) -> int:
        distances, serials = ivf.search(codes, li.NEIGHBOURS)
        close = (distances <= li.VOTE_DISTANCE) & (serials >= 0)
        query = np.repeat(np.arange(len(codes)), li.NEIGHBOURS).reshape(serials.shape)[close]
        pairs = np.unique(np.stack([query, row_of_serial[serials[close]]], 1), axis=0)
        _, first, shared = np.unique(pairs[:, 0], return_inverse=True, return_counts=True)
        found, where = np.unique(pairs[:, 1], return_inverse=True)
        votes = np.bincount(where, weights=1.0 / shared[first], minlength=len(found))
        top = [int(found[i]) for i in np.argsort(-votes, kind="stable")[:li.CANDIDATES]
               if votes[i] >= li.MIN_VOTES]
        return sum(verify(points, codes, pictures.get(row) or index.picture(row),
                             size).confirmed for row in top)

    timings = {}
    for name, run in (("before", before), ("after", ours), ("before_again", before)):
        started = time.process_time()
        confirmed = sum(run(*query) for query in asked)
        timings[name] = (time.process_time() - started) / queries
        result[f"confirmed_{name}"] = confirmed
    result["query_ms_faiss_ivf"] = round(1000 * min(timings["before"], timings["before_again"]),
                                         1)
    result["query_ms_this_index"] = round(1000 * timings["after"], 1)
    result["query_cost_ratio"] = round(timings["after"] / min(timings["before"],
                                                              timings["before_again"]), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--measure", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    key = b"bench-local-index-key-0123456789"
    if args.measure:
        print(json.dumps(measure(Path(args.measure), key, args.queries)))
        return
    with tempfile.TemporaryDirectory(prefix="haechi-bench-local-") as folder:
        path = Path(folder) / "local.index"
        started = time.perf_counter()
        build(args.pictures, path, key)
        built = time.perf_counter() - started
        out = subprocess.run([sys.executable, __file__, "--queries", str(args.queries),
                              "--measure", str(path)], check=True, capture_output=True,
                             text=True).stdout
        result = json.loads(out)
        result["synthetic_build_seconds"] = round(built, 1)
        result["saved_mb"] = round(path.stat().st_size / 1e6)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
