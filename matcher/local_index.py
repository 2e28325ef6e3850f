"""The local-feature index: every registered picture's ORB descriptors, voting and verifying.

Search is two steps, as in copy-detection systems. First every query descriptor looks up its
nearest registered descriptors over the whole bank (a flat FAISS scan while small; once large,
an inverted file whose lists hold the only copy of the descriptors, see POINT_BITS);
each registered picture gets one vote per query descriptor that found one of its own within
VOTE_DISTANCE. Then the few pictures with the most votes are verified (matcher/verification.py:
one-to-one matches, a fitted transform, and the rules that confirm a copy).

Like matcher/index.py this is a derived, disposable copy of the bank's rows (its ids are row
ids), saved encrypted under the bank's key, mode 600, and rebuilt when stale or unreadable.
Withdrawn rows leave it at once.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from engines.bankkey import BankCipher
from engines.home import private_folder
from matcher.index import IndexStamp, load_arrays, one_thread, save_arrays
from matcher.signals.local import (
    DESCRIPTOR_BYTES,
    LocalFeatures,
    is_mirrored,
    query_size,
    split_query,
    view_of,
)
from matcher.verification import verify

BITS = DESCRIPTOR_BYTES * 8
# Nearest registered descriptors looked up per query descriptor.
NEIGHBOURS = 4
# A neighbour this close (of 256 bits) is a vote. The verified inliers of true copies in
# scripts/bench_robustness.py have a median distance of 15-30 bits; at 64 every picture of a
# repeated texture collected hundreds of votes, at 40 the verifications per query fell from 7.1
# to 5.4 at the same recall.
VOTE_DISTANCE = 40
# Pictures verified per query orientation, the most voted first, and the votes a picture needs
# to be verified at all. A screenshot's page or a meme's letters vote for other pictures too,
# so the true one can rank fourth or fifth: on the tuning split (`bench_robustness.py
# --library`) 5 and 12 found 1% more copies than 3 and 20 (screenshots 0.27 -> 0.33), at about
# 10 ms more per query the global stage left.
CANDIDATES = 5
MIN_VOTES = 12

# A flat scan costs about 1 ns per (query, registered) descriptor pair on one core: 20,000
# registered descriptors (40 pictures) x 1,000 query ones is 20 ms. Above that an inverted file
# replaces it: the descriptors are cut into IVF_LISTS_PER_SQRT * sqrt(n) lists (visual words,
# as in bag-of-words retrieval) and each query descriptor scans only its IVF_PROBES nearest
# lists, so a query costs about the same at 100 and at 100,000 pictures.
IVF_FROM = 20_000
IVF_LISTS_PER_SQRT = 4
IVF_MAX_LISTS = 65_536
IVF_PROBES = 2
# Training the lists' centroids: this many sample descriptors per list.
IVF_TRAIN_PER_LIST = 40


@dataclass(frozen=True)
class LocalHit:
    """A registered picture confirmed in the query: its row, the verified inliers, how many
    squares they cover, the median descriptor distance of the inliers, and the orientation."""

    row_id: int
    inliers: int
    cells: int
    distance: int
    mirrored: bool


# --- Memory layout -------------------------------------------------------------------------
# Each descriptor is kept once, in the inverted file's own order (list by list, and within a
# list by picture in the order pictures were added), as 32 bytes of descriptor and one uint32:
# the keypoint's x and y (10 bits each: pictures are described at 512 px) and the low
# SLOT_LOW_BITS bits of the picture's slot. The slot's high bits are not stored per descriptor:
# per list, `_high` holds where each run of 4,096 slots begins. 36 bytes per descriptor, the
# size of the bank's own code, where FAISS's inverted file alone took 40 (the descriptor and an
# int64 id) beside a second copy of every picture for verification.
POINT_BITS = 10
SLOT_LOW_BITS = 12
SLOT_RUN = 1 << SLOT_LOW_BITS
# The inverted file is trained once, saved with the index and kept while the bank grows; it is
# trained again (and every descriptor reassigned) only once the bank holds RETRAIN_GROWTH times
# the descriptors it was trained on, when its lists would be twice as long as planned.
RETRAIN_GROWTH = 4
# Descriptors assigned to lists per FAISS call: bounds the distance table of one call.
ASSIGN_CHUNK = 65_536
# The saved layout's version: an index saved in another layout is rebuilt from the bank.
LAYOUT = 2


def _popcount(x: np.uint64) -> np.uint64:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


def _slot_at(high: np.ndarray, meta: np.ndarray, lst: int, pos: int) -> int:
    """The slot of the descriptor at `pos` in list `lst`: its run from `high`, its low bits
    from `meta`."""
    runs = high.shape[1] - 1
    lo, hi = 0, runs - 1
    while lo < hi:  # the last run whose start is at or before pos
        mid = (lo + hi + 1) // 2
        if high[lst, mid] <= pos:
            lo = mid
        else:
            hi = mid - 1
    return (lo << SLOT_LOW_BITS) | int(meta[pos] >> np.uint32(2 * POINT_BITS))


def _scan(queries, probes, codes, meta, starts, high, k, out_distance, out_slot):
    """k nearest descriptors of each query among its probed lists, as FAISS's IndexBinaryIVF
    finds them (lists in probe order, a descriptor enters only when strictly closer than the
    farthest kept, and of equally far ones the latest added leaves first), so the same
    neighbours vote."""
    words = queries.shape[1]
    for qi in range(queries.shape[0]):
        for j in range(k):
            out_distance[qi, j] = 1 << 30
            out_slot[qi, j] = -1
        worst = 0
        for probe in range(probes.shape[1]):
            lst = probes[qi, probe]
            if lst < 0:
                continue
            for pos in range(starts[lst], starts[lst + 1]):
                d = 0
                for w in range(words):
                    d += _popcount(queries[qi, w] ^ codes[pos, w])
                if d < out_distance[qi, worst]:
                    out_distance[qi, worst] = d
                    out_slot[qi, worst] = _slot_at(high, meta, lst, pos)
                    worst = 0
                    for j in range(1, k):
                        if (out_distance[qi, j] > out_distance[qi, worst]
                                or (out_distance[qi, j] == out_distance[qi, worst]
                                    and out_slot[qi, j] > out_slot[qi, worst])):
                            worst = j


def _locate(high, meta, run, low, out):
    """Positions of the descriptors of slot (run, low), list by list; returns how many."""
    found = 0
    for lst in range(high.shape[0]):
        lo, hi = high[lst, run], high[lst, run + 1]
        while lo < hi:  # the first position whose low bits are at least `low`
            mid = (lo + hi) // 2
            if (meta[mid] >> np.uint32(2 * POINT_BITS)) < low:
                lo = mid + 1
            else:
                hi = mid
        end = high[lst, run + 1]
        while lo < end and (meta[lo] >> np.uint32(2 * POINT_BITS)) == low:
            if found < out.shape[0]:
                out[found] = lo
            found += 1
            lo += 1
        if found >= out.shape[0]:
            break
    return found


def _compact(codes, meta, keep, n):
    """Move the kept descriptors down in place (same order); returns how many are kept."""
    write = 0
    for read in range(n):
        if keep[read]:
            if write != read:
                codes[write] = codes[read]
                meta[write] = meta[read]
            write += 1
    return write


def _spread_lists(codes, meta, old_starts, shift, added_codes, added_meta, added_starts):
    """Make room in place for new descriptors at the end of every list (the arrays are already
    long enough), moving the lists from the last one down so none is overwritten."""
    for lst in range(old_starts.shape[0] - 2, -1, -1):
        begin, end = old_starts[lst], old_starts[lst + 1]
        move = shift[lst]
        if move:
            for pos in range(end - 1, begin - 1, -1):
                codes[pos + move] = codes[pos]
                meta[pos + move] = meta[pos]
        target = end + move
        for i in range(added_starts[lst], added_starts[lst + 1]):
            codes[target] = added_codes[i]
            meta[target] = added_meta[i]
            target += 1


@functools.cache
def _kernels() -> dict[str, Callable[..., Any]]:
    """The kernels compiled by numba (cached on disk), on the first large search: a bank small
    enough for a flat FAISS scan never loads numba (tests/test_startup.py)."""
    import numba

    helper = numba.njit(cache=True, nogil=True, inline="always")
    globals().update(_popcount=helper(_popcount), _slot_at=helper(_slot_at))
    jit = numba.njit(cache=True, nogil=True)
    return {"scan": jit(_scan), "locate": jit(_locate), "compact": jit(_compact),
            "spread": jit(_spread_lists)}


def _meta(points: np.ndarray, slot: int) -> np.ndarray:
    """The uint32 beside each descriptor: x, y and the slot's low bits."""
    xy = np.round(points).astype(np.int64)
    if len(xy) and (xy.min() < 0 or xy.max() >= 1 << POINT_BITS):
        raise ValueError("keypoint outside the 1,024-pixel square local features are kept in")
    return (xy[:, 0] | (xy[:, 1] << POINT_BITS)
            | ((slot & (SLOT_RUN - 1)) << (2 * POINT_BITS))).astype(np.uint32)


