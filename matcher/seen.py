"""The seen index: one hash of every file ever crawled, to search when a victim registers.

When a new victim registers, the files crawled before are searched at once, without crawling
the web again (Project Arachnid's lesson: much of what a victim needs removed is already known).
Each stored file (or video frame) keeps the PDQ hash of its picture as found, upright; the
victim's side is searched in all eight orientations, so mirrored and rotated copies are found.
Hits are confirmed by matching the stored copy in full before any event is raised.
"""

from __future__ import annotations

import datetime as dt

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
    Column("code", LargeBinary, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    UniqueConstraint("sha256", "second", name="uq_seen_hashes_file_frame"),
)

STILL = -1.0


class SeenIndex:
    """The seen hashes, with an in-memory index brought up to date before each search."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        upgrade(engine)
        self.signal = get_signal(SEEN_SIGNAL)
        self.index = BinaryHashIndex(self.signal.bits)
        self.up_to = 0

    @classmethod
    def open(cls, url: str | None = None) -> SeenIndex:
        return cls(open_engine(url))

    def record(self, sha256: str, frames: list[FrameHashes]) -> int:
        """Keep the seen hash of each still or frame of a file; returns how many were new."""
        rows = [{"sha256": sha256, "second": STILL if f.second is None else f.second,
                 "code": f.hashes.seen_code, "seen_at": dt.datetime.now(dt.UTC)}
                for f in frames if f.hashes.seen_code is not None]
        added = 0
        for row in rows:
            try:
                with self.engine.begin() as conn:
                    conn.execute(seen_hashes.insert(), [row])
                added += 1
            except IntegrityError:
                continue  # seen before: the file's hash never changes
        return added

    def refresh(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(seen_hashes.c.id, seen_hashes.c.code)
                                .where(seen_hashes.c.id > self.up_to)
                                .order_by(seen_hashes.c.id)).all()
        if rows:
            ids = np.fromiter((r.id for r in rows), np.int64, len(rows))
            codes = np.frombuffer(b"".join(r.code for r in rows), np.uint8).reshape(
                len(rows), -1)
            self.index.add(ids, codes)
            self.up_to = int(ids[-1])

    def search(self, codes: np.ndarray) -> dict[str, int]:
        """SHA-256 of every seen file within the signal's threshold of `codes`: best distance."""
        self.refresh()
        if len(self.index) == 0 or len(codes) == 0:
            return {}
        hits = self.index.search(codes, self.signal.threshold)
        best: dict[int, int] = {}
        for seen_id, distance in zip(hits.ids.tolist(), hits.distances.tolist(), strict=True):
            best[seen_id] = min(distance, best.get(seen_id, distance))
        if not best:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(seen_hashes.c.id, seen_hashes.c.sha256).where(
                seen_hashes.c.id.in_(list(best)))).all()
        found: dict[str, int] = {}
        for row in rows:
            found[row.sha256] = min(best[row.id], found.get(row.sha256, best[row.id]))
        return found
