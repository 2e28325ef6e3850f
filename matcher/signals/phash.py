"""pHash (imagehash's DCT hash, 64 bits): a second, independent perceptual signal.

It is cheap and reacts differently from PDQ to some edits; a strict threshold keeps its much
smaller bit count from producing false matches.
"""

from __future__ import annotations

from typing import ClassVar

import imagehash
import numpy as np
import scipy.fft
from PIL import Image

from matcher.signals.base import DIHEDRAL_TRANSPOSES, ImageHash, SignalType

# imagehash's pHash reduces to 32x32 greyscale before its DCT; doing that once lets the eight
# rotations and mirrors be hashed from the small image instead of the full view.
_PHASH_INPUT = 32


class PhashSignal(SignalType):
    name: ClassVar[str] = "phash"
    bits: ClassVar[int] = 64
    # 64 bits leave little room. In scripts/bench_robustness.py unrelated pictures collided at
    # 6 and, rarely, at 4 differing bits; at 3 there were none, for 1.6% less recall overall.
    threshold: ClassVar[int] = 3
    # pHash has no quality score of its own. Each bit says whether one of 64 low-frequency DCT
    # coefficients is above their median, so a bit is only stable when its coefficient sits
    # well away from the median. Ours is the median distance of the coefficients from their
    # median, a fifth of it capped at 100. Flat pictures, gradients and one-directional
    # stripes score under 50 (measured on the wallpaper corpus: 11 to 27), photos 100; their
    # hashes are noise and collide with each other, so they are not matched on.
    min_quality: ClassVar[int] = 50
    # Not registered on tilts (their black corners dominate its lowest frequencies), on the
    # heaviest crops (70% of a side) or on the middle rows: unrelated pictures collided through
    # each in scripts/bench_robustness.py. PDQ, with four times the bits, covers those views.

    def registers_view(self, view_name: str) -> bool:
        return not (view_name.startswith("tilt-") or view_name.endswith("-0.70")
                    or view_name == "middle")

    def hash_image(self, image: Image.Image) -> ImageHash:
        small = image.convert("L").resize((_PHASH_INPUT, _PHASH_INPUT), Image.Resampling.LANCZOS)
        return self._hash_small(small)

    def _hash_small(self, small: Image.Image) -> ImageHash:
        pixels = np.asarray(small, dtype=np.float64)
        low = scipy.fft.dct(scipy.fft.dct(pixels, axis=0, norm=None), axis=1, norm=None)[:8, :8]
        spread = float(np.median(np.abs(low - np.median(low))))
        quality = min(100, int(spread / 5))
        return ImageHash(np.packbits(imagehash.phash(small).hash.flatten()).tobytes(), quality)

    def hash_dihedral(self, image: Image.Image) -> list[ImageHash]:
        small = image.convert("L").resize((_PHASH_INPUT, _PHASH_INPUT), Image.Resampling.LANCZOS)
        views = [small, *(small.transpose(t) for t in DIHEDRAL_TRANSPOSES)]
        return [self._hash_small(view) for view in views]
