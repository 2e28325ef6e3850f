"""The seen index: what is kept of every file ever crawled, to search when a victim registers.

When a new victim registers, the files crawled before are searched at once, without crawling
the web again (Project Arachnid's lesson: much of what a victim needs removed is already known).
A re-scan must find whatever the live match would have found, so each stored file (or video
frame) keeps what both stages of the live match look at (matcher/hasher.py SeenForm): the PDQ
and pHash hashes of every query view, upright, and the visual words of its local features
(matcher/seen_words.py). The victim's side is searched in all eight orientations, so mirrored
and rotated copies are found. The index only proposes candidates: each is confirmed by
matching the stored copy in full before any event is raised.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import IntegrityError

from engines.db import UtcDateTime, open_engine, upgrade
from matcher import seen_words
from matcher.hasher import SEEN_SIGNAL, FrameHashes
from matcher.index import BinaryHashIndex
from matcher.signals import get_signal

metadata = MetaData()

seen_hashes = Table(
    "seen_hashes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False),
    # Presentation second of a video frame; -1 for a still image.
    Column("second", Float, nullable=False),
    # The PDQ hash of every query view, upright, one after the other, the picture as found
    # first; a row written before revision 0008 holds that one alone. Empty when no view has
    # a PDQ hash of good enough quality (the file may still have pHash codes or words).
    Column("code", LargeBinary, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    # The same for pHash (NULL before revision 0008).
    Column("phash", LargeBinary),
    # Visual words of the local features (matcher/seen_words.py; NULL before revision 0008).
    Column("words", LargeBinary),
    UniqueConstraint("sha256", "second", name="uq_seen_hashes_file_frame"),
)

STILL = -1.0
# The global signals whose view hashes are kept, by column.
GLOBAL_COLUMNS = {SEEN_SIGNAL: "code", "phash": "phash"}

# Files proposed by the visual words per re-scan, the highest scores first. Each costs one
# read from the object store and one full match (tens of milliseconds); a copy only the local
# stage can find must rank among them. Set from the trials in matcher/seen_words.py: among
# 568 files the copies the local stage confirms ranked first in 43%, within 20 in 72%.
WORD_CANDIDATES = 20
# A file sharing fewer (idf-weighted) words than this is never proposed: about 5 rare words.
MIN_WORD_SCORE = 20.0
# New rows' words are searched by a scan until this many are waiting, then merged into the
# sorted posting lists (a sort of every posting: seconds at 10M files, so rarely).
FRESH_POSTINGS = 2_000_000


@dataclass
class WordIndex:
    """Posting lists from visual word to the seen rows holding it (an inverted file)."""

    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # position -> id
    # The main tier: postings (positions, int32) sorted by word, each word's in row order
    # (the scan in _score relies on it), and where each word starts.
    postings: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    starts: np.ndarray = field(
        default_factory=lambda: np.zeros(2 ** seen_words.WORD_BITS + 1, np.int64))
    # The fresh tier: unsorted (word, position) pairs not yet merged.
    fresh_words: list[np.ndarray] = field(default_factory=list)
    fresh_positions: list[np.ndarray] = field(default_factory=list)
    # Scores of one search, by position: all zeros between searches (see search).
    _scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, ids: list[int], words: list[np.ndarray]) -> None:
        first = len(self.rows)
        self.rows = np.concatenate([self.rows, np.asarray(ids, np.int64)])
        self.fresh_words.extend(words)
        self.fresh_positions.extend(np.full(len(w), first + i, np.int32)
                                    for i, w in enumerate(words))
        if sum(len(w) for w in self.fresh_words) >= FRESH_POSTINGS:
            self._merge()

    def _merge(self) -> None:
        counts = np.diff(self.starts)
        words = np.concatenate([np.repeat(np.arange(len(counts), dtype=np.uint16), counts),
                                *self.fresh_words])
        positions = np.concatenate([self.postings, *self.fresh_positions])
        order = np.argsort(words, kind="stable")
        self.postings = positions[order]
        self.starts = np.zeros(len(counts) + 1, np.int64)
        self.starts[1:] = np.cumsum(np.bincount(words, minlength=len(counts)))
        self.fresh_words, self.fresh_positions = [], []

    def search(self, words: np.ndarray, limit: int, min_score: float) -> list[int]:
        """Row ids of the `limit` rows sharing the most of `words`, each word weighted by its
        inverse document frequency (a word most pictures hold, flat grain or text, says little)."""
        if not len(self.rows) or not len(words) or limit <= 0:
            return []
        words = np.unique(np.asarray(words, np.uint16)).astype(np.int64)
        fresh_words = (np.concatenate(self.fresh_words) if self.fresh_words
                       else np.zeros(0, np.uint16))
        fresh_positions = (np.concatenate(self.fresh_positions) if self.fresh_positions
                           else np.zeros(0, np.int32))
        lengths = self.starts[words + 1] - self.starts[words]
        frequency = lengths + np.bincount(fresh_words.astype(np.int64),
                                          minlength=len(self.starts) - 1)[words]
        weight_of = np.zeros(len(self.starts) - 1, np.float32)
        weight_of[words] = np.log(len(self.rows) / np.maximum(frequency, 1))
        fresh_weights = weight_of[fresh_words]
        # In row order already: add() appends each batch's positions after every earlier one.
        held = fresh_weights > 0
        if len(self._scores) < len(self.rows):
            self._scores = np.zeros(len(self.rows), np.float32)
        positions = np.empty(limit, np.int64)
        scores = np.empty(limit, np.float32)
        kept = _score_kernel()(self.postings, self.starts, words, weight_of,
                               np.ascontiguousarray(fresh_positions[held]),
                               np.ascontiguousarray(fresh_weights[held]), self._scores,
                               np.empty(SCORE_BLOCK, np.int64), limit, np.float32(min_score),
                               positions, scores)
        best = np.argsort(-scores[:kept], kind="stable")
        return [int(self.rows[positions[i]]) for i in best]


# Rows scored per pass of the scan: 256k float32 scores (1 MB) stay in the core's cache while
# every list's postings in that range are added.
SCORE_BLOCK = 1 << 18


def _score(postings, starts, words, weight_of, fresh_positions, fresh_weights, scores,
           touched, limit, min_score, top_positions, top_scores):
    """The `limit` best-scoring rows with at least `min_score` (into top_positions and
    top_scores; returns how many), each row's score the weights of the words it holds.

    Each posting list is in row order (rows are added in order and a merge keeps each list's
    order; so are the fresh postings, as added), so the lists are walked side by side one
    block of SCORE_BLOCK rows at a time: a block's adds fall in one cache-sized stretch of
    `scores`, and once every list has passed the block its rows' scores are final, so the
    best are kept and the block's scores set back to zero there and then. Adding one whole
    list after the other scattered the adds over all the rows (a cache miss each), and
    choosing the best among all of them cost more than the adds (at 10M files, 0.35 s)."""
    count = words.shape[0]
    cursor = np.empty(count, np.int64)
    end = np.empty(count, np.int64)
    for i in range(count):
        cursor[i] = starts[words[i]]
        end[i] = starts[words[i] + 1]
    kept = 0
    lowest = 0
    fresh = 0
    for high in range(SCORE_BLOCK, scores.shape[0] + SCORE_BLOCK, SCORE_BLOCK):
        found = 0
        for i in range(count):
            weight = weight_of[words[i]]
            j = cursor[i]
            if weight <= 0:
                continue
            while j < end[i] and postings[j] < high:
                position = postings[j]
                if scores[position] == 0:
                    touched[found] = position
                    found += 1
                scores[position] += weight
                j += 1
            cursor[i] = j
        while fresh < fresh_positions.shape[0] and fresh_positions[fresh] < high:
            position = fresh_positions[fresh]
            if scores[position] == 0:
                touched[found] = position
                found += 1
            scores[position] += fresh_weights[fresh]
            fresh += 1
        for t in range(found):
            position = touched[t]
            score = scores[position]
            scores[position] = 0
            if score < min_score:
                continue
            if kept < limit:
                top_positions[kept] = position
                top_scores[kept] = score
                kept += 1
            elif score > top_scores[lowest]:
                top_positions[lowest] = position
                top_scores[lowest] = score
            else:
                continue
            if kept == limit:
                lowest = 0
                for k in range(1, limit):
                    if top_scores[k] < top_scores[lowest]:
                        lowest = k
    return kept


@functools.cache
def _score_kernel() -> Callable[..., int]:
    """_score compiled by numba (cached on disk) on the first word search. A score in one
    pass over the posting lists, into a buffer kept between searches: the numpy form (every
    list concatenated, weights repeated, bincount over all rows) made about 500 MB of
    temporaries per search at 10M files, and its time swung from 0.3 to 2.5 s with the page
    faults (scripts/bench_rescan.py speed)."""
    import numba

    return numba.njit(cache=True, nogil=True)(_score)


class SeenIndex:
    """The seen rows, with in-memory indexes brought up to date before each search."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        upgrade(engine)
        self.indexes = {name: BinaryHashIndex(get_signal(name).bits) for name in GLOBAL_COLUMNS}
        self.words = WordIndex()
        self.up_to = 0

    @classmethod
    def open(cls, url: str | None = None) -> SeenIndex:
        return cls(open_engine(url))

    def record(self, sha256: str, frames: list[FrameHashes]) -> int:
        """Keep what a re-scan needs of each still or frame of a file; returns how many were
        new."""
        rows = []
        for frame in frames:
            seen = frame.hashes.seen
            if seen is None:  # hashes without their seen form: the one PDQ hash, as before
                codes = {SEEN_SIGNAL: frame.hashes.seen_code or b""}
                words = b""
            else:
                codes, words = seen.codes, seen.words
            row = {column: codes.get(name) or None for name, column in GLOBAL_COLUMNS.items()}
            if not any(row.values()) and not words:
                continue  # nothing of this still can be matched
            rows.append({**row, "code": row["code"] or b"", "words": words or None,
                         "sha256": sha256, "second": STILL if frame.second is None
                         else frame.second, "seen_at": dt.datetime.now(dt.UTC)})
        added = 0
        for row in rows:
            try:
                with self.engine.begin() as conn:
                    conn.execute(seen_hashes.insert(), [row])
                added += 1
            except IntegrityError:
                continue  # seen before: the file's hashes never change
        return added

    def refresh(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(seen_hashes.c.id, seen_hashes.c.code,
                                       seen_hashes.c.phash, seen_hashes.c.words)
                                .where(seen_hashes.c.id > self.up_to)
                                .order_by(seen_hashes.c.id)).all()
        if not rows:
            return
        for name, column in GLOBAL_COLUMNS.items():
            nbytes = self.indexes[name].nbytes
            blobs = [getattr(r, column) or b"" for r in rows]
            counts = np.fromiter((len(b) // nbytes for b in blobs), np.int64, len(rows))
            if counts.sum():
                ids = np.repeat(np.fromiter((r.id for r in rows), np.int64, len(rows)), counts)
                codes = np.frombuffer(b"".join(blobs), np.uint8).reshape(-1, nbytes)
                self.indexes[name].add(ids, codes)
        worded = [(r.id, seen_words.unpack(r.words)) for r in rows if r.words]
        if worded:
            self.words.add([i for i, _ in worded], [w for _, w in worded])
        self.up_to = int(rows[-1].id)

    def search(self, codes: np.ndarray, algorithm: str = SEEN_SIGNAL) -> dict[str, int]:
        """SHA-256 of every seen file with a view within the signal's threshold of `codes`:
        best distance."""
        self.refresh()
        index = self.indexes[algorithm]
        if len(index) == 0 or len(codes) == 0:
            return {}
        hits = index.search(codes, get_signal(algorithm).threshold)
        best: dict[int, int] = {}
        for seen_id, distance in zip(hits.ids.tolist(), hits.distances.tolist(), strict=True):
            best[seen_id] = min(distance, best.get(seen_id, distance))
        found: dict[str, int] = {}
        for row_id, sha256 in self._files(list(best)).items():
            found[sha256] = min(best[row_id], found.get(sha256, best[row_id]))
        return found

    def candidates(self, codes: dict[str, np.ndarray], words: np.ndarray) -> set[str]:
        """SHA-256 of every seen file a victim with these codes (global hashes, by algorithm)
        and visual words may be in: those with a view within a global threshold, and the
        files sharing the most words."""
        found = set()
        for algorithm, rows in codes.items():
            if algorithm in self.indexes:
                found.update(self.search(rows, algorithm))
        self.refresh()
        found.update(self._files(self.words.search(words, WORD_CANDIDATES,
                                                   MIN_WORD_SCORE)).values())
        return found

    def _files(self, row_ids: list[int]) -> dict[int, str]:
        if not row_ids:
            return {}
        with self.engine.connect() as conn:
            return {r.id: r.sha256 for r in conn.execute(select(
                seen_hashes.c.id, seen_hashes.c.sha256).where(seen_hashes.c.id.in_(row_ids)))}
