"""The FAISS binary index of one algorithm's victim hashes: exact range search by Hamming distance.

The bank's database is the source of truth; this index is a derived, disposable copy that makes
search fast. Its ids are the bank's row ids, so adds are incremental and a withdrawn victim's
rows are removed at once. It is saved atomically (write, fsync, rename) and, when the saved copy
is missing, unreadable or out of step with the bank, rebuilt from the bank instead of trusted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np


@dataclass(frozen=True)
class IndexStamp:
    """What the saved index was built from: compared with the bank before it is trusted."""

    max_id: int
    count: int


@dataclass(frozen=True)
class Hits:
    """Range-search results in FAISS's CSR layout: query i's hits are ids[lims[i]:lims[i+1]]."""

    lims: np.ndarray
    distances: np.ndarray
    ids: np.ndarray

    def for_query(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.lims[i], self.lims[i + 1]
        return self.ids[start:end], self.distances[start:end]


class BinaryHashIndex:
    """Exact Hamming range search over fixed-width binary hashes, keyed by bank row id."""

    def __init__(self, bits: int, index: faiss.IndexBinary | None = None) -> None:
        self.bits = bits
        self._index = index if index is not None else faiss.IndexBinaryIDMap2(
            faiss.IndexBinaryFlat(bits)
        )

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(
                np.ascontiguousarray(codes, dtype=np.uint8), np.asarray(ids, dtype=np.int64)
            )

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, codes: np.ndarray, max_distance: int) -> Hits:
        """Every indexed hash within `max_distance` (inclusive) of each query code."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, self.bits // 8)
        if len(self) == 0 or len(codes) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return Hits(np.zeros(len(codes) + 1, dtype=np.int64), empty.astype(np.int32), empty)
        # FAISS's radius is exclusive: distance < radius.
        lims, distances, ids = self._index.range_search(codes, max_distance + 1)
        return Hits(lims.astype(np.int64), distances.astype(np.int32), ids.astype(np.int64))

    def save(self, path: Path, stamp: IndexStamp) -> None:
        """Write index and stamp so that a crash leaves either the old or the new copy, whole."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index_binary(self._index)
        _atomic_write(path, data.tobytes())
        _atomic_write(path.with_suffix(".stamp.json"), json.dumps(stamp.__dict__).encode())

    @classmethod
    def load(cls, path: Path, bits: int) -> tuple[BinaryHashIndex, IndexStamp] | None:
        """The saved index and its stamp, or None when there is none or it cannot be read."""
        stamp_path = path.with_suffix(".stamp.json")
        try:
            stamp = IndexStamp(**json.loads(stamp_path.read_text()))
            raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
            index = faiss.deserialize_index_binary(raw)
        except (OSError, ValueError, TypeError, RuntimeError):
            return None
        if index.d != bits or index.ntotal != stamp.count:
            return None
        return cls(bits, index), stamp


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
