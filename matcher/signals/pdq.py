"""PDQ, Meta's 256-bit perceptual hash: the signal StopNCII, NCMEC and HMA share.

Standard PDQ hashes from those lists are registered as they are; our own hashes are bit-for-bit
the reference implementation's (pdqhash wraps Meta's C++ code), so both match each other.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pdqhash
from PIL import Image

from matcher.signals.base import ImageHash, SignalType


def _pack(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


class PdqSignal(SignalType):
    name: ClassVar[str] = "pdq"
    bits: ClassVar[int] = 256
    # Meta's recommended match threshold for PDQ: distance 31 of 256 bits keeps false positives
    # rare across billions of images while still catching recompression and resizing.
    threshold: ClassVar[int] = 31
    # Meta's guidance: hashes with quality under 50 come from near-featureless images (flat
    # colour, gradients) that collide with each other, so they are not matched on.
    min_quality: ClassVar[int] = 50

    def hash_image(self, image: Image.Image) -> ImageHash:
        bits, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
        return ImageHash(_pack(bits), int(quality))

    def hash_dihedral(self, image: Image.Image) -> list[ImageHash]:
        hashes, quality = pdqhash.compute_dihedral(np.asarray(image.convert("RGB")))
        return [ImageHash(_pack(bits), int(quality)) for bits in hashes]
