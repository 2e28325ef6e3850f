"""Exact SHA-256 of the file's bytes: catches byte-identical copies at no risk of error.

It also identifies a file in the object store, so a file seen twice is hashed once.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from PIL import Image

from matcher.signals.base import ImageHash, SignalType


class Sha256Signal(SignalType):
    name: ClassVar[str] = "sha256"
    bits: ClassVar[int] = 256
    # Exact: one differing bit is a different file.
    threshold: ClassVar[int] = 0
    hashes_bytes: ClassVar[bool] = True

    def hash_bytes(self, data: bytes) -> ImageHash:
        return ImageHash(hashlib.sha256(data).digest())

    def hash_image(self, image: Image.Image) -> ImageHash:
        raise NotImplementedError("sha256 hashes a file's bytes, not its pixels")

    def hash_dihedral(self, image: Image.Image) -> list[ImageHash]:
        raise NotImplementedError("sha256 hashes a file's bytes, not its pixels")
