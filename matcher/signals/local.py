"""Local features: ORB keypoints and binary descriptors, matched with geometric verification.

The global hashes (PDQ, pHash) summarise the whole frame, so a copy inside a screenshot, under
a caption band or tilted by a few degrees moves them past their thresholds. Local features
survive those edits: the picture's corners and blobs keep their descriptors wherever they end
up, and a copy is confirmed when enough of them agree on one rotation, scale and shift
(matcher/verification.py verifies that with RANSAC). This is the second stage of the cascade
(matcher/match.py): it runs on what the global hashes did not match.

A registration's code is one blob per picture: a header (format, picture size at the working
size), then each keypoint's position and its 256-bit descriptor. It is derived from the
victim's picture and kept like every other hash: sealed in the bank, never in a hash list,
deleted on withdrawal. A query's codes are rows of QUERY_ROW_BYTES (position, upright or
mirrored, descriptor), so they travel with the other query hashes (the hash cache, the pool).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
from PIL import Image

from matcher.decode import WORKING_SIZE
from matcher.signals.base import ImageHash, SignalType

# Matching runs one process per core (the crawl's pool, a cluster's workers); OpenCV's own
# threads would only contend with the other processes for the same cores.
cv2.setNumThreads(1)

# Pictures are described at the size they are decoded at for hashing (matcher/decode.py: 512
# px long side, by reduced-size JPEG decoding), so the local stage costs no second decode;
# ORB's 8-level pyramid still finds the picture when a screenshot shrinks it to half the frame.
# Both orientations of a query cost 11-17 ms on one core.
WORKING_SIDE = WORKING_SIZE
QUERY_SIDE = WORKING_SIZE

# Keypoints kept per registered picture: 500 x (32 + 4) bytes + header = 18 KB, under the 20 KB
# per picture the bank budgets (100,000 pictures in under 2 GB).
REGISTER_FEATURES = 500
# Of those, described on the picture at half size (see LocalSignal.features).
HALF_SIZE_FEATURES = 200
# Keypoints per query picture, per orientation.
QUERY_FEATURES = 1000
# A picture with fewer keypoints than this has too little structure for geometric
# verification to tell it from other plain pictures: it is not registered under this signal.
MIN_FEATURES = 50

DESCRIPTOR_BYTES = 32
MAGIC = b"ORB1"
_HEADER = struct.Struct("<4sHHH")  # magic, width, height, keypoints
# A query row: x, y (uint16, working-size pixels), its group, then the descriptor. A group is one
# view of the query (0: the picture as found; then the crops the peelers find, see
# matcher/canonical.py) in one orientation: group = 2 x view + (0 upright, 1 mirrored). Each view
# has one more row, its group byte SIZE_ROW | view, holding the described view's width and
# height as its x and y: the verifier judges a copy on the part of the picture the view shows.
QUERY_ROW_BYTES = 5 + DESCRIPTOR_BYTES
UPRIGHT, MIRRORED = 0, 1
SIZE_ROW = 0x80
# Peeled views described beside the picture as found: a screenshot's page or app frame holds
# the strongest corners of the query, and the picture inside it gets few of the budget's
# keypoints. The crop the peelers find (the picture without the frame) gets a budget of its
# own. On the tuning split (`bench_robustness.py --library`) describing up to two such crops,
# upright, found 55 more of the 2,100 copies (screenshots 0.31 -> 0.57) with no false match
# (mirrored too: 57, for twice the cost; one crop: 21). They are searched only when the picture
# as found matched nothing; a picture with no frame has no such crop and costs nothing more.
PEELED_VIEWS = 2
# A crop that keeps more than this share of the picture's area (a thin border, a toolbar) gives
# the picture inside little it does not already have: the spread over the picture as found
# spends that share of the budget on it. Such crops are not described (the wallpapers of
# scripts/bench_matcher.py have 41 crops, 12 of them over 0.85).
PEELED_MAX_SHARE = 0.85


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoint positions (float32, n x 2) and descriptors (uint8, n x 32) of one picture."""

    points: np.ndarray
    descriptors: np.ndarray
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.points)

    def pack(self) -> bytes:
        """The registration blob: header, then uint16 positions, then descriptors."""
        points = np.round(self.points).astype("<u2")
        return (_HEADER.pack(MAGIC, *self.size, len(self)) + points.tobytes()
                + np.ascontiguousarray(self.descriptors, np.uint8).tobytes())

    @classmethod
    def unpack(cls, blob: bytes) -> LocalFeatures:
        magic, width, height, count = _HEADER.unpack_from(blob)
        if magic != MAGIC:
            raise ValueError("not a local-feature code")
        start = _HEADER.size
        points = np.frombuffer(blob, "<u2", count * 2, start).reshape(count, 2)
        descriptors = np.frombuffer(blob, np.uint8, count * DESCRIPTOR_BYTES, start + count * 4)
        return cls(points.astype(np.float32), descriptors.reshape(count, DESCRIPTOR_BYTES),
                   (width, height))


