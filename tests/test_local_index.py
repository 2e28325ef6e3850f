"""The local-feature index's memory layout (matcher/local_index.py): every descriptor kept once,
in the inverted file's order, finding what FAISS's inverted file found, trained once and saved
trained, and a withdrawn picture's descriptors gone from memory and search at once."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from engines.bankkey import BankCipher
from matcher import local_index
from matcher.index import IndexStamp
from matcher.local_index import (
    BITS,
    IVF_FROM,
    IVF_PROBES,
    NEIGHBOURS,
    LocalIndex,
)
from matcher.signals.local import DESCRIPTOR_BYTES, LocalFeatures

PICTURES = 60  # 30,000 descriptors: over IVF_FROM, so the inverted file is used
PER_PICTURE = 500


def synthetic_pictures(count: int, seed: int = 0) -> list[LocalFeatures]:
    """Pictures whose descriptors cluster as ORB's do (near a few hundred shared patterns)."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 256, (300, DESCRIPTOR_BYTES), dtype=np.uint8)
    pictures = []
    for _ in range(count):
        codes = patterns[rng.integers(0, len(patterns), PER_PICTURE)].copy()
        flips = rng.integers(0, BITS, (PER_PICTURE, 24))
        for bit in range(flips.shape[1]):
            codes[np.arange(PER_PICTURE), flips[:, bit] // 8] ^= (
                1 << (flips[:, bit] % 8)).astype(np.uint8)
        points = rng.integers(0, 512, (PER_PICTURE, 2)).astype(np.float32)
        pictures.append(LocalFeatures(points, codes, (512, 384)))
    return pictures


