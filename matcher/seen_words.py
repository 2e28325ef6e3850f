"""Visual words: the seen index's compact form of a crawled picture's local features.

The local stage (matcher/signals/local.py) finds copies the global hashes cannot (a picture
inside a screenshot, tilted, under a caption band) by matching ORB descriptors. Keeping each
crawled file's 2,000 descriptors (74 KB) for re-scans is out of reach at 10M files, so the seen
index keeps WORDS_PER_FILE small ints per file: each a descriptor reduced to WORD_BITS of its
256 bits (bit sampling, the locality-sensitive hash of Hamming space: two descriptors 20 bits
apart share a word with probability (1 - 20/256)^16 = 0.27). A registering victim's
descriptors are reduced the same way and the files sharing the most of their words, weighted
by how rare each word is among the seen files, are the candidates; each is confirmed by
matching the stored copy in full, so a word only ever costs a fetch, never an event.

No vocabulary is trained: the sampled bits are fixed here, so words written by any release
stay comparable. Changing WORD_BITS or SAMPLED_BITS makes every stored word meaningless.
"""

from __future__ import annotations

import numpy as np

from matcher.signals.local import QUERY_ROW_BYTES, UPRIGHT

# 16 bits: a word is a uint16 (2 bytes), and 65,536 posting lists keep each list at about
# 40,000 files of 10M. In scripts/bench_rescan.py-style trials on 16 pictures x 23 edits
# (/tmp experiments, not a frozen split), 20 bits ranked a few more copies first but costs 3
# bytes a word; 12 bits ranked half as many first.
WORD_BITS = 16
# Which descriptor bits make the word: a fixed draw (numpy's PCG64 seeded 15, the issue number).
SAMPLED_BITS = np.sort(np.random.default_rng(15).permutation(256)[:WORD_BITS])
# Words kept per crawled file: a quarter of the upright query descriptors (1,000), taken evenly
# through ORB's output, which lists its pyramid levels in turn, so every scale is kept: 512
# bytes a file, 5 GB of words at 10M files.
WORDS_PER_FILE = 256
_WEIGHTS = (1 << np.arange(WORD_BITS, dtype=np.uint32)).astype(np.uint32)


def words_of(descriptors: np.ndarray) -> np.ndarray:
    """Each descriptor's word (uint16), as given (n x 32 uint8 in, n out)."""
    descriptors = np.ascontiguousarray(descriptors, np.uint8).reshape(-1, 32)
    bits = np.unpackbits(descriptors, axis=1)[:, SAMPLED_BITS].astype(np.uint32)
    return (bits @ _WEIGHTS).astype(np.uint16)


def file_words(query_rows: np.ndarray) -> bytes:
    """The words a seen file keeps, from its local query rows (LocalSignal.query_rows): the
    upright descriptors only (a registering victim's side is described mirrored too),
    deduplicated, as little-endian uint16."""
    rows = np.ascontiguousarray(query_rows, np.uint8).reshape(-1, QUERY_ROW_BYTES)
    upright = rows[rows[:, 4] == UPRIGHT][:, 5:]
    if not len(upright):
        return b""
    step = max(1, len(upright) // WORDS_PER_FILE)
    chosen = words_of(upright[::step][:WORDS_PER_FILE])
    return np.unique(chosen).astype("<u2").tobytes()


def unpack(blob: bytes | None) -> np.ndarray:
    """A seen row's words (uint16); none for a row of an earlier release."""
    return np.frombuffer(blob or b"", "<u2").astype(np.uint16)
