"""The victim hash bank: the hashes victims registered, and the indexes that search them.

Only hashes are kept, never an image, and the hashes with the care of the pictures themselves:
each row's code is encrypted under the bank's key, which the database does not hold, and found
by its keyed digest (engines/bankkey.py). Rows live in a SQL database (SQLite on the embedded
default, PostgreSQL when DATABASE_URL names one); each perceptual algorithm has a FAISS index
built from the decrypted rows (saved encrypted too), and exact algorithms (SHA-256) are looked
up by digest in the database itself. Withdrawing a victim deletes their rows and takes them
out of the indexes in the same call.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    delete,
    func,
    select,
)

from engines.bankkey import INDEX_FOLDER, BankCipher, bank_cipher
from engines.db import UtcDateTime, open_engine, upgrade
from engines.home import data_home
from engines.inputs import read_csv
from matcher.hasher import HashRecord, unique_records
from matcher.index import BinaryHashIndex, IndexStamp
from matcher.local_index import LocalIndex
from matcher.signals import SIGNAL_TYPES, SignalType, get_signal
from matcher.signals.vpdq import VpdqSignal, frame_view

metadata = MetaData()

victim_hashes = Table(
    "victim_hashes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("victim", String(200), nullable=False),
    Column("algorithm", String(32), nullable=False),
    # The code sealed under the bank's key (BankCipher.seal), never the code itself.
    Column("code", LargeBinary, nullable=False),
    Column("view", String(40), nullable=False),
    Column("quality", Integer, nullable=False),
    Column("source", String(500), nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    # BankCipher.digest of algorithm and code: exact matches and repeats are found by it.
    Column("digest", String(64), nullable=False),
    Index("ix_victim_hashes_victim", "victim"),
    Index("ix_victim_hashes_digest", "digest"),
)

# What a victim said at registration about themselves, beside their hashes and with the same
# care: deleted on withdrawal with them. `minor_at_capture`: the victim was under 18 when the
# picture was taken, so reports about it are CSAM reports (takedown/xarf.py), not NCII ones.
victims = Table(
    "victims",
    metadata,
    Column("victim", String(200), primary_key=True),
    Column("minor_at_capture", Boolean, nullable=False, default=False),
    Column("registered_at", UtcDateTime, nullable=False),
)

# What decrypting a row's code takes (BankCipher.unseal).
SEALED = (victim_hashes.c.id, victim_hashes.c.victim, victim_hashes.c.algorithm,
          victim_hashes.c.digest, victim_hashes.c.code)
# Rows are read back in chunks this size when an index is rebuilt, to bound memory at 10M rows.
REBUILD_CHUNK = 200_000


@dataclass(frozen=True)
class BankHit:
    """A victim hash within its algorithm's threshold of a query hash."""

    victim: str
    algorithm: str
    distance: int
    view: str
    # Local features only: the matches that geometric verification confirmed.
    inliers: int | None = None


class BankError(ValueError):
    """Bad input to the bank (unknown algorithm, malformed hash, bad CSV); message says which."""


