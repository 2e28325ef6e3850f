"""Canonicalisation: strip what re-uploaders wrap around an image before it is hashed.

Letterbox bars, caption bands, uniform padding and the flat chrome of a screenshot (browser
toolbars, page margins, text lines on a plain background) all move a perceptual hash far from
the original. Peeling flat rows and columns off every side until real picture content starts
recovers the picture itself. The same peeling runs at registration, so an image whose own edge
is flat (a plain sky) is canonicalised the same way on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# A pixel belongs to a line's background when each channel is within this many levels of the
# line's median colour: wide enough for JPEG ringing around caption text and UI glyphs.
BACKGROUND_TOLERANCE = 28

# A row or column counts as flat (padding, band, chrome) when at least this share of its pixels
# is background. Caption text and toolbar widgets cover well under 45% of a line; textured
# photo content almost never has 55% of a line within one narrow colour range.
FLAT_SHARE = 0.55

# Peeling that would leave less than this share of either side means the image itself is flat
# (a graphic, a gradient): then nothing is trimmed rather than hashing a sliver.
MIN_KEPT_SHARE = 0.2

# Peeling repeats because removing a toolbar changes which columns look flat; a few rounds
# reach a fixed point on every layout seen in practice.
MAX_ROUNDS = 4


@dataclass(frozen=True)
class Box:
    """A crop box in pixel coordinates, PIL order: left, top, right, bottom (exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)


def _flat_shares(pixels: np.ndarray) -> np.ndarray:
    """For each row of `pixels` (rows, length, 3), the share of its pixels that are background."""
    median = np.median(pixels, axis=1, keepdims=True)
    near = np.abs(pixels - median).max(axis=2) <= BACKGROUND_TOLERANCE
    return near.mean(axis=1)


def _peel(shares: np.ndarray) -> tuple[int, int]:
    """First and one-past-last index of the non-flat run left after peeling flat lines off both ends."""
    solid = np.flatnonzero(shares < FLAT_SHARE)
    if solid.size == 0:
        return 0, 0
    return int(solid[0]), int(solid[-1]) + 1


def content_box(image: Image.Image) -> Box:
    """The box holding the picture once flat borders, bands and chrome are peeled off."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    height, width = pixels.shape[:2]
    box = Box(0, 0, width, height)
    for _ in range(MAX_ROUNDS):
        region = pixels[box.top : box.bottom, box.left : box.right]
        top, bottom = _peel(_flat_shares(region))
        left, right = _peel(_flat_shares(region.transpose(1, 0, 2)))
        new = Box(box.left + left, box.top + top, box.left + right, box.top + bottom)
        if new.width < MIN_KEPT_SHARE * width or new.height < MIN_KEPT_SHARE * height:
            return Box(0, 0, width, height)
        if new == box:
            break
        box = new
    return box


def canonicalise(image: Image.Image) -> Image.Image:
    """The image cropped to its content box (the image itself when there is nothing to peel)."""
    box = content_box(image)
    if (box.width, box.height) == image.size:
        return image
    return image.crop(box.as_tuple())
