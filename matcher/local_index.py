"""The local-feature index: every registered picture's ORB descriptors, voting and verifying.

Search is two steps, as in copy-detection systems. First every query descriptor looks up its
nearest registered descriptors in one FAISS binary index over the whole bank (flat while small,
an inverted file once large); each registered picture gets one vote per query descriptor that
found one of its own within VOTE_DISTANCE. Then the few pictures with the most votes are
verified: query and picture descriptors are matched again one-to-one (Lowe's ratio test) and a
similarity transform (rotation, uniform scale, shift) is fitted with RANSAC. A copy is
confirmed when enough matches agree on it (MIN_INLIERS) and they cover the picture, not one
corner of it (MIN_CELLS): another region of the same photo, or a picture sharing one logo, fails.

Like matcher/index.py this is a derived, disposable copy of the bank's rows (its ids are row
ids), saved encrypted under the bank's key, mode 600, and rebuilt when stale or unreadable.
Withdrawn rows leave it at once.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import faiss
import numpy as np

from engines.bankkey import BankCipher
from engines.home import private_folder
from matcher.index import IndexStamp, load_arrays, save_arrays
from matcher.signals.local import DESCRIPTOR_BYTES, MIRRORED, LocalFeatures, split_query

BITS = DESCRIPTOR_BYTES * 8
# Nearest registered descriptors looked up per query descriptor.
NEIGHBOURS = 4
# A neighbour this close (of 256 bits) is a vote. The verified inliers of true copies in
# scripts/bench_robustness.py have a median distance of 15-30 bits; at 64 every picture of a
# repeated texture collected hundreds of votes, at 40 the verifications per query fell from 7.1
# to 5.4 at the same recall.
VOTE_DISTANCE = 40
# Pictures verified per query orientation, the most voted first: the true picture was among
# the first 3 in 95% of the verified copies (first 8: 100%), and each verification costs
# 1-3 ms. Fewer votes than MIN_VOTES: not verified (99.5% of true copies had more).
CANDIDATES = 3
MIN_VOTES = 20

# Lowe's ratio test for the one-to-one matches of a candidate: the best registered descriptor
# must be clearly closer than the second best.
RATIO = 0.8
# RANSAC: a match agrees with the fitted transform when it lands within this many pixels
# (pictures are described at 512 px).
REPROJECTION_PX = 6.0
RANSAC_ITERATIONS = 2000
# The copy's scale relative to the registered picture (both at 512 px) that is plausible: a picture
# inside a screenshot at a fifth of the frame, up to an upscaled crop.
MIN_SCALE, MAX_SCALE = 0.15, 6.0

# The decision, tuned on scripts/bench_robustness.py alone (the first 26 wallpapers, every
# edit, every candidate verified): among 33,908 verified candidates of another picture the most
# inliers were 27 (another region of the same tiled wallpaper, licorice and truchet: a tiling
# repeats exactly under a shift), so 30 leaves a margin; at 30 and 6 squares no wrong candidate
# passed and 1,394 of the 1,659 copies that 15 and 4 would take did (20 and 5: 27 wrong).
MIN_INLIERS = 30
# The registered picture is cut into a GRID x GRID board; the inliers must fall in at least
# MIN_CELLS of its squares, so a shared corner or logo cannot confirm a whole picture.
GRID = 4
MIN_CELLS = 6

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
# FAISS's OpenMP threads spin on a busy machine: on two shared cores a search of 2,000 query
# descriptors took 2.7 s with two threads and 0.23 s with one. Matching already runs one
# process per core, so the local stage searches with one thread.
SEARCH_THREADS = 1


@dataclass(frozen=True)
class LocalHit:
    """A registered picture confirmed in the query: its row, the verified inliers, how many
    squares they cover, the median descriptor distance of the inliers, and the orientation."""

    row_id: int
    inliers: int
    cells: int
    distance: int
    mirrored: bool


def verify(points: np.ndarray, descriptors: np.ndarray, picture: LocalFeatures,
           ) -> tuple[int, int, int]:
    """(inliers, cells covered, median inlier distance) of the query against one picture."""
    if len(descriptors) < 2 or len(picture) < 2:
        return 0, 0, 0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(descriptors, picture.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < max(MIN_INLIERS, 3):
        return len(good), 0, 0
    query = np.float32([points[m.queryIdx] for m in good])
    registered = np.float32([picture.points[m.trainIdx] for m in good])
    transform, mask = cv2.estimateAffinePartial2D(
        registered, query, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX,
        maxIters=RANSAC_ITERATIONS, confidence=0.995)
    if transform is None or mask is None or not np.isfinite(transform).all():
        return 0, 0, 0
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    if not MIN_SCALE <= scale <= MAX_SCALE:
        return 0, 0, 0
    inlier = mask.ravel().astype(bool)
    width, height = picture.size
    kept = registered[inlier]
    cells = {(min(GRID - 1, int(x * GRID / max(width, 1))),
              min(GRID - 1, int(y * GRID / max(height, 1)))) for x, y in kept}
    distances = [m.distance for m, keep in zip(good, inlier, strict=True) if keep]
    return int(inlier.sum()), len(cells), int(np.median(distances)) if distances else 0


def confirmed(inliers: int, cells: int) -> bool:
    """The decision: enough verified matches, spread over enough of the picture."""
    return inliers >= MIN_INLIERS and cells >= MIN_CELLS


class LocalIndex:
    """The registered pictures' local features, keyed by bank row id."""

    def __init__(self) -> None:
        self._pictures: dict[int, LocalFeatures] = {}
        # One entry per descriptor ever added (its serial number is its FAISS id): the row it
        # belongs to, -1 once withdrawn.
        self._owner = np.zeros(0, dtype=np.int64)
        self._serials: dict[int, np.ndarray] = {}
        self._descriptors: list[np.ndarray] = []
        self._faiss: faiss.IndexBinary | None = None
        self._quantizer: faiss.IndexBinary | None = None  # kept alive beside an IVF
        self._stale = True

    def __len__(self) -> int:
        return len(self._pictures)

    @property
    def descriptors(self) -> int:
        return int(sum(len(p) for p in self._pictures.values()))

    def add(self, ids: np.ndarray, codes: list[bytes]) -> None:
        """Make the pictures `codes` (registration blobs) searchable under bank row `ids`."""
        owners = []
        fresh = []
        start = len(self._owner)
        for row_id, code in zip(np.asarray(ids, dtype=np.int64).tolist(), codes, strict=True):
            picture = LocalFeatures.unpack(code)
            if row_id in self._pictures or not len(picture):
                continue
            self._pictures[row_id] = picture
            self._serials[row_id] = np.arange(start, start + len(picture), dtype=np.int64)
            start += len(picture)
            owners.append(np.full(len(picture), row_id, dtype=np.int64))
            fresh.append(picture.descriptors)
        if not fresh:
            return
        self._owner = np.concatenate([self._owner, *owners])
        self._descriptors.extend(fresh)
        added = np.ascontiguousarray(np.vstack(fresh))
        if self._faiss is not None and not self._stale:
            serials = np.arange(len(self._owner) - len(added), len(self._owner), dtype=np.int64)
            self._faiss.add_with_ids(added, serials)

    def remove(self, ids: np.ndarray) -> int:
        """Take bank rows `ids` out of search at once; returns how many were indexed."""
        removed = 0
        gone = []
        for row_id in np.asarray(ids, dtype=np.int64).tolist():
            if self._pictures.pop(row_id, None) is not None:
                removed += 1
                serials = self._serials.pop(row_id)
                self._owner[serials] = -1
                gone.append(serials)
        if gone and self._faiss is not None and not self._stale:
            self._faiss.remove_ids(np.concatenate(gone))
        if gone:
            self._compact()
        return removed

    def _compact(self) -> None:
        """Drop withdrawn descriptors from memory too (not only from search)."""
        alive = self._owner >= 0
        if not len(self._descriptors):
            return
        everything = np.vstack(self._descriptors)[alive]
        self._descriptors = [everything] if len(everything) else []
        self._owner = self._owner[alive]
        remap = np.full(len(alive), -1, dtype=np.int64)
        remap[alive] = np.arange(int(alive.sum()))
        self._serials = {row: remap[s] for row, s in self._serials.items()}
        self._stale = True

    def _search_index(self) -> faiss.IndexBinary:
        if self._faiss is None or self._stale:
            everything = (np.ascontiguousarray(np.vstack(self._descriptors))
                          if self._descriptors else np.zeros((0, DESCRIPTOR_BYTES), np.uint8))
            serials = np.arange(len(everything), dtype=np.int64)
            if len(everything) >= IVF_FROM:
                lists = min(IVF_MAX_LISTS, int(IVF_LISTS_PER_SQRT * np.sqrt(len(everything))),
                            len(everything) // IVF_TRAIN_PER_LIST)
                self._quantizer = faiss.IndexBinaryFlat(BITS)
                index = faiss.IndexBinaryIVF(self._quantizer, BITS, lists)
                sample = everything[np.random.default_rng(0).choice(
                    len(everything), min(len(everything), lists * IVF_TRAIN_PER_LIST),
                    replace=False)]
                index.train(np.ascontiguousarray(sample))
                index.nprobe = IVF_PROBES
                index.add_with_ids(everything, serials)
            else:
                index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(BITS))
                if len(everything):
                    index.add_with_ids(everything, serials)
            self._faiss, self._stale = index, False
        return self._faiss

    def candidates(self, descriptors: np.ndarray) -> list[tuple[int, int]]:
        """(row id, votes) of the most voted pictures for these query descriptors."""
        if not self._pictures or not len(descriptors):
            return []
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(SEARCH_THREADS)
        try:
            distances, serials = self._search_index().search(
                np.ascontiguousarray(descriptors, np.uint8), NEIGHBOURS)
        finally:
            faiss.omp_set_num_threads(threads)
        close = (distances <= VOTE_DISTANCE) & (serials >= 0)
        query = np.repeat(np.arange(len(descriptors)), NEIGHBOURS).reshape(serials.shape)[close]
        owners = self._owner[serials[close]]
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

    def search(self, query_rows: np.ndarray) -> list[LocalHit]:
        """The registered pictures confirmed in a query (rows from LocalSignal.query_rows), the
        best orientation of each."""
        best: dict[int, LocalHit] = {}
        for orientation, (points, descriptors) in split_query(query_rows).items():
            for row_id, _ in self.candidates(descriptors):
                if row_id in best:
                    continue
                inliers, cells, distance = verify(points, descriptors, self._pictures[row_id])
                if confirmed(inliers, cells):
                    best[row_id] = LocalHit(row_id, inliers, cells, distance,
                                            orientation == MIRRORED)
        return list(best.values())

    def save(self, path: Path, stamp: IndexStamp, cipher: BankCipher | None = None) -> None:
        """Write the pictures' features and the stamp, encrypted, atomically."""
        private_folder(path.parent)
        ids = np.fromiter(self._pictures, dtype=np.int64, count=len(self._pictures))
        codes = [self._pictures[int(i)].pack() for i in ids]
        lengths = np.array([len(c) for c in codes], dtype=np.int64)
        arrays = {
            "ids": ids,
            "lengths": lengths,
            "codes": np.frombuffer(b"".join(codes), np.uint8),
            "stamp": np.array([stamp.max_id, stamp.count], dtype=np.int64),
        }
        save_arrays(path, arrays, cipher)

    @classmethod
    def load(cls, path: Path, bits: int = BITS, cipher: BankCipher | None = None,
             ) -> tuple[LocalIndex, IndexStamp] | None:
        """The saved index and its stamp, or None when missing, unreadable or unsealed."""
        try:
            arrays = load_arrays(path, cipher)
            if arrays is None:
                return None
            blob = arrays["codes"].tobytes()
            ends = np.cumsum(arrays["lengths"]).tolist()
            starts = [0, *ends[:-1]]
            index = cls()
            index.add(arrays["ids"], [blob[s:e] for s, e in zip(starts, ends, strict=True)])
            stamp = IndexStamp(*(int(v) for v in arrays["stamp"]))
        except (OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile):
            return None
        if len(index) != stamp.count:
            return None
        return index, stamp
