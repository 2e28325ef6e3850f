"""The peelers' vectorised numpy form finds the same boxes, to the pixel, as the form it
replaced (kept below as the reference), on many generated pictures: every edit of
testkit/edits.py of synthetic pictures, bands and letterboxes of random colours and widths,
flat and gradient images, noise, at several sizes; and the line tests agree on random lines
against references ending in .5, as medians of an even count do."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from matcher import canonical
from matcher.canonical import MAX_ROUNDS, MIN_KEPT_SHARE, PEELERS, Box
from testkit.edits import EDITS
from testkit.synthetic import synthetic_picture


@dataclass(frozen=True)
class ReferencePeeler:
    """matcher/canonical.py's Peeler before it was vectorised, line for line."""

    tolerance: int
    share: float
    fixed_colour: bool
    snap_to_edge: bool = False

    def _flat(self, lines, reference):
        if reference is None:
            if self.fixed_colour:
                return np.zeros(len(lines), dtype=bool)
            reference = np.median(lines, axis=1, keepdims=True)
        near = np.abs(lines - reference).max(axis=2) <= self.tolerance
        return near.mean(axis=1) >= self.share

    def _run(self, lines, reference):
        if not self._flat(lines[:1], reference).all():
            return 0
        flat = self._flat(lines, reference)
        return int(np.argmin(flat)) if not flat.all() else len(lines)

    def _edge_colour(self, line):
        colour = np.median(line, axis=0)[None, None, :]
        uniform = np.abs(line[None] - colour).max(axis=2) <= self.tolerance
        return colour if uniform.mean() >= max(self.share, 0.9) else None

    def _span(self, lines, first, last):
        start = self._run(lines, first)
        end = len(lines) - self._run(lines[::-1], last)
        if self.snap_to_edge and start < end:
            change = np.abs(np.diff(lines, axis=0)).max(axis=2).mean(axis=1)
            if start > 0:
                start = 1 + int(np.argmax(change[:start]))
            if end < len(lines):
                end = end + int(np.argmax(change[end - 1 :]))
        return start, max(start, end)

    def box(self, pixels):
        height, width = pixels.shape[:2]
        refs = [None] * 4
        if self.fixed_colour:
            refs = [self._edge_colour(line) for line in
                    (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1])]
        box = Box(0, 0, width, height)
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


REFERENCES = {name: ReferencePeeler(p.tolerance, p.share, p.fixed_colour, p.snap_to_edge)
              for name, p in PEELERS.items()}


def banded(rng: np.random.Generator, picture: Image.Image) -> Image.Image:
    """`picture` inside bands or chrome of random colours and widths on random sides, some
    with text-like noise in them."""
    width, height = picture.size
    sides = rng.integers(0, width // 2, 4) * rng.integers(0, 2, 4)
    canvas = np.empty((height + sides[0] + sides[1], width + sides[2] + sides[3], 3), np.uint8)
    canvas[:] = rng.integers(0, 256, 3)
    rows = canvas.shape[0]
    for start in range(0, rows, int(rng.integers(4, 40))):  # bars of their own colours
        if rng.random() < 0.4:
            canvas[start : start + int(rng.integers(2, 12))] = rng.integers(0, 256, 3)
    speckle = rng.random(canvas.shape[:2]) < rng.choice([0.0, 0.05, 0.3])
    canvas[speckle] = rng.integers(0, 256, (int(speckle.sum()), 3))
    canvas[sides[0] : sides[0] + height, sides[2] : sides[2] + width] = np.asarray(picture)
    return Image.fromarray(canvas)


def pictures() -> list[Image.Image]:
    rng = np.random.default_rng(2026)
    found = []
    for seed in range(14):
        size = [(480, 360), (300, 420), (160, 160), (97, 61), (1024, 200)][seed % 5]
        base = synthetic_picture(500 + seed, size=size)
        found.append(base)
        found.extend(edit(base, rng) for edit in EDITS.values())
        found.extend(banded(rng, base) for _ in range(4))
    for seed in range(30):  # flat, gradient and noise images, plain and banded
        width, height = int(rng.integers(20, 400)), int(rng.integers(20, 400))
        kind = seed % 3
        if kind == 0:
            array = np.full((height, width, 3), rng.integers(0, 256, 3), np.uint8)
        elif kind == 1:
            ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
            array = ramp.astype(np.uint8)
        else:
            array = rng.integers(0, 256, (height, width, 3), np.uint8)
        found.append(Image.fromarray(array))
        found.append(banded(rng, Image.fromarray(array)))
    return found


@pytest.fixture(scope="module")
def generated() -> list[Image.Image]:
    found = pictures()
    assert len(found) >= 400
    return found


@pytest.mark.parametrize("name", list(PEELERS))
def test_each_peeler_finds_the_same_box_as_before(name: str, generated) -> None:
    peeler, reference = PEELERS[name], REFERENCES[name]
    differing = []
    cut = 0
    for number, picture in enumerate(generated):
        pixels, _ = canonical._search_pixels(picture)
        box, expected = peeler.box(pixels), reference.box(pixels)
        cut += box != Box(0, 0, pixels.shape[1], pixels.shape[0])
        if box != expected:
            differing.append((number, box, expected))
    assert differing == []
    assert cut >= 50  # the pictures did make the peelers cut, so the boxes were compared


@pytest.mark.parametrize("name", list(PEELERS))
def test_each_line_test_agrees_with_before_on_random_lines(name: str) -> None:
    peeler, reference = PEELERS[name], REFERENCES[name]
    rng = np.random.default_rng(7)
    for _ in range(300):
        count, length = int(rng.integers(1, 30)), int(rng.integers(1, 161))
        colour = rng.integers(0, 256, 3)
        lines = np.clip(colour + rng.integers(-40, 41, (count, length, 3)), 0, 255
                        ).astype(np.int16)
        half = (rng.integers(0, 512, 3) / 2)[None, None, :]  # x.5 as a median of an even count
        for ref in (None, half, np.median(lines[0], axis=0)[None, None, :]):
            assert np.array_equal(peeler._flat(lines, ref), reference._flat(lines, ref))
            assert peeler._run(lines, ref) == reference._run(lines, ref)
            assert peeler._span(lines, ref, ref) == reference._span(lines, ref, ref)
        edge, expected = peeler._edge_colour(lines[0]), reference._edge_colour(lines[0])
        assert (edge is None) == (expected is None)
        assert edge is None or np.array_equal(edge, expected)