def _grey(image: Image.Image, side: int) -> np.ndarray:
    grey = image.convert("L")
    scale = side / max(grey.size)
    if scale < 1:
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(grey)


# The FAST corner threshold: 4 (OpenCV's default is 20). A soft picture (gradients, bokeh: the
# adwaita wallpapers find 0-22 corners at 12) finds 50-270 at 4; in a sharp one the strongest
# corners still come first (see spread).
FAST_THRESHOLD = 4


# ORB's pyramid: each level 1.2 times smaller than the one before.
SCALE_FACTOR = 1.2


def _orb(features: int, threshold: int = FAST_THRESHOLD) -> cv2.ORB:
    # Edge margin 15 matches the 31-px patch at the first level.
    return cv2.ORB_create(nfeatures=features, scaleFactor=SCALE_FACTOR, nlevels=8,
                          edgeThreshold=15, patchSize=31, fastThreshold=threshold)


# Smaller pictures (a 1x1 lazy-load placeholder, an icon) have no room for one ORB patch at
# every pyramid level, and OpenCV's pyramid then fails an assertion: they have no features.
MIN_SIDE = 64


# Keypoints are chosen spread over the picture, not by corner strength alone: a screenshot's
# page, a meme's letters or a caption's text have the strongest corners of the frame and would
# otherwise take the whole budget from the picture they frame, and a photo's sharp subject
# would leave its softer background undescribed (a crop of that background then had nothing to
# match). Corners are detected generously (DETECT_FACTOR times the budget, at the soft
# threshold) and each square of a SPREAD_GRID x SPREAD_GRID board gets its share first, the
# strongest first; what is left of the budget goes to the strongest of the rest.
# On the tuning split (`scripts/bench_robustness.py --library`), spreading found 12% more of
# the copies the global stage left (screenshots 3x), at 11 ms more per query on one core.
SPREAD_GRID = 8
DETECT_FACTOR = 4


def spread(keypoints: Sequence[cv2.KeyPoint], budget: int, shape: tuple[int, ...]) -> list:
    """At most `budget` of `keypoints`, each square of the board's share first."""
    if len(keypoints) <= budget:
        return list(keypoints)
    height, width = shape[:2]
    points = cv2.KeyPoint_convert(keypoints)
    # Strongest first; a stable sort keeps the detector's order among equals.
    ranked = np.argsort(-np.array([k.response for k in keypoints], np.float32), kind="stable")
    columns = np.minimum(SPREAD_GRID - 1, (points[ranked, 0] * SPREAD_GRID / width).astype(int))
    rows = np.minimum(SPREAD_GRID - 1, (points[ranked, 1] * SPREAD_GRID / height).astype(int))
    cells = rows * SPREAD_GRID + columns
    # Each keypoint's rank among the stronger ones of its square.
    by_cell = np.argsort(cells, kind="stable")
    ordered = cells[by_cell]
    rank = np.empty(len(cells), np.int64)
    rank[by_cell] = np.arange(len(cells)) - np.searchsorted(ordered, ordered, side="left")
    quota = max(1, budget // (SPREAD_GRID * SPREAD_GRID))
    first = rank < quota
    chosen, rest = ranked[first], ranked[~first]
    picked = np.concatenate([chosen[:budget], rest[:max(0, budget - len(chosen))]])
    return [keypoints[i] for i in picked]


def _none(grey: np.ndarray) -> LocalFeatures:
    return LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8),
                         (grey.shape[1], grey.shape[0]))


