"""Meta's vPDQ (video PDQ): a video's hash is the PDQ hash of its frames, so the vPDQ lists that
HMA and ThreatExchange share load into the victim bank and match crawled videos (hash → match).

Format and rule are python-threatexchange's (github.com/facebook/ThreatExchange, folder
python-threatexchange/threatexchange/extensions/vpdq/), followed here, not imported:

- A signal string is a JSON list of frame features, each the string "pdq_hex,quality,timestamp"
  (vpdq_util.py, VpdqCompactFeature.from_str and __str__, vpdq_to_json and json_to_vpdq; the
  timestamp is written with the format spec ".3", three significant digits). HMA's bank API
  (OpenMediaMatch/blueprints/curation.py, POST /bank/<name>/signal) takes the same string under
  the signal type name "vpdq", and `threatexchange dataset -P --csv` writes it in a CSV.
- Two videos match (vpdq_brute_matcher.py at commit 011fc608, match_VPDQ_in_another from line
  10 and match_VPDQ_hash_brute from line 35; vpdq.py VPDQSignal.compare_hash; vpdq_index.py
  VPDQIndex.query): frames under quality 50 are dropped
  and identical hashes counted once on both sides; a frame matches when a frame of the other
  video is within PDQ distance 31, inclusive (line 28: `simple_distance(...) <=
  distance_tolerance`); the query-match percentage is the share of the query's frames that
  match, the compared-match percentage the share of the registered video's frames; a match
  needs at least 80% and at least 0% (vpdq_util.py lines 15-18 at commit 04d8070c:
  VPDQ_QUALITY_THRESHOLD = 50, VPDQ_DISTANCE_THRESHOLD = 31,
  VPDQ_QUERY_MATCH_THRESHOLD_PERCENT = 80.0, VPDQ_INDEX_MATCH_THRESHOLD_PERCENT = 0.0).

In the bank a registered video is one row per distinct frame of quality 50 or more: its PDQ
code (sealed like every code) and, in the row's view, which video and which of how many frames
it is (`frame_view`). The rows are PDQ-width codes, so the bank's FAISS index searches them like
PDQ rows; the video-level decision is VpdqTally's, in matcher/match.py. Withdrawal deletes them
with the victim's other rows; nothing hands them out.

Crawled videos are not hashed with Meta's vpdq package (it is compiled against FFmpeg): their
frames are the project's own (matcher/video.py: about one a second, neighbours of the same
scene dropped, at most 512 px), each hashed with PDQ in every query view and orientation by the
hasher. vpdq samples at its own rate (every frame by default in the C++ tool, one a second in
python-threatexchange's hash_file_compact) and hashes the upright frame. That still matches,
because both percentages are over matched frames: the query percentage asks what share of *our*
frames shows a frame of the registered video, which does not depend on how densely that video
was sampled; the compared percentage does (a 30 fps list against our one frame a second), and
vPDQ's default asks 0% of it.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from PIL import Image

from matcher.signals.base import ImageHash, SignalType
from matcher.signals.pdq import PdqSignal

PDQ_HEX_DIGITS = 64
# python-threatexchange writes a feature's timestamp with format spec ".3" (vpdq_util.py,
# VPDQ_TIMESTAMP_PRECISION = 3): written the same way, a list read in and written out is the
# same string.
TIMESTAMP_DIGITS = 3
# Rows kept per registered video: an hour and a half of a list hashed at every frame of 30 fps
# (what the vpdq tool writes by default) is 162,000 frames. A longer list keeps every k-th
# frame: neighbouring frames of one second are near-copies, and both percentages are shares.
MAX_FRAMES = 100_000
VIEW_PREFIX = "vpdq:"


@dataclass(frozen=True)
class VpdqFeature:
    """One frame of a vPDQ hash: its PDQ code (32 bytes), PDQ quality and start in seconds."""

    code: bytes
    quality: int
    timestamp: float

    def __str__(self) -> str:
        """python-threatexchange's form: "pdq_hex,quality,timestamp"."""
        return f"{self.code.hex()},{self.quality},{self.timestamp:.{TIMESTAMP_DIGITS}}"

    @classmethod
    def from_str(cls, text: str) -> VpdqFeature:
        """A feature from "pdq_hex,quality,timestamp"; ValueError says what is wrong."""
        parts = text.split(",")
        if len(parts) != 3:
            raise ValueError(f"{len(parts)} fields, not 3 (pdq_hex,quality,timestamp)")
        hex_text, quality_text, time_text = (part.strip() for part in parts)
        return cls(_pdq_code(hex_text), _quality(quality_text), _timestamp(time_text))


