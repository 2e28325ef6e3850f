"""What a fetched file is, decided by its first bytes.

Sites label files carelessly or deceptively (an image served as text/html, a page served as
image/jpeg), so the crawler and the matcher both trust only the magic bytes. This is the one
place that knows them; the matcher's decoder asks here too.
"""

from __future__ import annotations

from dataclasses import dataclass

_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)

# ISO base media (MP4, MOV, 3GP) brands that carry video rather than a still picture (HEIF and
# AVIF use the same container with brands of their own, which Pillow does not read).
_STILL_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"}
_TS_PACKET = 188


@dataclass(frozen=True)
class MediaType:
    """`kind` is "image" or "video"; `format` is the container or image format."""

    kind: str
    format: str

    @property
    def mime(self) -> str:
        return f"{self.kind}/{self.format}"


def sniff_media(data: bytes) -> MediaType | None:
    """The media type named by the file's magic bytes, or None for anything else."""
    for magic, name in _IMAGE_MAGIC:
        if data.startswith(magic):
            return MediaType("image", name)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return MediaType("image", "webp")
    if data[4:8] == b"ftyp" and data[8:12] not in _STILL_BRANDS:
        return MediaType("video", "quicktime" if data[8:10] == b"qt" else "mp4")
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        # Matroska and WebM share the EBML header; the DocType says which.
        return MediaType("video", "webm" if b"webm" in data[:64] else "x-matroska")
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return MediaType("video", "x-msvideo")
    if data.startswith(b"FLV\x01"):
        return MediaType("video", "x-flv")
    if len(data) > _TS_PACKET * 2 and all(
            data[i * _TS_PACKET] == 0x47 for i in range(min(5, len(data) // _TS_PACKET))):
        # MPEG transport stream (HLS segments): 188-byte packets, each opening with 0x47.
        return MediaType("video", "mp2t")
    return None


def looks_like_html(data: bytes) -> bool:
    """True when the bytes start like an HTML document, whatever the server called them."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")) or (
        b"<html" in head
    )


def describe_non_media(data: bytes) -> str:
    """A sentence saying what a file that is neither image nor video seems to be instead."""
    if not data:
        return "empty file: zero bytes"
    if looks_like_html(data):
        return "not an image: the file is an HTML page"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<"):
        return "not an image: the file is markup (XML or SVG), which is not hashed"
    if data[:2] == b"\x1f\x8b":
        return "not an image: the file is gzip-compressed data"
    return "not an image: unknown format (no known image signature at the start of the file)"