class VictimBank:
    """Registered victim hashes with per-algorithm search indexes."""

    def __init__(self, engine: Engine, index_dir: Path, cipher: BankCipher | None = None,
                 ) -> None:
        self.engine = engine
        self.index_dir = index_dir
        upgrade(engine)
        self.cipher = cipher or bank_cipher()
        self._check_key()
        self._indexes: dict[str, BinaryHashIndex | LocalIndex] = {}
        self._indexed_up_to: dict[str, int] = {}

    @classmethod
    def open(cls, url: str | None = None, index_dir: Path | None = None) -> VictimBank:
        """The bank of this installation (HAECHI_HOME / DATABASE_URL unless given)."""
        engine = open_engine(url)
        return cls(engine, index_dir or data_home() / INDEX_FOLDER)

    def _check_key(self) -> None:
        """BankKeyError now, when the newest row does not decrypt with this key, instead of
        exact searches under the wrong digest key that quietly never match."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*SEALED).order_by(victim_hashes.c.id.desc())
                               .limit(1)).first()
        if row is not None:
            self._code(row)

    def _code(self, row: Row) -> bytes:
        """The code of a row selected with SEALED."""
        return self.cipher.unseal(row.algorithm, row.digest, row.victim, row.code)

    # --- writing -------------------------------------------------------------------------

    def add(self, victim: str, records: Iterable[HashRecord], source: str,
            minor_at_capture: bool = False) -> int:
        """Store `records` for `victim`, skipping hashes already held; returns how many were new.

        `minor_at_capture`: the victim says they were under 18 when the pictures were taken
        (kept in `victims`, see note_victim), so reports of their pictures are CSAM reports."""
        victim = _check_victim(victim)
        now = dt.datetime.now(dt.UTC)
        digested = [(r, self.cipher.digest(r.algorithm, r.code)) for r in unique_records(records)]
        with self.engine.begin() as conn:
            note_victim(conn, victim, minor_at_capture, now)
            held = set(conn.execute(select(victim_hashes.c.digest).where(
                victim_hashes.c.victim == victim)).scalars())
            fresh = [(r, digest) for r, digest in digested if digest not in held]
            if not fresh:
                return 0
            conn.execute(
                victim_hashes.insert(),
                [
                    {
                        "victim": victim,
                        "algorithm": r.algorithm,
                        "code": self.cipher.seal(r.algorithm, digest, victim, r.code),
                        "digest": digest,
                        "view": r.view,
                        "quality": r.quality,
                        "source": source[:500],
                        "registered_at": now,
                    }
                    for r, digest in fresh
                ],
            )
        self._sync_indexes({r.algorithm for r, _ in fresh})
        return len(fresh)

    def import_hash_list(self, path: Path, minor_at_capture: bool = False) -> dict[str, Any]:
        """Load a hash list CSV, in either layout its header names (see `hash_list_layout`).

        A vPDQ signal (algorithm `vpdq`, matcher/signals/vpdq.py) is one whole video on one
        line: it is stored as one row per frame, each sealed like any code. The whole file is
        validated before anything is stored, so a bad line loses nothing and adds nothing; the
        error names the line. In python-threatexchange's layout, signal types Haechi does not
        match (video_md5, text hashes) are counted under "skipped", not refused: an exchange's
        dataset mixes them, and its PDQ and vPDQ signals are still worth loading.
        """
        layout = hash_list_layout(path)
        by_victim: dict[str, list[HashRecord]] = {}
        skipped: dict[str, int] = {}
        with _long_csv_fields(path):
            for line_no, row in read_csv(path, layout.columns):
                kind = row[layout.algorithm]
                if layout.exchange and kind.strip().lower() not in SIGNAL_TYPES:
                    skipped[kind] = skipped.get(kind, 0) + 1
                    continue
                try:
                    signal = get_signal(kind)
                    records = self._list_records(signal, row[layout.hash])
                    victim = _check_victim(row[layout.victim])
                except ValueError as exc:
                    raise BankError(f"{path}, line {line_no}: {exc}") from None
                by_victim.setdefault(victim, []).extend(records)
        added = sum(self.add(v, recs, f"list:{path.name}", minor_at_capture)
                    for v, recs in by_victim.items())
        summary: dict[str, Any] = {"victims": len(by_victim),
                                   "hashes": sum(map(len, by_victim.values())), "added": added}
        if skipped:
            summary["skipped"] = skipped
        return summary

    def _list_records(self, signal: SignalType, text: str) -> list[HashRecord]:
        """The rows one hash-list entry registers: one code, or a vPDQ video's frames."""
        if not isinstance(signal, VpdqSignal):
            return [HashRecord(signal.name, signal.parse(text), "imported", 100)]
        frames = signal.registered_frames(text)
        # The video's name in its rows' views: the keyed digest of its frames, so the same
        # list imported again names it alike, and the plain views say nothing of the codes.
        video = self.cipher.digest(signal.name, b"".join(f.code for f in frames))[:VIDEO_ID]
        return [HashRecord(signal.name, f.code, frame_view(video, index, len(frames)),
                           f.quality) for index, f in enumerate(frames)]

    def withdraw(self, victim: str) -> int:
        """Delete every hash of `victim` (consent withdrawn), and what they said of themselves
        at registration (`victims`) with them; returns how many hashes were removed."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(victim_hashes.c.id, victim_hashes.c.algorithm).where(
                    victim_hashes.c.victim == victim
                )
            ).all()
            conn.execute(delete(victim_hashes).where(victim_hashes.c.victim == victim))
            conn.execute(delete(victims).where(victims.c.victim == victim))
        by_algorithm: dict[str, list[int]] = {}
        for row in rows:
            by_algorithm.setdefault(row.algorithm, []).append(row.id)
        for algorithm, ids in by_algorithm.items():
            if algorithm in self._indexes:
                self._indexes[algorithm].remove(np.asarray(ids, dtype=np.int64))
        return len(rows)

    # --- reading -------------------------------------------------------------------------

    def is_registered(self, victim: str) -> bool:
        """Whether `victim` has hashes in the bank: False once they withdrew (or never were),
        which the tracker takes as consent withdrawn (takedown/tracking.py)."""
        with self.engine.connect() as conn:
            return conn.execute(select(victim_hashes.c.id).where(
                victim_hashes.c.victim == victim).limit(1)).first() is not None

    def minor_at_capture(self, victim: str) -> bool:
        """Whether `victim` registered as a minor when their pictures were taken."""
        with self.engine.connect() as conn:
            return victim in minors_among(conn, [victim])

    def stats(self) -> dict:
        with self.engine.connect() as conn:
            victims = conn.execute(select(func.count(func.distinct(victim_hashes.c.victim))))
            victims = victims.scalar_one()
            per_algorithm = {
                row.algorithm: row.n
                for row in conn.execute(
                    select(victim_hashes.c.algorithm, func.count().label("n")).group_by(
                        victim_hashes.c.algorithm
                    )
                )
            }
        return {
            "victims": victims,
            "hashes": sum(per_algorithm.values()),
            "by_algorithm": {name: per_algorithm.get(name, 0) for name in SIGNAL_TYPES},
        }

    def search(self, algorithm: str, codes: np.ndarray) -> list[BankHit]:
        """All victim hashes within the algorithm's threshold of any of `codes`."""
        signal = get_signal(algorithm)
        if len(codes) == 0:
            return []
        if signal.geometric:
            return self._search_local(signal.name, codes)
        if signal.exact:
            wanted = list({self.cipher.digest(signal.name, bytes(row)) for row in codes})
            query = select(victim_hashes.c.id).where(victim_hashes.c.digest.in_(wanted))
            with self.engine.connect() as conn:
                found = {row.id: 0 for row in conn.execute(query)}
        else:
            hits = self.index(signal.name).search(codes, signal.threshold)
            found = {}
            for row_id, distance in zip(hits.ids.tolist(), hits.distances.tolist(), strict=True):
                found[row_id] = min(distance, found.get(row_id, distance))
        if not found:
            return []
        rows = self._owners(list(found))
        return [BankHit(r.victim, signal.name, found[r.id], r.view) for r in rows]

    def _owners(self, ids: list[int]) -> Sequence[Row[Any]]:
        """(id, victim, view) of the bank rows `ids`: whose hashes a search found."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(victim_hashes.c.id, victim_hashes.c.victim, victim_hashes.c.view).where(
                    victim_hashes.c.id.in_(ids))).all()

    def _search_local(self, algorithm: str, codes: np.ndarray) -> list[BankHit]:
        """Registered pictures whose local features a query's verify (LocalIndex.search)."""
        local = self.index(algorithm)
        assert isinstance(local, LocalIndex)
        found = {hit.row_id: hit for hit in local.search(codes)}
        if not found:
            return []
        rows = self._owners(list(found))
        return [BankHit(r.victim, algorithm, found[r.id].distance,
                        r.view + (":mirrored" if found[r.id].mirrored else ""),
                        found[r.id].inliers) for r in rows]

    # --- indexes -------------------------------------------------------------------------

    def index(self, algorithm: str) -> BinaryHashIndex | LocalIndex:
        """The search index for `algorithm`, loaded from disk or rebuilt, in step with the rows."""
        if algorithm not in self._indexes:
            self._indexes[algorithm] = self._load_or_rebuild(algorithm)
        return self._indexes[algorithm]

    def _index_path(self, algorithm: str) -> Path:
        return self.index_dir / f"{algorithm}.index"

    def _stamp(self, algorithm: str, up_to: int | None = None) -> IndexStamp:
        query = select(func.coalesce(func.max(victim_hashes.c.id), 0), func.count()).where(
            victim_hashes.c.algorithm == algorithm
        )
        if up_to is not None:
            query = query.where(victim_hashes.c.id <= up_to)
        with self.engine.connect() as conn:
            max_id, count = conn.execute(query).one()
        return IndexStamp(int(max_id), int(count))

    def _rows_after(self, algorithm: str, after_id: int,
                    ) -> Iterator[tuple[np.ndarray, np.ndarray | list[bytes]]]:
        """Rows after `after_id` in chunks: ids and codes (rows of uint8, or for local
        features one blob per picture)."""
        signal = get_signal(algorithm)
        nbytes = signal.nbytes
        last = after_id
        while True:
            query = (
                select(*SEALED)
                .where(victim_hashes.c.algorithm == algorithm, victim_hashes.c.id > last)
                .order_by(victim_hashes.c.id)
                .limit(REBUILD_CHUNK)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
            if signal.geometric:
                yield ids, [self._code(r) for r in rows]
            else:
                yield ids, np.frombuffer(b"".join(map(self._code, rows)),
                                         np.uint8).reshape(-1, nbytes)
            last = int(ids[-1])

    def _catch_up(self, algorithm: str, index: BinaryHashIndex | LocalIndex,
                  after_id: int) -> None:
        """Add the rows after `after_id` in one call, so a rebuild builds its tables once."""
        chunks = list(self._rows_after(algorithm, after_id))
        if chunks:
            ids = np.concatenate([chunk[0] for chunk in chunks])
            if isinstance(index, LocalIndex):
                index.add(ids, [code for chunk in chunks for code in chunk[1]])
            else:
                index.add(ids, np.concatenate([chunk[1] for chunk in chunks]))
            after_id = int(chunks[-1][0][-1])
        self._indexed_up_to[algorithm] = after_id

    def _load_or_rebuild(self, algorithm: str) -> BinaryHashIndex | LocalIndex:
        signal = get_signal(algorithm)
        kind = LocalIndex if signal.geometric else BinaryHashIndex
        loaded = kind.load(self._index_path(algorithm), signal.bits, self.cipher)
        if loaded is not None:
            index, stamp = loaded
            if self._stamp(algorithm, up_to=stamp.max_id) == stamp:
                self._catch_up(algorithm, index, stamp.max_id)
                return index
        index = LocalIndex() if signal.geometric else BinaryHashIndex(signal.bits)
        self._catch_up(algorithm, index, 0)
        return index

    def codes(self, victim: str, algorithm: str) -> np.ndarray:
        """The victim's registered codes under `algorithm`, as rows of uint8 (global hashes
        only: local features are not codes of one width and are never handed out)."""
        signal = get_signal(algorithm)
        if signal.geometric:
            raise BankError(f"{signal.name} features are not codes; nothing to hand out")
        nbytes = signal.nbytes
        with self.engine.connect() as conn:
            found = conn.execute(select(*SEALED).where(
                victim_hashes.c.victim == victim, victim_hashes.c.algorithm == algorithm
            ).order_by(victim_hashes.c.id)).all()
        return np.frombuffer(b"".join(map(self._code, found)), np.uint8).reshape(len(found),
                                                                                 nbytes)

    def refresh(self) -> None:
        """Take in rows other processes registered since this one looked (incremental).

        Withdrawals need nothing here: hits are looked up in the rows, so a deleted row stops
        matching everywhere at once.
        """
        self._sync_indexes(set(self._indexes))

    def taken_in(self) -> int:
        """The newest row this process has taken into its indexes (0: none loaded yet)."""
        return max(self._indexed_up_to.values(), default=0)

    def newest_row(self) -> int:
        """The newest row in the database: what every process will have taken in once it
        refreshes."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(victim_hashes.c.id))).scalar() or 0)

    def _sync_indexes(self, algorithms: set[str]) -> None:
        """Bring the loaded indexes of `algorithms` up to the rows (unloaded ones load later)."""
        for algorithm in algorithms:
            index = self._indexes.get(algorithm)
            if index is not None:
                self._catch_up(algorithm, index, self._indexed_up_to[algorithm])

    def save(self) -> None:
        """Persist every similarity index, so the next process loads instead of rebuilding.

        Correctness never depends on this: a stale or missing copy is caught up or rebuilt
        from the rows when loaded.
        """
        for name, signal in SIGNAL_TYPES.items():
            if not signal.exact:
                self.index(name)
        for algorithm, index in self._indexes.items():
            path = self._index_path(algorithm)
            if isinstance(index, LocalIndex) and not len(index):
                # No pictures hold local features: no file (and none left from before).
                path.unlink(missing_ok=True)
                continue
            if algorithm == VpdqSignal.name and not len(index):
                # No vPDQ list loaded, or every one withdrawn: no file either.
                path.unlink(missing_ok=True)
                continue
            stamp = IndexStamp(self._indexed_up_to[algorithm], len(index))
            index.save(path, stamp, self.cipher)


def note_victim(conn: Connection, victim: str, minor_at_capture: bool,
                at: dt.datetime) -> None:
    """Keep the victim's row in `victims`, in the registration's transaction.

    A victim registered as a minor at capture stays one until they withdraw: a later
    registration without the flag adds pictures, it does not take back what they said (a
    CSAM report sent as an adult one would understate it to the host)."""
    held = conn.execute(select(victims.c.minor_at_capture).where(
        victims.c.victim == victim)).first()
    if held is None:
        conn.execute(victims.insert(), [{"victim": victim, "minor_at_capture": minor_at_capture,
                                         "registered_at": at}])
    elif minor_at_capture and not held.minor_at_capture:
        conn.execute(victims.update().where(victims.c.victim == victim),
                     [{"minor_at_capture": True}])


def minors_among(conn: Connection, names: Iterable[str]) -> set[str]:
    """Which of `names` registered as minors at capture. Takedown reads it with its own
    connection (the same database) when it builds X-ARF reports (takedown/xarf.py); it is
    never put in a match event, a hash list or anything else that leaves the installation."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    return set(conn.execute(select(victims.c.victim).where(
        victims.c.victim.in_(wanted), victims.c.minor_at_capture.is_(True))).scalars())


