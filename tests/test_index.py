"""The index: exact range search (the same hits as FAISS brute force), both tiers, removal,
atomic save and reload."""

from __future__ import annotations

import os

import faiss
import numpy as np
import pytest

from matcher import index as index_module
from matcher.index import BinaryHashIndex, IndexStamp


def faiss_brute_force(codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, radius: int):
    flat = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    flat.add(codes)
    lims, distances, positions = flat.range_search(queries, radius + 1)
    query = np.repeat(np.arange(len(queries)), np.diff(lims.astype(np.int64)))
    return {(int(q), int(ids[p]), int(d)) for q, p, d in zip(query, positions, distances,
                                                                strict=True)}


def hit_set(hits) -> set[tuple[int, int, int]]:
    return set(zip(hits.query.tolist(), hits.ids.tolist(), hits.distances.tolist(), strict=True))


def near_copies(rng: np.random.Generator, codes: np.ndarray, flips: int) -> np.ndarray:
    queries = codes.copy()
    bits = codes.shape[1] * 8
    for row in queries:
        for bit in rng.choice(bits, flips, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return queries


@pytest.fixture
def small_fresh_tier(monkeypatch):
    monkeypatch.setattr(index_module, "FRESH_LIMIT", 500)


@pytest.mark.parametrize(("bits", "radius"), [(256, 31), (64, 6), (64, 7)])
def test_range_search_equals_faiss_brute_force_across_both_tiers(small_fresh_tier, bits, radius):
    rng = np.random.default_rng(bits + radius)
    codes = rng.integers(0, 256, (3000, bits // 8), dtype=np.uint8)
    ids = np.arange(10, 3010)
    index = BinaryHashIndex(bits)
    index.add(ids[:2600], codes[:2600])  # over the limit: straight into the main tier
    index.add(ids[2600:], codes[2600:])  # stays fresh
    queries = np.vstack([near_copies(rng, codes[::50], radius),
                         near_copies(rng, codes[1::50], radius + 1),
                         near_copies(rng, codes[2::50], radius // 2)])
    found = hit_set(index.search(queries, radius))
    assert found == faiss_brute_force(codes, ids, queries, radius)
    assert {q for q, _, _ in found} >= set(range(60)) | set(range(120, 180))


def test_hits_at_exactly_the_threshold_are_in_and_one_more_is_out():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    index = BinaryHashIndex(256)
    index.add(np.arange(50), codes)
    hits = index.search(np.vstack([near_copies(rng, codes[:1], 31),
                                   near_copies(rng, codes[:1], 32)]), 31)
    assert hit_set(hits) == {(0, 0, 31)}


def test_search_beyond_the_exact_radius_is_refused():
    with pytest.raises(ValueError, match="beyond exact search"):
        BinaryHashIndex(64).search(np.zeros((1, 8), np.uint8), 8)


def test_removed_ids_are_never_returned_from_either_tier(small_fresh_tier):
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (800, 32), dtype=np.uint8)
    index = BinaryHashIndex(256)
    index.add(np.arange(600), codes[:600])
    index.add(np.arange(600, 800), codes[600:])
    assert index.remove(np.array([5, 700, 9999])) == 2
    assert len(index) == 798
    found = {i for _, i, _ in hit_set(index.search(codes[[5, 6, 700, 701]], 0))}
    assert found == {6, 701}


def test_new_hashes_are_searchable_immediately_after_add():
    rng = np.random.default_rng(4)
    index = BinaryHashIndex(256)
    index.add(np.arange(1000), rng.integers(0, 256, (1000, 32), dtype=np.uint8))
    new = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    index.add(np.array([5000]), new)
    assert index.search(new, 0).ids.tolist() == [5000]


def test_a_search_on_any_thread_scans_with_one_faiss_thread():
    """OpenMP keeps its thread count per thread: a thread that never set it (the crawl's, a
    Celery worker's) would start one per core, which spin against the other workers."""
    import threading

    index = BinaryHashIndex(256)
    index.add(np.arange(10), np.random.default_rng(0).integers(0, 256, (10, 32), np.uint8))
    seen = {}

    def search() -> None:
        seen["before"] = faiss.omp_get_max_threads()
        index.search(np.zeros((1, 32), np.uint8), 31)
        seen["after"] = faiss.omp_get_max_threads()

    worker = threading.Thread(target=search)
    worker.start()
    worker.join()
    assert seen["after"] == index_module.SEARCH_THREADS == 1
    if (os.cpu_count() or 1) > 1 and "OMP_NUM_THREADS" not in os.environ:
        assert seen["before"] > 1  # the check did start from OpenMP's default


def test_saved_index_reloads_with_its_stamp_and_corrupt_file_reads_as_missing(
    tmp_path, small_fresh_tier
):
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (700, 32), dtype=np.uint8)
    index = BinaryHashIndex(256)
    index.add(np.arange(1, 601), codes[:600])
    index.add(np.arange(601, 701), codes[600:])
    index.remove(np.array([3]))
    path = tmp_path / "pdq.index"
    index.save(path, IndexStamp(max_id=700, count=699))
    loaded, stamp = BinaryHashIndex.load(path, 256)
    assert stamp == IndexStamp(700, 699)
    assert hit_set(loaded.search(codes, 0)) == hit_set(index.search(codes, 0))
    assert not list(tmp_path.glob(".*.tmp"))
    path.write_bytes(path.read_bytes()[:400])
    assert BinaryHashIndex.load(path, 256) is None
