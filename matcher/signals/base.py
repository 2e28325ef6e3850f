"""The interface every signal type (hash algorithm) implements.

Shaped after python-threatexchange's SignalType (written here, not copied): the bank, the
index, the CLI and the matcher only talk to this interface, so adding an algorithm means adding
one module in this package and one line in its registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class ImageHash:
    """One hash of one view of an image, with the algorithm's own quality score (0-100)."""

    code: bytes
    quality: int = 100


class SignalType(ABC):
    """A hash algorithm: how to compute it, compare it and how close counts as the same image."""

    name: ClassVar[str]
    bits: ClassVar[int]
    # The largest Hamming distance still treated as the same image (inclusive).
    threshold: ClassVar[int]
    # Hashes with a quality below this are too unreliable to register or to match on.
    min_quality: ClassVar[int] = 0
    # True when the hash is of the file's bytes, not of its pixels (no views, no dihedral).
    hashes_bytes: ClassVar[bool] = False
    # True for local features (matcher/signals/local.py): many descriptors per picture, matched
    # by geometric verification in matcher/verification.py rather than by one code's distance.
    # The global stage (views, eight orientations, Hamming search) leaves such signals out.
    geometric: ClassVar[bool] = False

    @property
    def nbytes(self) -> int:
        return self.bits // 8

    @property
    def exact(self) -> bool:
        """Only identical hashes match: looked up by value, no similarity index needed."""
        return self.threshold == 0

    def registers_view(self, view_name: str) -> bool:
        """Whether to register this signal for a registration view (see matcher/views.py).

        Every registered view is one more chance for an unrelated picture to collide; a signal
        with few bits can decline the views it gains least from.
        """
        return True

    def registrable(self, hashed: ImageHash) -> bool:
        """Whether a registration hash is good enough to store."""
        return hashed.quality >= self.min_quality

    def hash_bytes(self, data: bytes) -> ImageHash:
        """Hash of the raw file; only byte-level signal types implement it."""
        raise NotImplementedError(f"{self.name} hashes pixels, not bytes")

    @abstractmethod
    def hash_image(self, image: Image.Image) -> ImageHash:
        """Hash of one RGB view, as registered."""

    def hash_dihedral(self, image: Image.Image) -> list[ImageHash]:
        """Hashes of the 8 rotations and mirrors of a view, for querying; the upright one first.

        Hash lists (StopNCII, NCMEC) hold only the hash of the upright original, so rotated and
        mirrored re-uploads are caught on the query side. Subclasses with a cheaper way (PDQ
        computes all 8 from one DCT) override this.
        """
        return [self.hash_image(image)] + [
            self.hash_image(image.transpose(t)) for t in DIHEDRAL_TRANSPOSES
        ]

    def distance(self, a: bytes, b: bytes) -> int:
        return int(np.unpackbits(np.bitwise_xor(np.frombuffer(a, np.uint8),
                                                np.frombuffer(b, np.uint8))).sum())

    def parse(self, text: str) -> bytes:
        """The hash from its standard text form (hex); raises ValueError with a clear reason."""
        text = text.strip().lower()
        if len(text) != self.nbytes * 2:
            raise ValueError(
                f"a {self.name} hash has {self.nbytes * 2} hex digits, this one has {len(text)}"
            )
        try:
            return bytes.fromhex(text)
        except ValueError as exc:
            raise ValueError(f"not a hex {self.name} hash: {text!r}") from exc

    def format(self, code: bytes) -> str:
        return code.hex()


DIHEDRAL_TRANSPOSES = (
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)