def _chosen(grey: np.ndarray, features: int) -> tuple[cv2.ORB, list]:
    """The detector and the keypoints it chose, spread, on a picture at least MIN_SIDE."""
    orb = _orb(features * DETECT_FACTOR)
    return orb, spread(orb.detect(grey, None), features, grey.shape)


def _described(orb: cv2.ORB, grey: np.ndarray, keypoints: list, features: int
               ) -> LocalFeatures:
    keypoints, descriptors = orb.compute(grey, keypoints)
    if descriptors is None or not keypoints:
        return _none(grey)
    points = np.array([k.pt for k in keypoints[:features]], dtype=np.float32)
    return LocalFeatures(points, descriptors[:features], (grey.shape[1], grey.shape[0]))


def describe(grey: np.ndarray, features: int) -> LocalFeatures:
    """ORB keypoints, spread over the picture, and their descriptors, of a grey picture
    (uint8, h x w); none for a picture smaller than MIN_SIDE on a side."""
    if min(grey.shape[:2]) < MIN_SIDE:
        return _none(grey)
    orb, keypoints = _chosen(grey, features)
    return _described(orb, grey, keypoints, features)


def mirrored_keypoint(keypoint: cv2.KeyPoint, width: int) -> cv2.KeyPoint:
    """Where ORB finds `keypoint` of a picture `width` wide in its mirror image.

    ORB detects on each pyramid level and scales positions back by 1.2 ** level, so the mirror
    is taken on the level's own pixels (its width rounded as OpenCV rounds it); the corner's
    orientation turns from a to 180 - a. Described there, the mirror's keypoints are bit for
    bit those ORB detects on the mirrored picture (tests/test_local_signal.py), at no second
    detection.
    """
    scale = SCALE_FACTOR ** keypoint.octave
    x = (round(width / scale) - 1 - keypoint.pt[0] / scale) * scale
    return cv2.KeyPoint(x, keypoint.pt[1], keypoint.size, (180.0 - keypoint.angle) % 360.0,
                        keypoint.response, keypoint.octave, keypoint.class_id)


def describe_both(grey: np.ndarray, features: int) -> tuple[LocalFeatures, LocalFeatures]:
    """`describe` of the picture, upright and mirrored, the mirror's keypoints being the
    upright's mirrored (see mirrored_keypoint)."""
    mirror = np.ascontiguousarray(grey[:, ::-1])
    if min(grey.shape[:2]) < MIN_SIDE:
        return _none(grey), _none(mirror)
    orb, keypoints = _chosen(grey, features)
    width = grey.shape[1]
    return (_described(orb, grey, keypoints, features),
            _described(orb, mirror, [mirrored_keypoint(k, width) for k in keypoints], features))


