"""Safe, fast image decoding: the first thing the matcher does with bytes it was handed.

Crawled files are hostile by default. Decoding sniffs the real format from the magic bytes (the
Content-Type or file name are not trusted), refuses decompression bombs before any pixel is
decoded, and asks libjpeg for a reduced-size decode because hashes only need a few hundred
pixels per side. Every failure is an `UnreadableImage` with a sentence a person can act on.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from engines.media import describe_non_media, sniff_media

# Hashes are computed on a 64x64 (PDQ) or 32x32 (pHash) reduction, and the canonicaliser looks
# for borders and frames; 512 pixels on the long side keep all of that accurate at a fraction
# of the cost of a full 12-megapixel decode.
WORKING_SIZE = 512

# 100 megapixels is larger than any photo a phone or camera takes; anything larger that arrives
# from the web is a decompression bomb or not worth the memory it would cost to find out.
MAX_PIXELS = 100_000_000

# Pixels are not all the same size: 100 megapixels of 16-bit RGBA are 800 MB once decoded.
# Decoding stops before it would hold more than this many bytes of pixels (after libjpeg's
# reduced decode, so a 200-megapixel phone JPEG still reads): with the copies made while
# converting, a hashing process stays well under 512 MB on any file.
MAX_DECODED_BYTES = 160 * 1024 * 1024

# Bytes Pillow keeps per pixel in each mode (multi-band modes are stored 4 bytes a pixel).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2,
                    "LA": 4, "PA": 4, "La": 4, "RGB": 4, "RGBA": 4, "RGBa": 4, "RGBX": 4,
                    "CMYK": 4, "YCbCr": 4, "LAB": 4, "HSV": 4, "I": 4, "F": 4}

# A truncated file must fail loudly, never decode to a half-grey image that hashes as something.
ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

class UnreadableImage(ValueError):
    """A file that cannot be hashed as an image; the message says why in plain words."""


def sniff_format(data: bytes) -> str | None:
    """The image format named by the file's magic bytes, or None if it is not an image we read."""
    media = sniff_media(data)
    return media.format if media is not None and media.kind == "image" else None


def decode_image(data: bytes, working_size: int = WORKING_SIZE) -> Image.Image:
    """Decode `data` to an RGB image no larger than about `working_size` on its long side.

    Raises UnreadableImage for empty, non-image, oversized, truncated or corrupt input.
    """
    if not data:
        raise UnreadableImage("empty file: zero bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnreadableImage(describe_non_media(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise UnreadableImage(
                    f"refused as a decompression bomb: {width}x{height} pixels is over the "
                    f"limit of {MAX_PIXELS:,}"
                )
            if width < 1 or height < 1:
                raise UnreadableImage(f"image has no pixels ({width}x{height})")
            if image.format == "JPEG":
                image.draft("RGB", (working_size, working_size))
            decoded = image.size[0] * image.size[1] * _BYTES_PER_PIXEL.get(image.mode, 8)
            if decoded > MAX_DECODED_BYTES:
                raise UnreadableImage(
                    f"refused as a decompression bomb: {width}x{height} {image.mode} pixels "
                    f"would take {decoded // 2**20:,} MB to decode (limit "
                    f"{MAX_DECODED_BYTES // 2**20} MB)")
            image.load()
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"refused as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableImage(f"corrupt {fmt} file: the decoder does not recognise it") from exc
    except OSError as exc:
        raise UnreadableImage(f"truncated or corrupt {fmt} file: {exc}") from exc
    except (ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise UnreadableImage(f"corrupt {fmt} file: {exc}") from exc
    return _to_working_rgb(image, working_size)


def _to_working_rgb(image: Image.Image, working_size: int) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white: transparent areas of a re-posted PNG show as the page background.
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    elif image.mode.startswith(("I", "F")):
        # 16-bit and float greyscale: Pillow's convert clips at 255 and would turn the whole
        # picture white; scale the real range down to 8 bits instead (on the working-size
        # copy: the full picture as float64 would be twice the size of its 32-bit pixels).
        if max(image.size) > working_size:
            # No reducing_gap: Pillow's reduce() does not take 16-bit modes.
            image.thumbnail((working_size, working_size), Image.Resampling.BILINEAR,
                            reducing_gap=None)
        pixels = np.asarray(image, dtype=np.float32)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else pixels * 0
        image = Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    elif image.mode != "RGB":
        image = image.convert("RGB")
    if max(image.size) > working_size:
        image = image.copy()
        image.thumbnail((working_size, working_size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image