def _points(meta: np.ndarray) -> np.ndarray:
    mask = np.uint32((1 << POINT_BITS) - 1)
    return np.stack([meta & mask, (meta >> np.uint32(POINT_BITS)) & mask], axis=1).astype(
        np.float32)


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    """`array` with room for `rows` rows, grown in place where the allocator can (a loaded
    array, which does not own its memory, is copied once)."""
    if array.flags.owndata and array.base is None:
        array.resize((rows, *array.shape[1:]), refcheck=False)
        return array
    grown = np.zeros((rows, *array.shape[1:]), array.dtype)
    kept = min(rows, len(array))
    grown[:kept] = array[:kept]
    return grown


class LocalIndex:
    """The registered pictures' local features, keyed by bank row id.

    Pictures are numbered by slot in the order they were added (a slot is never reused), and
    their descriptors are kept once, in the inverted file's order (see POINT_BITS above): the
    search scans them there and verification gathers a candidate's from its lists. Pictures
    added since the last search wait in `_pending` and are folded in at the next one.
    """

    def __init__(self) -> None:
        self._slot_of: dict[int, int] = {}
        self._rows = np.zeros(0, np.int64)  # per slot: its bank row, -1 once withdrawn
        self._sizes = np.zeros((0, 2), np.uint16)  # per slot: the described picture's size
        self._counts = np.zeros(0, np.int32)  # per slot: its descriptors
        self._pending: dict[int, LocalFeatures] = {}
        self._codes = np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
        self._meta = np.zeros(0, np.uint32)
        self._starts = np.zeros(2, np.int64)  # one list until the inverted file is trained
        self._runs = np.zeros((1, 1), np.int64)  # per list and run of slots: descriptors
        self._high = np.zeros((1, 2), np.int64)
        self._centroids = np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
        self._trained_for = 0
        self._quantizer: faiss.IndexBinaryFlat | None = None
        self._flat: faiss.IndexBinaryFlat | None = None  # a flat scan's copy, while small

    def __len__(self) -> int:
        return len(self._slot_of)

    @property
    def descriptors(self) -> int:
        return len(self._meta) + int(sum(len(p) for p in self._pending.values()))

    @property
    def lists(self) -> int:
        """The inverted file's lists (1: a flat scan)."""
        return len(self._starts) - 1

    def add(self, ids: np.ndarray, codes: list[bytes]) -> None:
        """Make the pictures `codes` (registration blobs) searchable under bank row `ids`."""
        rows, sizes, counts = [], [], []
        for row_id, code in zip(np.asarray(ids, dtype=np.int64).tolist(), codes, strict=True):
            picture = LocalFeatures.unpack(code)
            if row_id in self._slot_of or not len(picture):
                continue
            _meta(picture.points, 0)  # refuse a picture that cannot be kept, before a slot
            slot = len(self._rows) + len(rows)
            self._slot_of[row_id] = slot
            self._pending[slot] = picture
            rows.append(row_id)
            sizes.append(picture.size)
            counts.append(len(picture))
        if rows:
            self._rows = np.concatenate([self._rows, np.array(rows, np.int64)])
            self._sizes = np.vstack([self._sizes, np.array(sizes, np.uint16)])
            self._counts = np.concatenate([self._counts, np.array(counts, np.int32)])

    def remove(self, ids: np.ndarray) -> int:
        """Take bank rows `ids` out of search and out of memory at once; returns how many
        were indexed."""
        slots = [self._slot_of.pop(row_id) for row_id in np.asarray(ids, np.int64).tolist()
                 if row_id in self._slot_of]
        stored = [s for s in slots if self._pending.pop(s, None) is None]
        for slot in slots:
            self._rows[slot] = -1
        found = [self._positions(s) for s in stored]
        if sum(len(f) for f in found):
            self._drop(np.concatenate(found), np.concatenate(
                [np.full(len(f), s >> SLOT_LOW_BITS) for s, f in zip(stored, found, strict=True)]))
        return len(slots)

    def _drop(self, positions: np.ndarray, runs: np.ndarray) -> None:
        """Compact the other descriptors in place over those at `positions` (of slots in
        `runs`), zero what is left behind, and fix the tables."""
        lists = np.searchsorted(self._starts, positions, side="right") - 1
        np.subtract.at(self._runs, (lists, runs), 1)
        keep = np.ones(len(self._meta), np.bool_)
        keep[positions] = False
        if self.lists > 1:
            kept = _kernels()["compact"](self._codes, self._meta, keep, len(keep))
        else:  # small: no numba for a flat index
            kept = int(keep.sum())
            self._codes[:kept] = self._codes[keep]
            self._meta[:kept] = self._meta[keep]
        self._codes[kept:] = 0
        self._meta[kept:] = 0
        self._codes = _grown(self._codes, kept)
        self._meta = _grown(self._meta, kept)
        removed = np.bincount(lists, minlength=self.lists)
        self._starts = np.concatenate([[0], np.cumsum(np.diff(self._starts) - removed)])
        self._tables_changed()

    def _tables_changed(self) -> None:
        self._high = np.zeros((self.lists, self._runs.shape[1] + 1), np.int64)
        self._high[:, 0] = self._starts[:-1]
        self._high[:, 1:] = self._starts[:-1, None] + np.cumsum(self._runs, axis=1)
        self._flat = None

    def _positions(self, slot: int) -> np.ndarray:
        """Where the descriptors of `slot` are, list by list."""
        run, low = slot >> SLOT_LOW_BITS, slot & (SLOT_RUN - 1)
        if run >= self._runs.shape[1]:
            return np.zeros(0, np.int64)
        if self.lists == 1:
            begin, end = self._high[0, run], self._high[0, run + 1]
            lows = self._meta[begin:end] >> np.uint32(2 * POINT_BITS)
            return np.arange(begin + np.searchsorted(lows, low),
                             begin + np.searchsorted(lows, low, side="right"))
        out = np.empty(int(self._counts[slot]), np.int64)
        found = _kernels()["locate"](self._high, self._meta, run, low, out)
        return out[:found]

    def _picture(self, slot: int) -> LocalFeatures:
        """The features of `slot` for verification (in list order: verify does not depend on
        the order of a picture's keypoints)."""
        if slot in self._pending:
            return self._pending[slot]
        where = self._positions(slot)
        width, height = self._sizes[slot].tolist()
        return LocalFeatures(_points(self._meta[where]), self._codes[where], (width, height))

    # --- folding pending pictures in ----------------------------------------------------

    def _ready(self) -> None:
        """Fold the pending pictures into the inverted file (training it when due), on one
        thread: a process that started FAISS's OpenMP threads deadlocks the children it forks
        when they search (scripts/bench_robustness.py saves the bank, then forks its workers)."""
        if not self._pending:
            return
        one_thread()
        self._fold()

    def _fold(self) -> None:
        total = len(self._meta) + sum(len(p) for p in self._pending.values())
        trained = self.lists > 1
        if total >= IVF_FROM and (not trained or total >= RETRAIN_GROWTH * self._trained_for):
            self._train(total)
            self._relayout()
        elif not trained:
            self._relayout()
        else:
            self._append()
        self._pending = {}
        self._tables_changed()

    def _serial(self, positions: np.ndarray) -> np.ndarray:
        """Descriptors by position in the order they were added (stored ones first: before the
        inverted file is trained they are stored in that order), pending ones after."""
        stored = len(self._meta)
        out = np.empty((len(positions), DESCRIPTOR_BYTES), np.uint8)
        inside = positions < stored
        out[inside] = self._codes[positions[inside]]
        if (~inside).any():
            pending = np.vstack([p.descriptors for p in self._pending.values()])
            out[~inside] = pending[positions[~inside] - stored]
        return out

    def _train(self, total: int) -> None:
        """Train the lists on a sample, as the index trained at every load before: the same
        list count, sample and seed, so the same lists."""
        lists = min(IVF_MAX_LISTS, int(IVF_LISTS_PER_SQRT * np.sqrt(total)),
                    total // IVF_TRAIN_PER_LIST)
        sample = np.random.default_rng(0).choice(total, min(total, lists * IVF_TRAIN_PER_LIST),
                                                 replace=False)
        quantizer = faiss.IndexBinaryFlat(BITS)
        ivf = faiss.IndexBinaryIVF(quantizer, BITS, lists)
        ivf.train(np.ascontiguousarray(self._serial(sample)))
        self._centroids = faiss.vector_to_array(quantizer.xb).reshape(lists, DESCRIPTOR_BYTES)
        self._trained_for = total
        self._quantizer = None

    def _quantized(self) -> faiss.IndexBinaryFlat:
        if self._quantizer is None:
            self._quantizer = faiss.IndexBinaryFlat(BITS)
            self._quantizer.add(np.ascontiguousarray(self._centroids))
        return self._quantizer

    def _assign(self, codes: np.ndarray) -> np.ndarray:
        """Each descriptor's list (the nearest centroid, as FAISS's inverted file adds it)."""
        if self._centroids.shape[0] == 0:
            return np.zeros(len(codes), np.int64)
        quantizer = self._quantized()
        return np.concatenate([quantizer.search(np.ascontiguousarray(codes[i:i + ASSIGN_CHUNK]),
                                                1)[1].ravel()
                               for i in range(0, len(codes), ASSIGN_CHUNK)] or
                              [np.zeros(0, np.int64)])

    def _pending_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pending pictures' descriptors, metas and slots, in slot order."""
        slots = sorted(self._pending)
        codes = np.vstack([self._pending[s].descriptors for s in slots])
        meta = np.concatenate([_meta(self._pending[s].points, s) for s in slots])
        owner = np.repeat(np.array(slots, np.int64), [len(self._pending[s]) for s in slots])
        return codes, meta, owner

    def _stored_slots(self) -> np.ndarray:
        """The slot of every stored descriptor (a rebuild's transient table)."""
        owner = np.empty(len(self._meta), np.int64)
        for lst in range(self.lists):
            for run in range(self._runs.shape[1]):
                begin, end = self._high[lst, run], self._high[lst, run + 1]
                owner[begin:end] = (run << SLOT_LOW_BITS) | (
                    self._meta[begin:end] >> np.uint32(2 * POINT_BITS))
        return owner

    def _relayout(self) -> None:
        """Lay every descriptor out again list by list (the first training, a retraining,
        or a flat index taking pictures in): stored ones and pending ones."""
        new_codes, new_meta, new_owner = self._pending_arrays()
        owner = np.concatenate([self._stored_slots(), new_owner])
        codes = np.concatenate([self._codes, new_codes])
        meta = np.concatenate([self._meta, new_meta])
        del new_codes, new_meta, new_owner
        lists = self._assign(codes)
        order = np.lexsort((owner, lists))
        self._codes, self._meta = codes[order], meta[order]
        del codes, meta
        self._set_tables(lists[order], owner[order])

    def _set_tables(self, lists: np.ndarray, owner: np.ndarray) -> None:
        count = max(1, self._centroids.shape[0])
        self._starts = np.concatenate([[0], np.cumsum(np.bincount(lists, minlength=count))])
        runs = max(1, (len(self._rows) + SLOT_RUN - 1) >> SLOT_LOW_BITS)
        self._runs = np.zeros((count, runs), np.int64)
        np.add.at(self._runs, (lists, owner >> SLOT_LOW_BITS), 1)

    def _append(self) -> None:
        """Add the pending pictures at the end of their lists, in place: their slots are newer
        than every stored one, so each list stays in slot order."""
        codes, meta, owner = self._pending_arrays()
        lists = self._assign(codes)
        order = np.argsort(lists, kind="stable")
        codes, meta, lists, owner = codes[order], meta[order], lists[order], owner[order]
        per_list = np.bincount(lists, minlength=self.lists)
        added_starts = np.concatenate([[0], np.cumsum(per_list)])
        shift = np.concatenate([[0], np.cumsum(per_list)[:-1]])
        old_starts = self._starts.copy()
        size = len(self._meta) + len(meta)
        self._codes = _grown(self._codes, size)
        self._meta = _grown(self._meta, size)
        _kernels()["spread"](self._codes, self._meta, old_starts, shift, codes, meta,
                             added_starts)
        self._starts = old_starts + np.concatenate([shift, [len(meta)]])
        runs = max(self._runs.shape[1], (len(self._rows) + SLOT_RUN - 1) >> SLOT_LOW_BITS)
        grown = np.zeros((self.lists, runs), np.int64)
        grown[:, :self._runs.shape[1]] = self._runs
        np.add.at(grown, (lists, owner >> SLOT_LOW_BITS), 1)
        self._runs = grown

    # --- search -------------------------------------------------------------------------

    def _neighbours(self, descriptors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distances, slots) of the NEIGHBOURS nearest stored descriptors of each query one."""
        if self.lists == 1:
            if self._flat is None:
                self._flat = faiss.IndexBinaryFlat(BITS)
                self._flat.add(np.ascontiguousarray(self._codes))
            distances, positions = self._flat.search(descriptors, NEIGHBOURS)
            slots = np.full(positions.shape, -1, np.int64)
            found = positions >= 0
            run = np.searchsorted(self._high[0], positions[found], side="right") - 1
            slots[found] = (run << SLOT_LOW_BITS) | (
                self._meta[positions[found]] >> np.uint32(2 * POINT_BITS))
            return distances, slots
        _, probes = self._quantized().search(descriptors, IVF_PROBES)
        distances = np.empty((len(descriptors), NEIGHBOURS), np.int32)
        slots = np.empty((len(descriptors), NEIGHBOURS), np.int64)
        _kernels()["scan"](descriptors.view("<u8"), probes, self._codes.view("<u8"),
                           self._meta, self._starts, self._high, NEIGHBOURS, distances, slots)
        return distances, slots

    def candidates(self, descriptors: np.ndarray) -> list[tuple[int, int]]:
        """(row id, votes) of the most voted pictures for these query descriptors."""
        if not self._slot_of or not len(descriptors):
            return []
        self._ready()
        one_thread()
        distances, slots = self._neighbours(np.ascontiguousarray(descriptors, np.uint8))
        close = (distances <= VOTE_DISTANCE) & (slots >= 0)
        query = np.repeat(np.arange(len(descriptors)), NEIGHBOURS).reshape(slots.shape)[close]
        owners = self._rows[slots[close]]
        pairs = np.unique(np.stack([query, owners], axis=1), axis=0)
        pairs = pairs[pairs[:, 1] >= 0]
        if not len(pairs):
            return []
        # A query descriptor close to several pictures' (a repeated texture, text) says less
        # about each: its vote is shared among them.
        _, first, shared = np.unique(pairs[:, 0], return_inverse=True, return_counts=True)
        rows, where = np.unique(pairs[:, 1], return_inverse=True)
        votes = np.bincount(where, weights=1.0 / shared[first], minlength=len(rows))
        order = np.argsort(-votes, kind="stable")[:CANDIDATES]
        return [(int(rows[i]), round(float(votes[i]))) for i in order if votes[i] >= MIN_VOTES]

    def picture(self, row_id: int) -> LocalFeatures:
        """The registered features of bank row `row_id` (KeyError when not indexed)."""
        return self._picture(self._slot_of[row_id])

    def search(self, query_rows: np.ndarray) -> list[LocalHit]:
        """The registered pictures confirmed in a query (rows from LocalSignal.query_rows), the
        best orientation of each. The peeled views are searched only when the picture as
        found confirmed nothing: they are for a picture its frame hid."""
        best: dict[int, LocalHit] = {}
        for group, (points, descriptors) in split_query(query_rows).items():
            if best and view_of(group) > 0:
                break
            size = query_size(query_rows, group)
            for row_id, _ in self.candidates(descriptors):
                if row_id in best:
                    continue
                found = verify(points, descriptors, self.picture(row_id), size)
                if found.confirmed:
                    best[row_id] = LocalHit(row_id, found.inliers, found.cells,
                                            found.distance, is_mirrored(group))
        return list(best.values())

    # --- saved copy ---------------------------------------------------------------------

    def save(self, path: Path, stamp: IndexStamp, cipher: BankCipher | None = None) -> None:
        """Write the layout as it is in memory (descriptors, lists, trained centroids) and the
        stamp, encrypted, atomically: loading it trains and assigns nothing."""
        private_folder(path.parent)
        self._ready()
        arrays = {
            "layout": np.array([LAYOUT, self._trained_for], np.int64),
            "rows": self._rows, "sizes": self._sizes, "counts": self._counts,
            "codes": self._codes, "meta": self._meta, "starts": self._starts,
            "runs": self._runs, "centroids": self._centroids,
            "stamp": np.array([stamp.max_id, stamp.count], dtype=np.int64),
        }
        save_arrays(path, arrays, cipher)

    @classmethod
    def load(cls, path: Path, bits: int = BITS, cipher: BankCipher | None = None,
             ) -> tuple[LocalIndex, IndexStamp] | None:
        """The saved index and its stamp, or None when missing, unreadable, unsealed or saved
        in another layout (the bank then rebuilds it)."""
        try:
            arrays = load_arrays(path, cipher)
            if arrays is None or int(arrays["layout"][0]) != LAYOUT:
                return None
            index = cls()
            index._trained_for = int(arrays["layout"][1])
            index._rows = arrays["rows"].astype(np.int64)
            index._sizes = arrays["sizes"].reshape(-1, 2).astype(np.uint16)
            index._counts = arrays["counts"].astype(np.int32)
            index._codes, index._meta = arrays["codes"], arrays["meta"]
            index._starts = arrays["starts"].astype(np.int64)
            index._runs = arrays["runs"].astype(np.int64)
            index._centroids = arrays["centroids"]
            index._slot_of = {int(row): slot for slot, row in enumerate(index._rows.tolist())
                              if row >= 0}
            stamp = IndexStamp(*(int(v) for v in arrays["stamp"]))
        except (OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile):
            return None
        lists = len(index._starts) - 1
        consistent = (
            index._codes.ndim == index._centroids.ndim == 2
            and index._codes.shape[1] == index._centroids.shape[1] == DESCRIPTOR_BYTES
            and len(index._rows) == len(index._sizes) == len(index._counts)
            and len(index._codes) == len(index._meta) == index._starts[-1]
            and index._runs.shape[0] == lists
            and index._centroids.shape[0] == (lists if lists > 1 else 0)
            and int(index._runs.sum()) == len(index._meta)
            and int(index._counts[index._rows >= 0].sum()) == len(index._meta))
        if not consistent or len(index) != stamp.count:
            return None
        index._tables_changed()
        return index, stamp
