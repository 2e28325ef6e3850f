"""Matching: a file's bytes in, the victims it matches out, one best hit per victim and algorithm.

This is the step that turns stored media into match events; the crawler calls it for every
stored file and `haechi match` for files on disk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from matcher.bank import VictimBank
from matcher.hasher import ImageHasher, QueryHashes


@dataclass(frozen=True)
class Match:
    """The closest registered hash of one victim under one algorithm."""

    victim: str
    algorithm: str
    distance: int
    view: str

    def as_json(self) -> dict:
        return {"victim": self.victim, "algorithm": self.algorithm, "distance": self.distance}


class Matcher:
    """Hashes files and searches them in the bank."""

    def __init__(self, bank: VictimBank, hasher: ImageHasher | None = None) -> None:
        self.bank = bank
        self.hasher = hasher or ImageHasher()

    def match_bytes(self, data: bytes) -> list[Match]:
        """Matches for one file; raises UnreadableImage when it cannot be decoded."""
        return self.match_hashes(self.hasher.query_hashes(data))

    def match_hashes(self, hashes: QueryHashes) -> list[Match]:
        best: dict[tuple[str, str], Match] = {}
        for algorithm, codes in hashes.codes.items():
            for hit in self.bank.search(algorithm, codes):
                key = (hit.victim, hit.algorithm)
                if key not in best or hit.distance < best[key].distance:
                    best[key] = Match(**asdict(hit))
        return sorted(best.values(), key=lambda m: (m.victim, m.algorithm))
