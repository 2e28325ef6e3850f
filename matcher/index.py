"""The binary index of one algorithm's victim hashes: exact range search by Hamming distance.

Two tiers, as in a log-structured store. Newly registered hashes go into a FAISS flat binary
index, searchable the moment they are added and scanned exactly; once it holds FRESH_LIMIT
hashes it is merged into the main tier, whose multi-index-hashing tables (matcher/mih.py) keep
search sublinear at millions of hashes. Withdrawn hashes leave both tiers at once.

The bank's database is the source of truth; this index is a derived, disposable copy. Its ids
are the bank's row ids. It is saved atomically (write, fsync, rename) and, when the saved copy
is missing, unreadable or out of step with the bank, rebuilt from the bank instead of trusted.
It holds victims' hashes, so it is saved as the bank keeps them: encrypted under the bank's key
(engines/bankkey.py), mode 600 in a folder of mode 700, whatever the umask.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from engines.bankkey import BankCipher, bank_cipher, drop_unsealed
from engines.home import private_folder
from matcher.mih import MultiIndexTables, max_exact_radius

# The saved index: read and written by Haechi's user alone (see engines/home.py).
INDEX_FILE_MODE = 0o600
# The fresh tier is scanned in full for every query: 10,000 hashes cost about 30 µs, small next
# to the main tier, while merging (a table rebuild) happens only once per 10,000 registrations.
FRESH_LIMIT = 10_000
# FAISS's OpenMP threads for the fresh tier's scan: one. The processes that search run beside
# others (the crawl's main process beside its hash workers, one hash worker or Celery worker
# per core), where a second thread only spins against them: a search of one query took 2.5 ms
# in the crawl instead of 30-80 µs (issue 18). No search here is big enough for more threads
# to pay reliably: on two shared cores, 130 queries (a re-scan's victim, the largest batch)
# against 10,000 hashes took from 0.53x to 7x the one-thread time with two threads from run
# to run, and that scan is a few milliseconds of a re-scan whose target is a second
# (scripts/bench_faiss_threads.py measures it again on another machine). The local stage's
# searches too: 2,000 query descriptors took 2.7 s with two threads and 0.23 s with one.
SEARCH_THREADS = 1


@dataclass(frozen=True)
class IndexStamp:
    """What the saved index was built from: compared with the bank before it is trusted."""

    max_id: int
    count: int


@dataclass(frozen=True)
class Hits:
    """Search results as parallel arrays: query row, bank row id, Hamming distance."""

    query: np.ndarray
    ids: np.ndarray
    distances: np.ndarray


def one_thread() -> None:
    """Set FAISS to SEARCH_THREADS on the calling thread. OpenMP keeps the setting per thread
    (one that never set it starts with one per core, whatever the main thread set), so it is
    set before each scan, on the thread that scans: next to the scan it costs nothing."""
    faiss.omp_set_num_threads(SEARCH_THREADS)


def _flat_index(bits: int) -> faiss.IndexBinaryIDMap2:
    return faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(bits))


class BinaryHashIndex:
    """Exact Hamming range search over fixed-width binary hashes, keyed by bank row id."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.nbytes = bits // 8
        self._codes = np.zeros((0, self.nbytes), dtype=np.uint8)
        self._ids = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=np.bool_)
        self._tables = MultiIndexTables.build(self._codes)
        self._fresh = _flat_index(bits)

    def __len__(self) -> int:
        return int(self._alive.sum()) + int(self._fresh.ntotal)

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Make `codes` searchable under bank row `ids` at once."""
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, self.nbytes)
        if self._fresh.ntotal + len(ids) <= FRESH_LIMIT:
            self._fresh.add_with_ids(codes, ids)
        else:
            self._merge(ids, codes)

    def _fresh_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        n = int(self._fresh.ntotal)
        ids = faiss.vector_to_array(self._fresh.id_map).astype(np.int64)[:n]
        flat = faiss.downcast_IndexBinary(self._fresh.index)
        codes = faiss.vector_to_array(flat.xb).reshape(-1, self.nbytes)[:n]
        return ids, codes

    def _merge(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Fold the fresh tier and `codes` into the main tier, dropping withdrawn rows."""
        fresh_ids, fresh_codes = self._fresh_arrays()
        self._codes = np.concatenate([self._codes[self._alive], fresh_codes, codes])
        self._ids = np.concatenate([self._ids[self._alive], fresh_ids, ids])
        self._alive = np.ones(len(self._ids), dtype=np.bool_)
        self._tables = MultiIndexTables.build(self._codes)
        self._fresh = _flat_index(self.bits)

    def remove(self, ids: np.ndarray) -> int:
        """Take bank rows `ids` out of search; returns how many were indexed."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        dead = np.isin(self._ids, ids) & self._alive
        self._alive[dead] = False
        return int(dead.sum()) + int(self._fresh.remove_ids(ids))

    def search(self, codes: np.ndarray, max_distance: int) -> Hits:
        """Every indexed hash within `max_distance` (inclusive) of each query code."""
        if max_distance > max_exact_radius(self.bits):
            raise ValueError(
                f"distance {max_distance} is beyond exact search for {self.bits}-bit hashes"
            )
        codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, self.nbytes)
        parts = []
        if self._tables.size:  # an empty main tier is skipped: nothing to compile or probe
            query, positions, distances = self._tables.search(
                codes, self._codes, self._alive, max_distance
            )
            parts.append((query, self._ids[positions], distances))
        if self._fresh.ntotal and len(codes):
            one_thread()
            # FAISS's radius is exclusive: distance < radius.
            lims, fresh_distances, fresh_ids = self._fresh.range_search(codes, max_distance + 1)
            per_query = np.diff(lims.astype(np.int64))
            parts.append((np.repeat(np.arange(len(codes)), per_query), fresh_ids, fresh_distances))
        return Hits(*(np.concatenate([p[i] for p in parts] or [np.zeros(0)]).astype(dtype)
                      for i, dtype in enumerate((np.int64, np.int64, np.int32))))

    def save(self, path: Path, stamp: IndexStamp, cipher: BankCipher | None = None) -> None:
        """Write index and stamp, encrypted under `cipher` (default: the bank's key), so that
        a crash leaves either the old or the new copy, whole."""
        private_folder(path.parent)
        arrays = {
            "codes": self._codes,
            "ids": self._ids,
            "alive": self._alive,
            "positions": self._tables.positions,
            "prefixes": self._tables.prefixes,
            "offsets": self._tables.offsets,
            "fresh": faiss.serialize_index_binary(self._fresh),
            "stamp": np.array([stamp.max_id, stamp.count], dtype=np.int64),
        }
        save_arrays(path, arrays, cipher)

    @classmethod
    def load(cls, path: Path, bits: int, cipher: BankCipher | None = None,
             ) -> tuple[BinaryHashIndex, IndexStamp] | None:
        """The saved index and its stamp, or None when there is none or it cannot be read: cut
        short, altered, saved under another key, or saved in the clear before the bank was
        encrypted (such a copy is deleted)."""
        try:
            arrays = load_arrays(path, cipher)
            if arrays is None:
                return None
            index = cls(bits)
            index._codes = arrays["codes"].reshape(-1, bits // 8)
            index._ids, index._alive = arrays["ids"], arrays["alive"]
            index._tables = MultiIndexTables(
                arrays["positions"], arrays["prefixes"], arrays["offsets"]
            )
            # deserialize returns the IDMap2 itself; downcasting that temporary would leave a
            # proxy to freed memory once the temporary is collected.
            index._fresh = faiss.deserialize_index_binary(arrays["fresh"])
            stamp = IndexStamp(*(int(v) for v in arrays["stamp"]))
        except (OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile):
            return None
        consistent = (
            len(index._ids) == len(index._codes) == len(index._alive) == index._tables.size
            and isinstance(index._fresh, faiss.IndexBinaryIDMap2)
            and index._fresh.d == bits
        )
        if not consistent or len(index) != stamp.count:
            return None
        return index, stamp


def save_arrays(path: Path, arrays: dict[str, np.ndarray], cipher: BankCipher | None = None
                ) -> None:
    """Write `arrays` (an .npz) to `path` sealed under the bank's key, atomically: a reader
    sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, INDEX_FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        sealed = (cipher or bank_cipher()).write_file(handle)
        np.savez(sealed, **arrays)
        sealed.close()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_arrays(path: Path, cipher: BankCipher | None = None) -> dict[str, np.ndarray] | None:
    """The arrays save_arrays wrote, or None when the file is missing or not sealed under the
    key (a copy saved in the clear before the bank was encrypted is deleted). Raises what
    np.load raises on a cut or altered archive, for the caller to treat as unreadable."""
    plain = (cipher or bank_cipher()).read_file(path)
    if plain is None:
        drop_unsealed(path)
        return None
    with np.load(plain, allow_pickle=False) as saved:
        return {name: saved[name] for name in saved.files}
