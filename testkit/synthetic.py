"""Generated stand-in pictures for tests and the demo: no real person, no real abuse imagery.

Each picture is a smooth random colour field with random shapes on it: textured enough for
perceptual hashes to score full quality, and different enough between seeds that two pictures
never match each other.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def synthetic_picture(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A reproducible, photo-like RGB picture for `seed`."""
    rng = np.random.default_rng(seed)
    width, height = size
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    field = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(field)
    for _ in range(int(rng.integers(8, 16))):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1 = x0 + int(rng.integers(width // 12, width // 3))
        y1 = y0 + int(rng.integers(height // 12, height // 3))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    field = field.filter(ImageFilter.GaussianBlur(1.5))
    grain = rng.normal(0, 6, (height, width, 3))
    pixels = np.clip(np.asarray(field, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """The picture as file bytes."""
    buffer = io.BytesIO()
    if fmt.upper() == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()
