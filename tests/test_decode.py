"""Hostile and broken files: each gives a clear UnreadableImage, never a crash or a hang."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from matcher.decode import MAX_PIXELS, WORKING_SIZE, UnreadableImage, decode_image, sniff_format
from testkit.synthetic import encode, synthetic_picture


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims to be `width` x `height`: a classic decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML page"),
        (b"\x1f\x8b\x08\x00" + b"\0" * 40, "gzip"),
        (b"\x00\x01\x02garbage" * 10, "unknown format"),
        (png_header_only(50_000, 50_000), "decompression bomb"),
    ],
    ids=["zero-bytes", "html", "gzip", "garbage", "bomb"],
)
def test_unreadable_input_raises_a_clear_reason(data, reason):
    with pytest.raises(UnreadableImage, match=reason):
        decode_image(data)


def test_html_served_with_a_jpeg_signature_is_refused_as_corrupt():
    with pytest.raises(UnreadableImage, match="jpeg"):
        decode_image(b"\xff\xd8\xff<html><body>not really</body></html>")


def test_truncated_jpeg_is_refused_not_half_decoded():
    data = encode(synthetic_picture(1), quality=90)
    with pytest.raises(UnreadableImage, match="truncated or corrupt jpeg"):
        decode_image(data[: len(data) // 2])


def test_bomb_limit_is_above_any_camera_photo():
    assert MAX_PIXELS >= 100_000_000


def test_large_jpeg_is_decoded_at_reduced_size():
    big = synthetic_picture(2, size=(3000, 2000))
    image = decode_image(encode(big))
    assert max(image.size) == WORKING_SIZE
    assert image.mode == "RGB"


def test_transparent_png_is_composited_on_white():
    image = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    assert decode_image(encode(image, "PNG")).getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "WEBP", "TIFF"])
def test_common_formats_are_sniffed_by_content(fmt):
    data = encode(synthetic_picture(3, size=(64, 48)), fmt)
    assert sniff_format(data) == fmt.lower()
    assert decode_image(data).size == (64, 48)


def test_sixteen_bit_greyscale_keeps_its_contrast():
    import io

    import numpy as np

    grey = np.asarray(synthetic_picture(5).convert("L")).astype(np.uint16) * 256
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, "PNG")
    image = decode_image(buffer.getvalue())
    assert np.asarray(image).std() > 20


@pytest.mark.parametrize("mode", ["CMYK", "P", "1", "L", "LA"])
def test_other_modes_decode_to_rgb(mode):
    picture = synthetic_picture(6).convert(mode)
    fmt = "JPEG" if mode in ("CMYK", "L") else "PNG"
    assert decode_image(encode(picture, fmt)).mode == "RGB"


def png_rgba_stream(width: int, height: int) -> bytes:
    """A real, fully decodable RGBA PNG of `width` x `height` black pixels, made row by row so
    that the test never holds the pixels itself (a few MB compressed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    compressor = zlib.compressobj(9)
    row = b"\0" + bytes(width * 4)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) \
        + chunk(b"IEND", b"")


def test_a_bomb_under_the_pixel_limit_is_refused_by_its_decoded_size() -> None:
    # 81 megapixels is under MAX_PIXELS, but as RGBA it would be 324 MB of pixels.
    data = png_rgba_stream(9000, 9000)
    assert MAX_PIXELS > 9000 * 9000
    with pytest.raises(UnreadableImage, match="MB to decode"):
        decode_image(data)


def test_a_large_sixteen_bit_picture_decodes_within_its_budget() -> None:
    image = Image.new("I;16", (3000, 2000))
    image.paste(40_000, (0, 0, 1500, 2000))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    decoded = decode_image(buffer.getvalue())
    assert max(decoded.size) == WORKING_SIZE
    left, right = decoded.getpixel((10, 10)), decoded.getpixel((WORKING_SIZE - 10, 10))
    assert left[0] > 200 and right[0] < 50


BOMB_CHECK = """
import sys
from pathlib import Path
from matcher.decode import UnreadableImage, decode_image
try:
    decode_image(Path(sys.argv[1]).read_bytes())
    print('{"outcome": "decoded"}')
except UnreadableImage:
    print('{"outcome": "refused"}')
"""


@pytest.mark.parametrize("size", [(50_000, 50_000), (9000, 9000)], ids=["claims", "real"])
def test_each_image_bomb_stays_under_512_mb_and_10_s(tmp_path, size) -> None:
    from tests.test_evidence_bundle import measured

    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(*size) if size[0] > 10_000 else png_rgba_stream(*size))
    result = measured(BOMB_CHECK, str(path))
    assert result["outcome"] == "refused"
    assert result["peak"] < 512 * 1024 * 1024 and result["seconds"] < 10, result