def _pdq_code(text: str) -> bytes:
    if len(text) != PDQ_HEX_DIGITS:
        raise ValueError(f"a PDQ hash has {PDQ_HEX_DIGITS} hex digits, this one {len(text)}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"not a hex PDQ hash: {text!r}") from None


def _quality(text: str) -> int:
    try:
        quality = int(text)
    except ValueError:
        raise ValueError(f"quality is not a whole number: {text!r}") from None
    if not 0 <= quality <= 100:
        raise ValueError(f"quality {quality} is outside 0-100")
    return quality


def _timestamp(text: str) -> float:
    try:
        second = float(text)
    except ValueError:
        raise ValueError(f"timestamp is not a number: {text!r}") from None
    if not math.isfinite(second) or second < 0:
        raise ValueError(f"timestamp {text} is not a second of the video")
    return second


def parse_signal(text: str) -> list[VpdqFeature]:
    """The features of a vPDQ signal string (a JSON list of "pdq_hex,quality,timestamp");
    ValueError names the frame that is wrong."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"a vPDQ signal is a JSON list of frames; this is not JSON ({exc})"
                         ) from None
    if not isinstance(items, list):
        raise ValueError("a vPDQ signal is a JSON list of frames; this is not a list")
    features = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, str):
            raise ValueError(f"vPDQ frame {number} is not a \"pdq_hex,quality,timestamp\" "
                             "string")
        try:
            features.append(VpdqFeature.from_str(item))
        except ValueError as exc:
            raise ValueError(f"vPDQ frame {number} ({item[:90]!r}): {exc}") from None
    return features


def format_signal(features: Iterable[VpdqFeature]) -> str:
    """The signal string python-threatexchange writes for `features` (vpdq_to_json)."""
    return json.dumps([str(feature) for feature in features])


def features_from_vpdq_lines(text: str) -> list[VpdqFeature]:
    """The features of the vpdq tool's own output (vpdq-hash-video, vpdq/cpp/io/vpdqio.cpp):
    one "frame_number,quality,pdq_hex,timestamp" line a frame."""
    features = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 4:
            raise ValueError(f"line {number}: {len(parts)} fields, not 4 "
                             "(frame_number,quality,pdq_hex,timestamp)")
        try:
            features.append(VpdqFeature(_pdq_code(parts[2].strip()), _quality(parts[1].strip()),
                                        _timestamp(parts[3].strip())))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return features


def video_features(data: bytes) -> list[VpdqFeature]:
    """vPDQ features of a video with the project's frames (matcher/video.py) and PDQ: what a
    crawled video is compared on, in the interchange form (tests write lists with it)."""
    from matcher.video import stills  # the video decoder, only when a video is hashed

    pdq = PdqSignal()
    features = []
    for second, image in stills(data):
        if second is not None:
            hashed = pdq.hash_image(image)
            features.append(VpdqFeature(hashed.code, hashed.quality, second))
    return features


def frame_view(video: str, index: int, count: int) -> str:
    """The bank row view of frame `index` of `count` of registered video `video`."""
    return f"{VIEW_PREFIX}{video}:{index}/{count}"


class FrameView(NamedTuple):
    video: str
    index: int
    count: int


def parse_view(view: str) -> FrameView | None:
    """The (video, index, count) of a vPDQ row's view, None for any other view."""
    if not view.startswith(VIEW_PREFIX):
        return None
    video, _, place = view[len(VIEW_PREFIX):].rpartition(":")
    index, _, count = place.partition("/")
    if not video or not index.isdigit() or not count.isdigit() or int(count) < 1:
        return None
    return FrameView(video, int(index), int(count))


class VpdqSignal(SignalType):
    """vPDQ: the signal type of video hash lists; see the module docstring."""

    name: ClassVar[str] = "vpdq"
    # Each row is one frame's PDQ code.
    bits: ClassVar[int] = 256
    # VPDQ_DISTANCE_THRESHOLD: PDQ's own threshold, per frame (inclusive).
    threshold: ClassVar[int] = 31
    # VPDQ_QUALITY_THRESHOLD: frames under PDQ quality 50 (fades, black, flat titles) collide
    # with each other across videos, so they are neither registered nor counted.
    min_quality: ClassVar[int] = 50
    # VPDQ_QUERY_MATCH_THRESHOLD_PERCENT: 80% of the crawled video's frames must show frames of
    # the registered video, so a few chance frame collisions never make a match.
    query_match_percent: ClassVar[float] = 80.0
    # VPDQ_INDEX_MATCH_THRESHOLD_PERCENT: 0%, so a crawled clip cut from a longer registered
    # video (and a list sampled at a denser rate than our frames) still matches.
    compared_match_percent: ClassVar[float] = 0.0

    def hash_image(self, image: Image.Image) -> ImageHash:
        """A still has no vPDQ: quality 0, so the hasher neither registers nor queries it.
        Video frames are compared through their PDQ codes (matcher/match.py)."""
        return ImageHash(b"", 0)

    def hash_dihedral(self, image: Image.Image) -> list[ImageHash]:
        return []

    def registered_frames(self, text: str) -> list[VpdqFeature]:
        """The frames of signal `text` to store: quality 50 or more, each code once (vPDQ's
        quality_filter and dedupe), at most MAX_FRAMES; ValueError when none is left, since
        a video registered with nothing to match on must not look protected."""
        features = parse_signal(text)
        if not features:
            raise ValueError("the vPDQ signal has no frames")
        held: set[bytes] = set()
        kept = []
        for feature in features:
            if feature.quality >= self.min_quality and feature.code not in held:
                held.add(feature.code)
                kept.append(feature)
        if not kept:
            raise ValueError(f"every frame of the vPDQ signal has quality under "
                             f"{self.min_quality}: nothing to match on")
        step = -(-len(kept) // MAX_FRAMES)
        return kept[::step]


@dataclass
class _VideoTally:
    count: int
    compared: set[int] = field(default_factory=set)
    distances: list[int] = field(default_factory=list)
    first_second: float = math.inf


class VpdqMatch(NamedTuple):
    """A registered video a crawled one matches by vPDQ's rule; `distance` is the median of
    each matched frame's distance to its closest registered frame."""

    victim: str
    view: str
    distance: int
    second: float
    query_percent: float
    compared_percent: float


class VpdqTally:
    """vPDQ's decision over one crawled video: fed each distinct frame's bank hits, it says
    which registered videos hold enough of the frames (VpdqSignal's two percentages)."""

    def __init__(self, signal: VpdqSignal) -> None:
        self.signal = signal
        self._frames: set[bytes] = set()
        self._videos: dict[tuple[str, str], _VideoTally] = {}

    def add_frame(self, key: bytes, second: float,
                  hits: Iterable[tuple[str, str, int]]) -> None:
        """One frame of the crawled video, `key` its upright PDQ code (a frame identical to
        one already seen counts once, as vPDQ dedupes), `hits` the (victim, view, distance)
        of the registered frames within the threshold of any of its codes."""
        if key in self._frames:
            return
        self._frames.add(key)
        closest: dict[tuple[str, str], int] = {}
        for victim, view, distance in hits:
            place = parse_view(view)
            if place is None:
                continue
            video = (victim, place.video)
            tally = self._videos.setdefault(video, _VideoTally(place.count))
            tally.compared.add(place.index)
            closest[video] = min(distance, closest.get(video, distance))
        for video, distance in closest.items():
            tally = self._videos[video]
            tally.distances.append(distance)
            tally.first_second = min(tally.first_second, second)

    def matches(self) -> list[VpdqMatch]:
        """The registered videos at or over both thresholds, earliest frame's second first."""
        found = []
        for (victim, video), tally in self._videos.items():
            query = len(tally.distances) * 100 / len(self._frames)
            compared = min(100.0, len(tally.compared) * 100 / tally.count)
            if (query >= self.signal.query_match_percent
                    and compared >= self.signal.compared_match_percent):
                found.append(VpdqMatch(victim, f"{VIEW_PREFIX}{video}",
                                       round(statistics.median(tally.distances)),
                                       tally.first_second, query, compared))
        return sorted(found, key=lambda m: (m.second, m.victim))
