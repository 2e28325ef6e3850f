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

# ISO base media files (MP4, MOV, 3GP, fragmented MP4, HEIF, AVIF) open with an `ftyp` box
# whose major brand says what they hold. AVIF (AV1 stills and animations) and HEIF/HEIC (HEVC
# stills, as iPhones save them) are pictures; every other brand is a video. The generic HEIF
# brands (mif1, msf1) say "picture" but not which codec: the compatible brands that follow tell
# AVIF from HEIC. These are the brands Pillow's AVIF reader and pillow-heif accept.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm",
                          b"hevs", b"mif1", b"msf1"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
# Boxes a video file or a streaming segment may start with when it has no ftyp: a DASH/CMAF
# media segment (styp, sidx, moof), or an old QuickTime movie (moov, mdat, wide, free, skip).
_HEADLESS_VIDEO_BOXES = frozenset({b"styp", b"sidx", b"moof", b"moov", b"mdat", b"wide",
                                   b"free", b"skip"})
# MPEG transport streams (HLS segments) are 188-byte packets, each opening with the sync byte
# 0x47; Blu-ray and AVCHD (M2TS) put a 4-byte timestamp before each, making 192.
_TS_SYNC = 0x47
_TS_PACKETS = ((188, 0), (192, 4))


@dataclass(frozen=True)
class MediaType:
    """`kind` is "image" or "video"; `format` is the container or image format."""

    kind: str
    format: str

    @property
    def mime(self) -> str:
        return f"{self.kind}/{self.format}"


def _iso_media(data: bytes) -> MediaType | None:
    """The media type of an ISO base media file by its first box, or None if it is not one."""
    kind = data[4:8]
    if kind == b"ftyp":
        major = data[8:12]
        box_end = min(int.from_bytes(data[:4], "big"), len(data), 256)
        compatible = {data[i:i + 4] for i in range(16, box_end - 3, 4)}
        if major in _AVIF_BRANDS or (major in _GENERIC_HEIF_BRANDS and compatible & _AVIF_BRANDS):
            return MediaType("image", "avif")
        if major in _HEIF_BRANDS:
            return MediaType("image", "heic")
        # Everything else, fragmented MP4 (iso5/iso6/dash/msdh/cmfc...) included, is a video.
        return MediaType("video", "quicktime" if data[8:10] == b"qt" else "mp4")
    # Without ftyp, a box is trusted only if its size is plausible: a first byte of zero (under
    # 16 MB, or 1 for a 64-bit size) rules out text such as "<h1>free ...", whose first four
    # bytes would be a size of a gigabyte.
    size = int.from_bytes(data[:4], "big")
    if kind in _HEADLESS_VIDEO_BOXES and data[:1] == b"\x00" and (size == 1 or size >= 8):
        return MediaType("video", "mp4")
    return None


def _is_transport_stream(data: bytes) -> bool:
    """True for MPEG-TS: the sync byte at the start of each of the first few packets."""
    for packet, offset in _TS_PACKETS:
        count = min(5, (len(data) - offset) // packet)
        if count >= 2 and all(data[offset + i * packet] == _TS_SYNC for i in range(count)):
            return True
    return False


def sniff_media(data: bytes) -> MediaType | None:
    """The media type named by the file's magic bytes, or None for anything else."""
    for magic, name in _IMAGE_MAGIC:
        if data.startswith(magic):
            return MediaType("image", name)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return MediaType("image", "webp")
    iso = _iso_media(data)
    if iso is not None:
        return iso
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        # Matroska and WebM share the EBML header; the DocType says which.
        return MediaType("video", "webm" if b"webm" in data[:64] else "x-matroska")
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return MediaType("video", "x-msvideo")
    if data.startswith(b"FLV\x01"):
        return MediaType("video", "x-flv")
    if _is_transport_stream(data):
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
