"""Edited re-uploads of real photos match their own victim and never a neighbouring region.

Uses Debian wallpaper photos (scripts/fetch_wallpapers.sh, run by scripts/test); the full
measurement is scripts/bench_robustness.py, this is its quick, always-on slice.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from matcher.bank import VictimBank
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from testkit.edits import EDITS
from testkit.synthetic import encode
from tests.conftest import wallpapers_dir

PHOTOS = ("nature/Garden.jpg", "nature/TwoWings.jpg", "nature/LadyBird.jpg")
EDIT_NAMES = ("jpeg_q25", "downscale_third", "mirror", "rotate_90", "greyscale", "letterbox",
              "crop_5_each_side", "crop_15_one_side", "rotate_5", "caption_bar")


def photo_regions() -> dict[str, Image.Image]:
    folder = wallpapers_dir()
    if folder is None:
        pytest.skip("wallpaper photos not fetched (scripts/fetch_wallpapers.sh)")
    regions = {}
    for name in PHOTOS:
        with Image.open(folder / "mate" / name) as photo:
            photo.draft("RGB", (1400, 1400))
            image = photo.convert("RGB")
        width, height = image.size
        # Two side-by-side halves: each other's hardest non-match.
        regions[f"{name}#left"] = image.crop((0, 0, width // 2, height))
        regions[f"{name}#right"] = image.crop((width // 2, 0, width, height))
    return regions


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    home = tmp_path_factory.mktemp("robust-home")
    bank = VictimBank.open(url=f"sqlite:///{home / 'bank.sqlite3'}", index_dir=home / "index")
    regions = photo_regions()
    hasher = ImageHasher()
    for victim, region in regions.items():
        bank.add(victim, hasher.registration_hashes(encode(region, quality=95)), "wallpaper")
    return Matcher(bank, hasher), regions


@pytest.mark.wallpapers
@pytest.mark.parametrize("edit_name", EDIT_NAMES)
def test_edited_photo_region_matches_only_its_own_victim(registered, edit_name):
    matcher, regions = registered
    rng = np.random.default_rng(5)
    for victim, region in regions.items():
        found = {m.victim for m in matcher.match_bytes(encode(EDITS[edit_name](region, rng)))}
        assert found == {victim}, f"{victim} {edit_name}: {found}"