def _check_victim(victim: str) -> str:
    victim = victim.strip()
    if not victim or len(victim) > 200:
        raise BankError("a victim ID must be 1 to 200 characters")
    return victim


@dataclass(frozen=True)
class HashListLayout:
    """Which columns of a hash list hold the victim, the algorithm and the hash."""

    victim: str
    algorithm: str
    hash: str
    # python-threatexchange's export: signal types Haechi does not match are skipped.
    exchange: bool

    @property
    def columns(self) -> tuple[str, str, str]:
        return (self.victim, self.algorithm, self.hash)


# Haechi's own layout, which StopNCII / NCMEC style PDQ lists are written in.
HAECHI_LIST = HashListLayout("victim", "algorithm", "hash", exchange=False)
# Hex digits of a registered vPDQ video's name in its rows' views (48 bits of a keyed digest).
VIDEO_ID = 12


def hash_list_layout(path: Path) -> HashListLayout:
    """The layout of a hash list, by its header.

    - `victim,algorithm,hash`: Haechi's own, and StopNCII / NCMEC style PDQ lists.
    - `signal_type,signal_str`, with a `victim` or a `collab` column: python-threatexchange's
      CSV (`threatexchange dataset -P --csv` writes collab,signal_type,signal_str,category,
      tags; cli/dataset_cmd.py), whose signal type names and signal strings are HMA's
      (`vpdq`, `pdq`). Without a victim column each collaboration's name is the reference its
      signals are registered, matched and withdrawn under: an exchange's list does not say
      whose pictures it holds.

    A header that cannot be read is left to read_csv, which says why in a sentence.
    """
    try:
        with open(path, "rb") as handle:
            first = handle.readline().decode("utf-8-sig", errors="replace")
    except OSError:
        return HAECHI_LIST
    header = {name.strip().lower() for name in next(csv.reader([first]), [])}
    if "algorithm" in header or not {"signal_type", "signal_str"} <= header:
        return HAECHI_LIST
    victim = "victim" if "victim" in header or "collab" not in header else "collab"
    return HashListLayout(victim, "signal_type", "signal_str", exchange=True)


def hash_list_victims(path: Path) -> set[str]:
    """The victim references a hash list names, in its layout (for the re-scan that follows
    an import)."""
    layout = hash_list_layout(path)
    with _long_csv_fields(path):
        return {row[layout.victim].strip() for _, row in read_csv(path, (layout.victim,))}


@contextmanager
def _long_csv_fields(path: Path) -> Iterator[None]:
    """Let one CSV field be as long as the file: a vPDQ signal is about 75 characters a frame,
    so ten minutes of a list hashed at 30 fps is over a megabyte, ten times the csv module's
    default limit (python-threatexchange raises it the same way, cli/dataset/
    simple_serialization.py). Put back afterwards, for every other CSV this process reads."""
    before = csv.field_size_limit()
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    csv.field_size_limit(max(before, size + 1))
    try:
        yield
    finally:
        csv.field_size_limit(before)
