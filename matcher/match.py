"""Matching: a file's bytes in, the victims it matches out, one best hit per victim and algorithm.

This is the step that turns stored media into match events; the crawler's match pipeline calls
it for every stored file and `haechi match` for files on disk. A video is matched frame by
frame; its match says at which second the victim's picture shows.

A cascade of two stages. The global hashes (PDQ, pHash, SHA-256) are searched first, for every
frame: they are fast and catch most copies. A frame they did not match goes to the local stage
(local features, matcher/local_index.py, with geometric verification, matcher/verification.py),
which finds the picture inside a screenshot, under a caption band or tilted, within
LOCAL_SECONDS_PER_FILE of work.

A video is also matched whole against the videos registered from vPDQ lists (HMA,
ThreatExchange; matcher/signals/vpdq.py): its frames' PDQ codes are searched among their
frames, and vPDQ's rule (share of this video's frames, share of the registered video's) decides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from matcher.bank import VictimBank
from matcher.hasher import FrameHashes, ImageHasher, QueryHashes
from matcher.signals import SIGNAL_TYPES
from matcher.signals.vpdq import VpdqSignal, VpdqTally

# The local stage's share of one file's matching, in seconds of this process's work: a still
# costs 5-40 ms, so every frame of a clip of a minute or two is searched, and a long video
# cannot hold the matcher (its frames past the budget are left to the global stage alone).
LOCAL_SECONDS_PER_FILE = 2.0
# vPDQ frames are PDQ hashes: a crawled video's frames are compared on their PDQ codes.
VPDQ_FRAME_SIGNAL = "pdq"


@dataclass(frozen=True)
class Match:
    """The closest registered hash of one victim under one algorithm.

    A local-feature match has `inliers` (the verified keypoint matches, more is closer); its
    `distance` is the median descriptor distance of those inliers, for the match events. A vPDQ
    match's `distance` is the median, over the video's matched frames, of each frame's PDQ
    distance to its closest registered frame, and its `view` names the registered video.
    """

    victim: str
    algorithm: str
    distance: int
    view: str
    second: float | None = None
    inliers: int | None = None

    def as_json(self) -> dict:
        result: dict = {"victim": self.victim, "algorithm": self.algorithm}
        if self.inliers is not None:
            result["inliers"] = self.inliers
        else:
            result["distance"] = self.distance
        if self.second is not None:
            result["second"] = self.second
        return result

    def closer_than(self, other: Match) -> bool:
        if self.inliers is not None and other.inliers is not None:
            return self.inliers > other.inliers
        return self.distance < other.distance


class Matcher:
    """Hashes files and searches them in the bank."""

    def __init__(self, bank: VictimBank, hasher: ImageHasher | None = None,
                 local_seconds: float = LOCAL_SECONDS_PER_FILE) -> None:
        self.bank = bank
        self.hasher = hasher or ImageHasher()
        self.local_seconds = local_seconds

    def match_bytes(self, data: bytes) -> list[Match]:
        """Matches for one image or video; raises UnreadableImage when it cannot be decoded."""
        return self.match_frames(self.hasher.media_hashes(data))

    def match_frames(self, frames: list[FrameHashes]) -> list[Match]:
        """The best match per (victim, algorithm) over all frames; the earliest on a tie."""
        best: dict[tuple[str, str], Match] = {}
        budget = self.local_seconds
        for frame in frames:
            found = self.match_hashes(frame.hashes, frame.second, local=False)
            if not found and budget > 0:
                started = time.process_time()
                found = self.match_local(frame.hashes, frame.second)
                budget -= time.process_time() - started
            for match in found:
                key = (match.victim, match.algorithm)
                if key not in best or match.closer_than(best[key]):
                    best[key] = match
        for match in self.match_vpdq(frames):
            key = (match.victim, match.algorithm)
            if key not in best or match.closer_than(best[key]):
                best[key] = match
        return sorted(best.values(), key=lambda m: (m.victim, m.algorithm))

    def match_vpdq(self, frames: list[FrameHashes]) -> list[Match]:
        """Registered vPDQ videos that a video's sampled frames match by vPDQ's rule; its
        `second` is the first matching frame's, its `distance` the matched frames' median.

        Each distinct frame with PDQ codes (of quality 50 or more: the hasher keeps no other)
        is one frame of the query; a frame matches a registered video when any of its codes
        (every view and orientation) is within the threshold of any of that video's frames.
        """
        signal = SIGNAL_TYPES.get("vpdq")
        if not isinstance(signal, VpdqSignal) or not len(self.bank.index(signal.name)):
            return []
        tally = VpdqTally(signal)
        for frame in frames:
            codes = frame.hashes.codes.get(VPDQ_FRAME_SIGNAL)
            if frame.second is None or codes is None or not len(codes):
                continue
            key = frame.hashes.seen_code or bytes(codes[0])
            hits = self.bank.search(signal.name, codes)
            tally.add_frame(key, frame.second, [(h.victim, h.view, h.distance) for h in hits])
        return [Match(m.victim, signal.name, m.distance, m.view, m.second)
                for m in tally.matches()]

    def match_hashes(self, hashes: QueryHashes, second: float | None = None,
                     local: bool = True) -> list[Match]:
        """Matches of one still: the global hashes, then (with `local`, when they found
        nothing) the local stage."""
        best: dict[tuple[str, str], Match] = {}
        for algorithm, codes in hashes.codes.items():
            if self._is_local(algorithm):
                continue
            for hit in self.bank.search(algorithm, codes):
                key = (hit.victim, hit.algorithm)
                if key not in best or hit.distance < best[key].distance:
                    best[key] = Match(hit.victim, hit.algorithm, hit.distance, hit.view, second)
        if not best and local:
            return self.match_local(hashes, second)
        return sorted(best.values(), key=lambda m: (m.victim, m.algorithm))

    def match_local(self, hashes: QueryHashes, second: float | None = None) -> list[Match]:
        """The local stage alone: registered pictures verified in the still."""
        best: dict[str, Match] = {}
        for algorithm, codes in hashes.codes.items():
            if not self._is_local(algorithm):
                continue
            for hit in self.bank.search(algorithm, codes):
                match = Match(hit.victim, hit.algorithm, hit.distance, hit.view, second,
                              hit.inliers)
                if hit.victim not in best or match.closer_than(best[hit.victim]):
                    best[hit.victim] = match
        return sorted(best.values(), key=lambda m: (m.victim, m.algorithm))

    @staticmethod
    def _is_local(algorithm: str) -> bool:
        signal = SIGNAL_TYPES.get(algorithm)
        return signal is not None and signal.geometric
