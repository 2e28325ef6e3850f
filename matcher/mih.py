"""Multi-index hashing: exact Hamming range search in tens of microseconds at millions of hashes.

A hash is cut into 16-bit chunks. Two hashes within distance r of each other differ in at most
one bit in at least one chunk whenever r < 2 x chunks (the pigeonhole principle), so looking up
each query chunk and its 16 one-bit neighbours in per-chunk tables yields every true match;
each candidate is then verified on the full hash. Nothing is approximate. For a 256-bit PDQ
hash that covers distances up to 31, exactly PDQ's threshold.

Each table entry carries a copy of the hash's first 96 bits next to its position. A candidate
whose distance on those bits alone is over the radius cannot match, and for an unrelated hash
that distance is about 48, so nearly every candidate is rejected from the bucket it was found
in, read in order, without touching the full hash elsewhere in memory. That is what makes this
faster than FAISS's exact indexes, which scan every hash (IndexBinaryFlat: about 360 queries/s
at 1M on one core here) or verify each candidate at random in memory (IndexBinaryMultiHash:
about 450).

The search kernel is compiled by numba (loaded from numba's cache after the first run) on the
first search, not at import: numba takes most of a second to load, which a bank whose hashes
all still sit in the fresh FAISS tier (matcher/index.py) never needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

CHUNK_BITS = 16
NEIGHBOURS = CHUNK_BITS + 1  # the chunk itself and its 16 one-bit neighbours

# 32-bit words of each hash copied into every table entry: 96 bits reject an unrelated
# candidate with near certainty (distance about 48 of 96 against a radius of 31) for 12 bytes
# per entry; a 64-bit hash is copied whole and needs no second look.
PREFIX_WORDS = 3


def max_exact_radius(bits: int) -> int:
    """The largest distance this search finds exhaustively for `bits`-bit hashes."""
    return 2 * (bits // CHUNK_BITS) - 1


# _popcount, _chunk and _search are plain Python until _search_kernel() compiles them.
def _popcount(x: np.uint64) -> np.uint64:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


def _chunk(words: np.ndarray, chunk: int) -> np.uint64:
    return (words[chunk // 4] >> np.uint64((chunk % 4) * 16)) & np.uint64(0xFFFF)


def _search(queries, query_prefixes, codes, alive, positions, prefixes, offsets, radius,
            out_query, out_pos, out_distance):
    """Fill the out arrays with (query, position, distance) hits; return how many there are.

    When there are more hits than room, the count is still exact so the caller can retry.
    """
    found = 0
    chunks = offsets.shape[0]
    words = queries.shape[1]
    prefix_words = prefixes.shape[2]
    for qi in range(queries.shape[0]):
        query = queries[qi]
        query_prefix = query_prefixes[qi]
        for chunk in range(chunks):
            key = _chunk(query, chunk)
            for flip in range(NEIGHBOURS):
                probe = key if flip == 0 else key ^ np.uint64(1 << (flip - 1))
                for slot in range(offsets[chunk, probe], offsets[chunk, probe + 1]):
                    near = 0
                    for w in range(prefix_words):
                        near += _popcount(np.uint64(query_prefix[w] ^ prefixes[chunk, slot, w]))
                    if near > radius:
                        continue
                    pos = positions[chunk, slot]
                    if not alive[pos]:
                        continue
                    distance = 0
                    for w in range(words):
                        distance += _popcount(query[w] ^ codes[pos, w])
                    if distance > radius:
                        continue
                    # Report each hit once: from the first chunk within one bit of the query.
                    duplicate = False
                    for earlier in range(chunk):
                        if _popcount(_chunk(query, earlier) ^ _chunk(codes[pos], earlier)) <= 1:
                            duplicate = True
                            break
                    if duplicate:
                        continue
                    if found < out_query.shape[0]:
                        out_query[found] = qi
                        out_pos[found] = pos
                        out_distance[found] = distance
                    found += 1
    return found


@functools.cache
def _search_kernel() -> Callable[..., int]:
    """_search compiled, with the helpers it calls compiled in its place in this module
    (numba resolves them there, as it would decorated ones)."""
    import numba

    helper = numba.njit(cache=True, nogil=True, inline="always")
    globals().update(_popcount=helper(_popcount), _chunk=helper(_chunk))
    return numba.njit(cache=True, nogil=True)(_search)


def _prefix(codes: np.ndarray) -> np.ndarray:
    words = min(PREFIX_WORDS, codes.shape[1] // 4)
    return np.ascontiguousarray(codes).view("<u4")[:, :words]


class MultiIndexTables:
    """Per-chunk lookup tables over a fixed set of codes, built once, searched many times."""

    def __init__(self, positions: np.ndarray, prefixes: np.ndarray, offsets: np.ndarray) -> None:
        self.positions = positions  # (chunks, n) int32: code positions sorted by chunk value
        self.prefixes = prefixes  # (chunks, n, words) uint32: each code's prefix, same order
        self.offsets = offsets  # (chunks, 65537) int64: start of each chunk value

    @classmethod
    def build(cls, codes: np.ndarray) -> MultiIndexTables:
        """Tables for `codes`, an (n, bytes) uint8 array."""
        keys = np.ascontiguousarray(codes).view("<u2")
        n, chunks = keys.shape
        prefix = _prefix(codes)
        positions = np.empty((chunks, n), dtype=np.int32)
        prefixes = np.empty((chunks, n, prefix.shape[1]), dtype=np.uint32)
        offsets = np.zeros((chunks, (1 << CHUNK_BITS) + 1), dtype=np.int64)
        for chunk in range(chunks):
            column = keys[:, chunk]
            order = np.argsort(column, kind="stable")
            positions[chunk] = order
            prefixes[chunk] = prefix[order]
            np.cumsum(np.bincount(column, minlength=1 << CHUNK_BITS), out=offsets[chunk, 1:])
        return cls(positions, prefixes, offsets)

    @property
    def size(self) -> int:
        return int(self.positions.shape[1])

    def search(self, queries: np.ndarray, codes: np.ndarray, alive: np.ndarray, radius: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query row, code position, distance) of every live code within `radius` of a query."""
        q64 = np.ascontiguousarray(queries).view(np.uint64)
        c64 = np.ascontiguousarray(codes).view(np.uint64)
        query_prefixes = np.ascontiguousarray(_prefix(queries))
        room = max(64, 4 * len(q64))
        while True:
            out = (np.empty(room, np.int64), np.empty(room, np.int64), np.empty(room, np.int32))
            found = _search_kernel()(q64, query_prefixes, c64, alive, self.positions,
                                     self.prefixes, self.offsets, radius, *out)
            if found <= room:
                return out[0][:found], out[1][:found], out[2][:found]
            room = found
