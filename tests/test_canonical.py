"""Canonicalisation finds the picture inside what re-uploaders wrap around it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from matcher.canonical import peeled_views, trim_borders
from matcher.signals import SIGNAL_TYPES
from matcher.views import query_views, registration_views
from testkit.edits import caption_bar, letterbox, screenshot
from testkit.synthetic import synthetic_picture

pdq = SIGNAL_TYPES["pdq"]


def best_distance(query: Image.Image, original: Image.Image) -> int:
    reference = pdq.hash_image(original).code
    return min(pdq.distance(h.code, reference)
               for view in query_views(query).values() for h in pdq.hash_dihedral(view))


@pytest.mark.parametrize("edit", [letterbox, caption_bar, screenshot],
                         ids=["letterbox", "caption", "screenshot"])
def test_wrapped_picture_is_recovered_within_a_few_bits_of_the_original(edit):
    original = synthetic_picture(21, size=(480, 360))
    wrapped = edit(original, np.random.default_rng(0))
    assert pdq.distance(pdq.hash_image(wrapped).code, pdq.hash_image(original).code) > 31
    assert best_distance(wrapped, original) <= pdq.threshold - 5


def test_uniform_padding_is_trimmed_exactly_enough_to_leave_no_border():
    original = synthetic_picture(22, size=(300, 200))
    padded = Image.new("RGB", (400, 300), (0, 0, 0))
    padded.paste(original, (50, 50))
    trimmed = trim_borders(padded)
    assert 290 <= trimmed.width <= 300 and 190 <= trimmed.height <= 200
    assert np.asarray(trimmed).reshape(-1, 3).min(axis=1).mean() > 20  # no black line left


def test_picture_without_wrapping_yields_no_extra_views():
    assert peeled_views(synthetic_picture(23)) == {}


def test_flat_picture_is_never_peeled_to_a_sliver():
    flat = Image.new("RGB", (300, 300), (200, 200, 200))
    assert peeled_views(flat) == {}
    assert trim_borders(flat).size == (300, 300)


def test_registration_views_cover_crops_and_tilts_of_the_whole_picture():
    views = registration_views(synthetic_picture(24))
    assert views["full"].size == (640, 480)
    assert {"crop-centre-0.90", "crop-left-0.85", "crop-bottom-0.70", "tilt-+5",
            "tilt-inner--5"} <= set(views)
    assert views["crop-left-0.85"].size == (544, 480)
    assert "trimmed" not in views


def test_picture_with_its_own_uniform_frame_registers_the_framed_and_the_trimmed_view():
    framed = Image.new("RGB", (500, 400), (250, 250, 250))
    framed.paste(synthetic_picture(25, size=(400, 300)), (50, 50))
    views = registration_views(framed)
    assert views["full"].size == (500, 400)
    assert 390 <= views["trimmed"].width <= 400


def test_stripes_are_not_registered_tilted_but_photo_like_pictures_are():
    stripes = np.tile(np.repeat(np.array([40, 200], dtype=np.uint8), 12), 20)[None, :, None]
    picture = Image.fromarray(np.broadcast_to(stripes, (300, 480, 3)).copy())
    assert not any(name.startswith("tilt") for name in registration_views(picture))
    assert "tilt-+5" in registration_views(synthetic_picture(26))