class LocalSignal(SignalType):
    name: ClassVar[str] = "local"
    bits: ClassVar[int] = DESCRIPTOR_BYTES * 8
    # Not a Hamming threshold on a whole code: the verifier decides (matcher/verification.py).
    threshold: ClassVar[int] = 0
    geometric: ClassVar[bool] = True

    @property
    def exact(self) -> bool:
        return False

    def features(self, image: Image.Image) -> LocalFeatures:
        """The picture described at its working size and again at half of it, in one set
        (positions in working-size pixels): a copy shown small (a screenshot, a thumbnail in a
        page) matches the half-size corners, which the full size's grain and fine detail
        would otherwise crowd out of the cap."""
        grey = _grey(image, WORKING_SIDE)
        full = describe(grey, REGISTER_FEATURES - HALF_SIZE_FEATURES)
        small = Image.fromarray(grey).reduce(2)
        half = describe(np.asarray(small), HALF_SIZE_FEATURES)
        scale = np.float32([grey.shape[1] / max(small.width, 1),
                            grey.shape[0] / max(small.height, 1)])
        return LocalFeatures(np.vstack([full.points, half.points * scale]),
                             np.vstack([full.descriptors, half.descriptors]), full.size)

    def hash_image(self, image: Image.Image) -> ImageHash:
        """The registration blob; its quality is the keypoints found (at most 100)."""
        found = self.features(image)
        return ImageHash(found.pack(), min(100, len(found)))

    def registrable(self, code: ImageHash) -> bool:
        return _HEADER.unpack_from(code.code)[3] >= MIN_FEATURES

    def finds(self, code: bytes, image: Image.Image) -> bool:
        """Whether the verifier confirms the registered `code` in `image` (as a query)."""
        from matcher.verification import verify

        picture = LocalFeatures.unpack(code)
        rows = self.query_rows(image)
        return any(verify(points, descriptors, picture, query_size(rows, group)).confirmed
                   for group, (points, descriptors) in split_query(rows).items())

    def query_rows(self, image: Image.Image, peeled: Sequence[Image.Image] = ()) -> np.ndarray:
        """The query's keypoints as rows of QUERY_ROW_BYTES (see the module's row format): the
        picture as found, upright and mirrored, then up to PEELED_VIEWS of the crops the
        peelers found in it (matcher/views.py query_views), upright."""
        area = image.width * image.height
        framed = [crop for crop in peeled if crop.width * crop.height <= PEELED_MAX_SHARE * area]
        rows = []
        for view, picture in enumerate([image, *framed[:PEELED_VIEWS]]):
            grey = _grey(picture, QUERY_SIDE)
            sides = (zip((UPRIGHT, MIRRORED), describe_both(grey, QUERY_FEATURES), strict=True)
                     if view == 0
                     else [(UPRIGHT, describe(grey, QUERY_FEATURES))])
            described = []
            for orientation, found in sides:
                head = np.zeros((len(found), 5), np.uint8)
                head[:, :4] = np.round(found.points).astype("<u2").view(np.uint8).reshape(-1, 4)
                head[:, 4] = 2 * view + orientation
                described.append(np.hstack([head, found.descriptors]))
            if sum(len(part) for part in described):
                size = np.zeros((1, QUERY_ROW_BYTES), np.uint8)
                size[0, :4] = np.array([grey.shape[1], grey.shape[0]], "<u2").view(np.uint8)
                size[0, 4] = SIZE_ROW | view
                rows.extend([*described, size])
        if not rows:
            return np.zeros((0, QUERY_ROW_BYTES), np.uint8)
        return np.ascontiguousarray(np.vstack(rows))

    def distance(self, a: bytes, b: bytes) -> int:
        raise TypeError("local features are compared by geometric verification, not distance")

    def parse(self, text: str) -> bytes:
        raise ValueError("local features are computed from the picture itself; a hash list "
                         "cannot hold them (register the picture)")

    def format(self, code: bytes) -> str:
        return f"<{_HEADER.unpack_from(code)[3]} local features>"


def query_size(rows: np.ndarray, group: int = 0) -> tuple[int, int]:
    """The (width, height) of the view whose keypoints are `group`; rows without a size row
    are taken as a working-size square."""
    rows = np.ascontiguousarray(rows, np.uint8).reshape(-1, QUERY_ROW_BYTES)
    marked = rows[rows[:, 4] == (SIZE_ROW | (group // 2))]
    if not len(marked):
        return QUERY_SIDE, QUERY_SIDE
    width, height = np.ascontiguousarray(marked[0, :4]).view("<u2").tolist()
    return int(width), int(height)


def view_of(group: int) -> int:
    """The view a group of query rows describes: 0 for the picture as found."""
    return group // 2


def is_mirrored(group: int) -> bool:
    return group % 2 == MIRRORED


def split_query(rows: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Query rows by group, the picture as found first: {group: (points float32 n x 2,
    descriptors n x 32)}."""
    rows = np.ascontiguousarray(rows, np.uint8).reshape(-1, QUERY_ROW_BYTES)
    parts = {}
    for group in sorted(set(rows[:, 4].tolist())):
        if group & SIZE_ROW:
            continue
        chosen = rows[rows[:, 4] == group]
        points = np.ascontiguousarray(chosen[:, :4]).view("<u2").reshape(-1, 2)
        parts[group] = (points.astype(np.float32), np.ascontiguousarray(chosen[:, 5:]))
    return parts
