"""Matching: a file's bytes in, the victims it matches out, one best hit per victim and algorithm.

This is the step that turns stored media into match events; the crawler's match pipeline calls
it for every stored file and `haechi match` for files on disk. A video is matched frame by
frame; its match says at which second the victim's picture shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from matcher.bank import VictimBank
from matcher.hasher import FrameHashes, ImageHasher, QueryHashes


@dataclass(frozen=True)
class Match:
    """The closest registered hash of one victim under one algorithm."""

    victim: str
    algorithm: str
    distance: int
    view: str
    second: float | None = None

    def as_json(self) -> dict:
        result = {"victim": self.victim, "algorithm": self.algorithm, "distance": self.distance}
        if self.second is not None:
            result["second"] = self.second
        return result


class Matcher:
    """Hashes files and searches them in the bank."""

    def __init__(self, bank: VictimBank, hasher: ImageHasher | None = None) -> None:
        self.bank = bank
        self.hasher = hasher or ImageHasher()

    def match_bytes(self, data: bytes) -> list[Match]:
        """Matches for one image or video; raises UnreadableImage when it cannot be decoded."""
        return self.match_frames(self.hasher.media_hashes(data))

    def match_frames(self, frames: list[FrameHashes]) -> list[Match]:
        """The best match per (victim, algorithm) over all frames; the earliest on a tie."""
        best: dict[tuple[str, str], Match] = {}
        for frame in frames:
            for match in self.match_hashes(frame.hashes, frame.second):
                key = (match.victim, match.algorithm)
                if key not in best or match.distance < best[key].distance:
                    best[key] = match
        return sorted(best.values(), key=lambda m: (m.victim, m.algorithm))

    def match_hashes(self, hashes: QueryHashes, second: float | None = None) -> list[Match]:
        best: dict[tuple[str, str], Match] = {}
        for algorithm, codes in hashes.codes.items():
            for hit in self.bank.search(algorithm, codes):
                key = (hit.victim, hit.algorithm)
                if key not in best or hit.distance < best[key].distance:
                    best[key] = Match(hit.victim, hit.algorithm, hit.distance, hit.view, second)
        return sorted(best.values(), key=lambda m: (m.victim, m.algorithm))
