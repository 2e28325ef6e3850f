"""The FAISS index: exact range search (same as brute force), removal, atomic save and reload."""

from __future__ import annotations

import numpy as np

from matcher.index import BinaryHashIndex, IndexStamp


def brute_force(codes: np.ndarray, queries: np.ndarray, radius: int) -> set[tuple[int, int]]:
    bits = np.unpackbits(codes, axis=1)
    found = set()
    for qi, query in enumerate(np.unpackbits(queries, axis=1)):
        distances = (bits != query).sum(axis=1)
        found |= {(qi, int(i)) for i in np.flatnonzero(distances <= radius)}
    return found


def near_copies(rng: np.random.Generator, codes: np.ndarray, flips: int) -> np.ndarray:
    queries = codes.copy()
    for row in queries:
        for bit in rng.choice(256, flips, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return queries


def test_range_search_finds_exactly_what_brute_force_finds_at_the_threshold():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    index = BinaryHashIndex(256)
    index.add(np.arange(10, 3010), codes)
    queries = np.vstack([near_copies(rng, codes[:40], 31), near_copies(rng, codes[40:80], 32)])
    hits = index.search(queries, 31)
    found = {(qi, int(i) - 10) for qi in range(len(queries)) for i in hits.for_query(qi)[0]}
    assert found == brute_force(codes, queries, 31)
    assert len(found) == 40  # 31 flipped bits is in (inclusive), 32 is out


def test_removed_ids_are_never_returned():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (100, 32), dtype=np.uint8)
    index = BinaryHashIndex(256)
    index.add(np.arange(100), codes)
    assert index.remove(np.arange(0, 100, 2)) == 50
    ids, _ = index.search(codes[:2], 0).for_query(0)
    assert ids.tolist() == []
    assert index.search(codes[:2], 0).for_query(1)[0].tolist() == [1]


def test_saved_index_reloads_with_its_stamp_and_corrupt_file_reads_as_missing(tmp_path):
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    index = BinaryHashIndex(256)
    index.add(np.arange(1, 51), codes)
    path = tmp_path / "pdq.faiss"
    index.save(path, IndexStamp(max_id=50, count=50))
    loaded, stamp = BinaryHashIndex.load(path, 256)
    assert stamp == IndexStamp(50, 50)
    assert loaded.search(codes[7:8], 0).for_query(0)[0].tolist() == [8]
    assert not list(tmp_path.glob(".*.tmp"))
    path.write_bytes(path.read_bytes()[:40])
    assert BinaryHashIndex.load(path, 256) is None
