"""Safe, fast image decoding: the first thing the matcher does with bytes it was handed.

Crawled files are hostile by default. Decoding sniffs the real format from the magic bytes (the
Content-Type or file name are not trusted) and hands the file to that format's reader only
(Pillow's own, AVIF included; pillow-heif for HEIC, registered the first time one arrives),
refuses decompression bombs before any pixel is decoded, and asks libjpeg for a reduced-size
decode because hashes only need a few hundred pixels per side. Every failure is an
`UnreadableImage` with a sentence a person can act on. The frames of an animated picture are
read by matcher/video.py through the same opening and guards.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError, features

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


# The Pillow reader each sniffed format is opened with, and only that one: a file is never
# handed to a reader its bytes do not name (pillow-heif also claims some AVIF brands).
_PILLOW_FORMATS = {"jpeg": ("JPEG",), "png": ("PNG",), "gif": ("GIF",), "bmp": ("BMP",),
                   "tiff": ("TIFF",), "webp": ("WEBP",), "avif": ("AVIF",), "heic": ("HEIF",)}


@functools.cache
def _heif_reader() -> None:
    """Teach Pillow HEIC, once, the first time a HEIC file arrives (pillow-heif costs an import
    and a plugin registration that most runs never need). Embedded thumbnails, depth maps and
    auxiliary images are not read: only the primary picture is hashed, and a file's
    "thumbnail" could be any picture at all."""
    try:
        import pillow_heif
    except ImportError as exc:
        raise UnreadableImage(
            "HEIC picture, but pillow-heif (the HEIC reader) is not installed") from exc
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _prepare_reader(fmt: str) -> None:
    """Make sure Pillow can read `fmt`, or say in a sentence why this installation cannot."""
    if fmt == "heic":
        _heif_reader()
    elif fmt == "avif" and not features.check("avif"):
        raise UnreadableImage("AVIF picture, but this Pillow was built without its AVIF reader")


def sniff_format(data: bytes) -> str | None:
    """The image format named by the file's magic bytes, or None if it is not an image we read."""
    media = sniff_media(data)
    return media.format if media is not None and media.kind == "image" else None


@contextmanager
def decoding_errors(fmt: str) -> Iterator[None]:
    """Turn whatever a Pillow reader raises on a hostile or broken `fmt` file into an
    UnreadableImage with a sentence, so no caller needs to know each reader's exceptions."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"refused as a decompression bomb: {_plain(exc)}") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableImage(
            f"truncated or corrupt {fmt} file: the {fmt} reader does not recognise it") from exc
    except OSError as exc:
        raise UnreadableImage(f"truncated or corrupt {fmt} file: {_plain(exc)}") from exc
    except (ValueError, SyntaxError, EOFError, MemoryError, RuntimeError) as exc:
        raise UnreadableImage(f"truncated or corrupt {fmt} file: {_plain(exc)}") from exc


def _plain(exc: BaseException) -> str:
    """A reader's error on one line (libheif's end in a newline), or its kind if it is silent."""
    return " ".join(str(exc).split()) or type(exc).__name__


def open_image(data: bytes) -> tuple[str, Image.Image]:
    """(format, picture) with the picture's header read and its size checked, but no pixel
    decoded yet: what a caller needs to decide how to decode it (one picture or the frames of
    an animation). Raises UnreadableImage for empty, non-image, oversized or corrupt input."""
    if not data:
        raise UnreadableImage("empty file: zero bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnreadableImage(describe_non_media(data))
    _prepare_reader(fmt)
    with decoding_errors(fmt):
        # Every reader here reads only the header on open (pillow-heif and libavif parse the
        # container, not the pixels), so the size is known before any decoding cost.
        image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[fmt])
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise UnreadableImage(
                f"refused as a decompression bomb: {width}x{height} pixels is over the "
                f"limit of {MAX_PIXELS:,}"
            )
        if width < 1 or height < 1:
            raise UnreadableImage(f"image has no pixels ({width}x{height})")
    return fmt, image


def check_decoded_size(image: Image.Image, bytes_per_pixel: int | None = None,
                       kind: str | None = None) -> None:
    """Refuse a picture whose pixels, decoded, would take more than MAX_DECODED_BYTES.

    `bytes_per_pixel` overrides the mode's own for a picture decoded otherwise than one frame
    in its own mode (an animation: say which with `kind`, e.g. "animated")."""
    width, height = image.size
    per_pixel = bytes_per_pixel or _BYTES_PER_PIXEL.get(image.mode, 8)
    decoded = width * height * per_pixel
    if decoded > MAX_DECODED_BYTES:
        raise UnreadableImage(
            f"refused as a decompression bomb: {width}x{height} {kind or image.mode} pixels "
            f"would take {decoded // 2**20:,} MB to decode (limit "
            f"{MAX_DECODED_BYTES // 2**20} MB)")


def decode_opened(fmt: str, image: Image.Image, working_size: int = WORKING_SIZE
                  ) -> Image.Image:
    """The picture `open_image` opened, decoded to RGB no larger than about `working_size`."""
    with decoding_errors(fmt):
        if image.format == "JPEG":
            image.draft("RGB", (working_size, working_size))
        check_decoded_size(image)
        image.load()
    return working_rgb(image, working_size)


def decode_image(data: bytes, working_size: int = WORKING_SIZE) -> Image.Image:
    """Decode `data` to an RGB image no larger than about `working_size` on its long side
    (an animated picture's first frame; matcher/video.py reads all of its frames).

    Raises UnreadableImage for empty, non-image, oversized, truncated or corrupt input.
    """
    fmt, image = open_image(data)
    return decode_opened(fmt, image, working_size)


def working_rgb(image: Image.Image, working_size: int = WORKING_SIZE) -> Image.Image:
    """A decoded picture as RGB no larger than about `working_size`: transparency on white,
    deep greyscale scaled to 8 bits. May return `image` itself when it is already so."""
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
