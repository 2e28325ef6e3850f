"""The seen index's visual-word search (matcher/seen.py WordIndex): the files sharing the most
idf-weighted words, across the merged and the fresh postings and across the scan's blocks."""

from __future__ import annotations

import numpy as np
import pytest

from matcher import seen


def scores_of(files: dict[int, np.ndarray], query: np.ndarray) -> dict[int, float]:
    """Every file's score written out plainly: the idf of each query word it holds."""
    words = np.unique(query)
    frequency = {int(w): sum(int(w) in set(f.tolist()) for f in files.values()) for w in words}
    return {row: float(sum(np.log(len(files) / max(frequency[int(w)], 1))
                           for w in np.intersect1d(held, words)))
            for row, held in files.items()}


@pytest.mark.parametrize("compiled", [True, False])
def test_the_best_files_are_found_in_both_tiers_and_every_block(monkeypatch, compiled) -> None:
    if not compiled:
        # Small blocks, so the rows span many: numba fixes SCORE_BLOCK when it compiles, so
        # they are checked on the plain-Python kernel, which reads it when called.
        monkeypatch.setattr(seen, "SCORE_BLOCK", 97)
        monkeypatch.setattr(seen, "_score_kernel", lambda: seen._score)
    rng = np.random.default_rng(7)
    index = seen.WordIndex()
    files = {}
    for batch in range(3):
        rows = list(range(1000 + batch * 300, 1000 + batch * 300 + 300))
        held = [np.unique(rng.integers(0, 600, 40)).astype(np.uint16) for _ in rows]
        files.update(zip(rows, held, strict=True))
        index.add(rows, held)
        if batch < 2:
            index._merge()  # the last batch stays fresh
    assert index.fresh_words
    for _ in range(4):
        query = np.unique(rng.integers(0, 600, 120)).astype(np.uint16)
        scores = scores_of(files, query)
        found = index.search(query, 10, 8.0)
        best = sorted((s for s in scores.values() if s >= 8.0), reverse=True)[:10]
        # The same scores, best first (float32 sums: a tie may come out in either order).
        assert np.allclose([scores[row] for row in found], best, atol=1e-3)
    assert index.search(query, 5, 1e9) == [] and index.search(query, 0, 0.0) == []
    assert not index._scores.any()  # left all zeros for the next search
