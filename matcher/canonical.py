"""Canonicalisation: strip what re-uploaders wrap around an image before it is hashed.

Letterbox bars, caption bands, uniform padding and the flat chrome of a screenshot (browser
toolbars, page margins, text lines on a plain background) all move a perceptual hash far from
the original. Each peeler below removes one kind of wrapping by taking flat lines off the sides.
None of them can tell a caption band from a plain sky for certain, so the query is hashed in
every distinct view they produce, and the uncropped view is always among them: peeling too far
costs a wasted hash, never a missed match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Peeling that would leave less than this share of either side means the image itself is flat
# (a graphic, a gradient): then nothing is trimmed rather than hashing a sliver.
MIN_KEPT_SHARE = 0.25

# Boxes are found on a copy this size on its long side: peeling needs line-level precision only
# to within a few pixels of the working image, and medians over 1/10 of the pixels cost 1/10.
SEARCH_SIZE = 160

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


@dataclass(frozen=True)
class Peeler:
    """Takes lines off each side while at least `share` of their pixels are within `tolerance`
    levels of a reference colour: the side's outermost line (`fixed_colour`), or each line's
    own median (for chrome whose colour changes from bar to bar)."""

    tolerance: int
    share: float
    fixed_colour: bool
    # Move each cut to the strongest straight edge inside the peeled run: a permissive share
    # lets a band's run spill into a picture of the band's colour, but the band still ends at
    # the sharpest line-to-line change, where the picture starts.
    snap_to_edge: bool = False

    def _near(self, lines: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Which pixels of `lines` (..., length, 3) are within `tolerance` of `reference` in
        every channel: |pixel - reference| <= tolerance as integer bounds (a median may end
        in .5; the bounds round inwards, so the test is exact), the channels combined by hand
        (numpy's reductions over a last axis of 3 cost more than the comparisons)."""
        low = np.ceil(reference - self.tolerance).astype(np.int16)
        high = np.floor(reference + self.tolerance).astype(np.int16)
        inside = (lines >= low) & (lines <= high)
        return inside[..., 0] & inside[..., 1] & inside[..., 2]

    def _flat(self, lines: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
        """Which of `lines` (n, length, 3) are flat against `reference` (or their own median).

        A fixed-colour peeler without a reference has no band on that side: nothing is flat.
        """
        if reference is None:
            if self.fixed_colour:
                return np.zeros(len(lines), dtype=bool)
            reference = np.median(lines, axis=1, keepdims=True)
        near = self._near(lines, reference)
        return np.count_nonzero(near, axis=1) / near.shape[1] >= self.share

    def _run(self, lines: np.ndarray, reference: np.ndarray | None) -> int:
        """How many of `lines`, from the first on, are flat in a row."""
        # Lines are judged one by one, so they are judged in growing blocks (1, 4, 16, ...
        # lines) up to the first that is not flat: most pictures have no band at all, and a
        # band is a few lines of a hundred.
        done, block = 0, 1
        while done < len(lines):
            flat = self._flat(lines[done : done + block], reference)
            if not flat.all():
                return done + int(np.argmin(flat))
            done, block = done + len(flat), block * 4
        return len(lines)

    def _edge_colour(self, line: np.ndarray) -> np.ndarray | None:
        """The colour of an outermost line when the line is one colour, else None (no band)."""
        colour = np.median(line, axis=0)[None, None, :]
        uniform = self._near(line[None], colour)
        return colour if np.count_nonzero(uniform) / uniform.size >= max(self.share, 0.9) \
            else None

    @staticmethod
    def _change(lines: np.ndarray) -> np.ndarray:
        """change[b] is the mean (over a line) of the largest channel step between lines b and
        b + 1."""
        step = np.abs(np.diff(lines, axis=0))
        return np.maximum(np.maximum(step[..., 0], step[..., 1]), step[..., 2]).mean(axis=1)

    def _span(self, lines: np.ndarray, first: np.ndarray | None, last: np.ndarray | None
              ) -> tuple[int, int]:
        start = self._run(lines, first)
        end = len(lines) - self._run(lines[::-1], last)
        if self.snap_to_edge and start < end:
            # The step between lines b - 1 and b is change(lines)[b - 1]; a cut at b keeps
            # lines[b:]. Only the steps inside each peeled run are needed.
            if start > 0:
                start = 1 + int(np.argmax(self._change(lines[: start + 1])))
            if end < len(lines):
                end = end + int(np.argmax(self._change(lines[end - 1 :])))
        return start, max(start, end)

    def box(self, pixels: np.ndarray) -> Box:
        height, width = pixels.shape[:2]
        # A band's colour is the colour of the image's outermost line on that side, fixed for
        # every round: re-reading it from the peeled region would take the picture's own edge
        # colour as the band's and peel into the picture.
        refs: list[np.ndarray | None] = [None] * 4
        if self.fixed_colour:
            refs = [self._edge_colour(line) for line in
                    (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1])]
        box = Box(0, 0, width, height)
        # Judging lines by their own median, a side stops once it has been cut: its edge is
        # found, and peeling on from inside would eat into flat picture content. Uncut sides
        # get another round, since removing a toolbar can make the columns beside it flat.
        # Against a fixed band colour, rounds may go on: the colour keeps them in the band.
        settled = [False] * 4
        for _ in range(MAX_ROUNDS):
            region = pixels[box.top : box.bottom, box.left : box.right]
            top, bottom = self._span(region, refs[0], refs[1])
            left, right = self._span(region.transpose(1, 0, 2), refs[2], refs[3])
            cuts = [top, box.height - bottom, left, box.width - right]
            cuts = [0 if done else cut for done, cut in zip(settled, cuts, strict=True)]
            if not self.fixed_colour:
                settled = [done or cut > 0 for done, cut in zip(settled, cuts, strict=True)]
            new = Box(box.left + cuts[2], box.top + cuts[0], box.right - cuts[3],
                      box.bottom - cuts[1])
            if new.width < MIN_KEPT_SHARE * width or new.height < MIN_KEPT_SHARE * height:
                return Box(0, 0, width, height)
            if new == box:
                break
            box = new
        return box