def near(picture: LocalFeatures, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = picture.descriptors.copy()
    codes[np.arange(len(codes)), rng.integers(0, DESCRIPTOR_BYTES, len(codes))] ^= 1
    noise = rng.integers(0, 256, (300, DESCRIPTOR_BYTES), dtype=np.uint8)
    return np.ascontiguousarray(np.vstack([codes, noise]))


@pytest.fixture(scope="module")
def pictures() -> list[LocalFeatures]:
    return synthetic_pictures(PICTURES)


def indexed(pictures: list[LocalFeatures], first_id: int = 1) -> LocalIndex:
    index = LocalIndex()
    index.add(np.arange(first_id, first_id + len(pictures)), [p.pack() for p in pictures])
    return index


def faiss_neighbour_owners(index: LocalIndex, pictures: list[LocalFeatures],
                           query: np.ndarray, rows: list[int] | None = None,
                           ) -> set[tuple[int, int]]:
    """(query descriptor, picture) pairs within vote distance that FAISS's own inverted file,
    on the same lists and the descriptors added in the same order, finds: the index before."""
    quantizer = faiss.IndexBinaryFlat(BITS)
    quantizer.add(index._centroids)
    ivf = faiss.IndexBinaryIVF(quantizer, BITS, len(index._centroids))
    ivf.nprobe = IVF_PROBES
    everything = np.vstack([p.descriptors for p in pictures])
    owner = np.repeat(rows or list(range(1, len(pictures) + 1)), PER_PICTURE)
    ivf.add_with_ids(everything, np.arange(len(everything), dtype=np.int64))
    distances, serials = ivf.search(query, NEIGHBOURS)
    close = (distances <= local_index.VOTE_DISTANCE) & (serials >= 0)
    rows = np.repeat(np.arange(len(query)), NEIGHBOURS).reshape(serials.shape)
    return set(zip(rows[close].tolist(), owner[serials[close]].tolist(), strict=True))


def own_neighbour_owners(index: LocalIndex, query: np.ndarray) -> set[tuple[int, int]]:
    distances, slots = index._neighbours(query)
    close = (distances <= local_index.VOTE_DISTANCE) & (slots >= 0)
    rows = np.repeat(np.arange(len(query)), NEIGHBOURS).reshape(slots.shape)
    return set(zip(rows[close].tolist(), index._rows[slots[close]].tolist(), strict=True))


def test_the_inverted_file_finds_the_neighbours_faiss_found(pictures):
    index = indexed(pictures)
    index._ready()
    assert index.lists > 1 and index.descriptors == PICTURES * PER_PICTURE >= IVF_FROM
    for seed in range(3):
        query = near(pictures[seed * 7], seed)
        assert own_neighbour_owners(index, query) == faiss_neighbour_owners(
            index, pictures, query)
        assert index.candidates(query)[0][0] == seed * 7 + 1


def test_each_descriptor_is_kept_once_with_its_point(pictures):
    index = indexed(pictures)
    index._ready()
    assert index._codes.shape == (PICTURES * PER_PICTURE, DESCRIPTOR_BYTES)
    assert index._meta.nbytes == 4 * PICTURES * PER_PICTURE
    for row in (1, 17, PICTURES):
        kept = index.picture(row)
        registered = pictures[row - 1]
        pairs = {(tuple(p), d.tobytes()) for p, d in zip(
            kept.points.tolist(), kept.descriptors, strict=True)}
        assert pairs == {(tuple(p), d.tobytes()) for p, d in zip(
            registered.points.tolist(), registered.descriptors, strict=True)}
        assert kept.size == registered.size


def test_pictures_added_after_training_join_their_lists_without_retraining(pictures):
    index = indexed(pictures[:50])
    index._ready()
    centroids = index._centroids.copy()
    index.add(np.arange(51, PICTURES + 1), [p.pack() for p in pictures[50:]])
    index._ready()
    assert np.array_equal(index._centroids, centroids)
    query = near(pictures[55], 5)
    assert own_neighbour_owners(index, query) == faiss_neighbour_owners(index, pictures, query)
    assert index.candidates(query)[0][0] == 56


def test_a_saved_index_loads_trained_and_finds_the_same(pictures, tmp_path, monkeypatch):
    cipher = BankCipher(b"k" * 32)
    index = indexed(pictures)
    query = near(pictures[3], 1)
    before = index.candidates(query)
    index.save(tmp_path / "local.index", IndexStamp(PICTURES, PICTURES), cipher)

    def no_training(*_args, **_kwargs):
        raise AssertionError("load trained the inverted file again")

    monkeypatch.setattr(faiss.IndexBinaryIVF, "train", no_training)
    loaded, stamp = LocalIndex.load(tmp_path / "local.index", cipher=cipher)
    assert stamp == IndexStamp(PICTURES, PICTURES) and len(loaded) == PICTURES
    assert loaded.candidates(query) == before
    assert np.array_equal(loaded._centroids, index._centroids)


def test_withdrawal_removes_the_descriptors_from_memory_and_search_at_once(pictures):
    index = indexed(pictures)
    gone = pictures[9]
    query = near(gone, 2)
    assert index.candidates(query)[0][0] == 10
    assert index.remove(np.array([10])) == 1
    assert all(row != 10 for row, _ in index.candidates(query))
    assert index.descriptors == (PICTURES - 1) * PER_PICTURE
    kept = index._codes.tobytes()
    assert sum(gone.descriptors[i].tobytes() in kept for i in range(0, PER_PICTURE, 50)) == 0
    with pytest.raises(KeyError):
        index.picture(10)
    other = near(pictures[30], 3)
    assert own_neighbour_owners(index, other) == faiss_neighbour_owners(
        index, pictures[:9] + pictures[10:], other, [*range(1, 10), *range(11, PICTURES + 1)])
    assert index.candidates(other)[0][0] == 31


def test_a_pending_picture_withdrawn_before_any_search_is_never_searched(pictures):
    index = indexed(pictures[:3])
    assert index.remove(np.array([2])) == 1
    assert index.descriptors == 2 * PER_PICTURE
    assert 2 not in [row for row, _ in index.candidates(near(pictures[1], 0))]
    with pytest.raises(KeyError):
        index.picture(2)
