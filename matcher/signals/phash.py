"""pHash (imagehash's DCT hash, 64 bits): a second, independent perceptual signal.

It is cheap and reacts differently from PDQ to some edits; a strict threshold keeps its much
smaller bit count from producing false matches.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.fft
from PIL import Image

from matcher.signals.base import ImageHash, SignalType

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
        return _hash_low(_low_dct(small))

    def hash_dihedral(self, image: Image.Image) -> list[ImageHash]:
        # Mirroring a picture flips the sign of its odd DCT coefficients along that axis, and
        # transposing it transposes them: the eight orientations come from one DCT.
        small = image.convert("L").resize((_PHASH_INPUT, _PHASH_INPUT), Image.Resampling.LANCZOS)
        low = _low_dct(small)
        signs = np.where(np.arange(8) % 2 == 0, 1.0, -1.0)
        hashes = []
        for matrix in (low, low.T):
            for rows, cols in ((False, False), (False, True), (True, False), (True, True)):
                oriented = matrix * (signs[:, None] if rows else 1.0) * (
                    signs[None, :] if cols else 1.0)
                hashes.append(_hash_low(oriented))
        return hashes


def _low_dct(small: Image.Image) -> np.ndarray:
    """The 8x8 lowest frequencies of the 32x32 picture's DCT, as imagehash.phash takes them."""
    pixels = np.asarray(small, dtype=np.float64)
    return scipy.fft.dct(scipy.fft.dct(pixels, axis=0), axis=1)[:8, :8]


def _hash_low(low: np.ndarray) -> ImageHash:
    # Bit for bit imagehash.phash: each coefficient above the median is a one.
    median = np.median(low)
    spread = float(np.median(np.abs(low - median)))
    return ImageHash(np.packbits(low > median).tobytes(), min(100, int(spread / 5)))