# Letterbox bars and padding: exactly one colour, give or take JPEG noise.
BORDERS = Peeler(tolerance=20, share=0.97, fixed_colour=True)

# Caption and meme bands: one background colour with text on it. On the reduced search copy,
# anti-aliased glyphs grey up to 60% of a text line, so 35% of background keeps it in the band.
BANDS = Peeler(tolerance=28, share=0.35, fixed_colour=True, snap_to_edge=True)

# Screenshot chrome: tab strips, toolbars, page margins and text lines, each bar its own flat
# colour; the embedded picture is what is left when all of them are gone.
CHROME = Peeler(tolerance=16, share=0.6, fixed_colour=False, snap_to_edge=True)

PEELERS: dict[str, Peeler] = {"borders": BORDERS, "bands": BANDS, "chrome": CHROME}


def _boxes(image: Image.Image, peelers: dict[str, Peeler]) -> dict[str, Box]:
    """Each peeler's box for `image`, found on one reduced copy, in the image's pixels."""
    pixels, scale = _search_pixels(image)
    return {name: _scale_box(peeler.box(pixels), scale, image.size)
            for name, peeler in peelers.items()}


def peeled_views(image: Image.Image) -> dict[str, Image.Image]:
    """Each distinct crop the peelers find, named by the first peeler that found it."""
    views: dict[str, Image.Image] = {}
    seen = {Box(0, 0, *image.size)}
    for name, box in _boxes(image, PEELERS).items():
        if box not in seen:
            seen.add(box)
            views[name] = image.crop(box.as_tuple())
    return views


def trim_borders(image: Image.Image) -> Image.Image:
    """The image without uniform borders (the image itself when it has none)."""
    box = _boxes(image, {"borders": BORDERS})["borders"]
    return image if (box.width, box.height) == image.size else image.crop(box.as_tuple())


def _search_pixels(image: Image.Image) -> tuple[np.ndarray, float]:
    """The image reduced to SEARCH_SIZE as int16 pixels, and the factor back to full size."""
    scale = max(1.0, max(image.size) / SEARCH_SIZE)
    small = image.convert("RGB")
    if scale > 1.0:
        size = (max(1, round(image.width / scale)), max(1, round(image.height / scale)))
        small = small.resize(size, Image.Resampling.BOX)
    return np.asarray(small, dtype=np.int16), scale


def _scale_box(box: Box, scale: float, size: tuple[int, int]) -> Box:
    """A box found on the reduced copy, in the full image's pixels.

    A reduced pixel at a cut mixes border and picture, so each cut side moves one reduced pixel
    inwards: losing a sliver of picture costs a hash nothing, keeping a line of black border
    next to a smooth sky moves it by half its bits. Uncut sides stay exactly at the frame.
    """
    width, height = size
    if scale <= 1.0:
        return box
    small_w, small_h = round(width / scale), round(height / scale)
    left = math.ceil((box.left + 1) * scale) if box.left > 0 else 0
    top = math.ceil((box.top + 1) * scale) if box.top > 0 else 0
    right = math.floor((box.right - 1) * scale) if box.right < small_w else width
    bottom = math.floor((box.bottom - 1) * scale) if box.bottom < small_h else height
    if right <= left or bottom <= top:
        return Box(0, 0, width, height)
    return Box(left, top, right, bottom)
