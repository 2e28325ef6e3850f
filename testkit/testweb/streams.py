"""Streaming video for the test web, made as real packagers make it: HLS (MPEG-TS segments,
optionally AES-128) and DASH (fragmented MP4: one initialisation segment, then one moof+mdat
fragment per segment), at two resolutions, with the victim's picture on screen for a few
seconds in the middle of the clip and unrelated scenes around it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

# The clip: SEGMENTS segments of SEGMENT_SECONDS at FPS; the victim is shown from VICTIM_FROM
# to VICTIM_TO seconds (the middle of the clip, as in a real video, not its first frame).
FPS = 10
SEGMENT_SECONDS = 2
SEGMENTS = 15
VICTIM_FROM, VICTIM_TO = 14.0, 18.0
# (name, width, height) of each variant: the small one is below the crawler's 240 lines.
VARIANTS = (("180p", 240, 180), ("360p", 480, 360))
VARIANT_SIZES = {name: (width, height) for name, width, height in VARIANTS}
VARIANT_NAMES = frozenset(VARIANT_SIZES)


@dataclass(frozen=True)
class Packaged:
    """A packaged clip: its segments (and, for DASH, the initialisation segment)."""

    segments: tuple[bytes, ...]
    init: bytes = b""


def _frames(victim: Image.Image, scenes: list[Image.Image], size: tuple[int, int]
            ) -> list[Image.Image]:
    victim, first, second = (picture.convert("RGB").resize(size)
                             for picture in (victim, scenes[0], scenes[1]))
    frames = []
    for index in range(SEGMENTS * SEGMENT_SECONDS * FPS):
        at = index / FPS
        frames.append(victim if VICTIM_FROM <= at < VICTIM_TO else first if at < VICTIM_FROM
                      else second)
    return frames


def _encode(frames: list[Image.Image], fmt: str, options: dict[str, str] | None = None) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        # A keyframe at every segment start, as packagers cut.
        stream.options = {"preset": "ultrafast", "g": str(SEGMENT_SECONDS * FPS),
                          "keyint_min": str(SEGMENT_SECONDS * FPS), "sc_threshold": "0"}
        for picture in frames:
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def hls(victim: Image.Image, scenes: list[Image.Image], size: tuple[int, int]) -> Packaged:
    """MPEG-TS segments, each its own transport stream starting on a keyframe."""
    frames = _frames(victim, scenes, size)
    per = SEGMENT_SECONDS * FPS
    return Packaged(tuple(_encode(frames[i:i + per], "mpegts")
                          for i in range(0, len(frames), per)))


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """The top-level ISO BMFF boxes of `data`: (type, the whole box)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        kind = data[offset + 4:offset + 8]
        if size == 1:
            size = int.from_bytes(data[offset + 8:offset + 16], "big")
        if size < 8:
            break
        boxes.append((kind, data[offset:offset + size]))
        offset += size
    return boxes


def dash(victim: Image.Image, scenes: list[Image.Image], size: tuple[int, int]) -> Packaged:
    """Fragmented MP4 cut at its fragments: ftyp+moov, then one moof+mdat per segment."""
    data = _encode(_frames(victim, scenes, size), "mp4",
                   {"movflags": "frag_keyframe+empty_moov+default_base_moof"})
    init, segments, current = b"", [], b""
    for kind, box in _boxes(data):
        if kind in (b"ftyp", b"moov"):
            init += box
        elif kind == b"moof":
            if current:
                segments.append(current)
            current = box
        elif kind == b"mdat" and current:
            current += box
    if current:
        segments.append(current)
    return Packaged(tuple(segments), init)


def hls_master(base: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for name, width, height in VARIANTS:
        bandwidth = width * height * 3
        lines += [f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={width}x{height},'
                  'CODECS="avc1.42c01e"', f"{base}/{name}/index.m3u8"]
    return "\n".join(lines) + "\n"


def hls_media(count: int, key_uri: str | None = None) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{SEGMENT_SECONDS}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    if key_uri:
        lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="{key_uri}"')
    for number in range(count):
        lines += [f"#EXTINF:{SEGMENT_SECONDS:.3f},", f"seg-{number:03d}.ts"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def dash_mpd(base: str, count: int) -> str:
    representations = "".join(
        f'<Representation id="{name}" bandwidth="{width * height * 3}" width="{width}" '
        f'height="{height}" codecs="avc1.42c01e"/>' for name, width, height in VARIANTS)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" minBufferTime="PT2S" '
        f'mediaPresentationDuration="PT{count * SEGMENT_SECONDS}S" '
        'profiles="urn:mpeg:dash:profile:isoff-live:2011">'
        f'<Period id="0"><AdaptationSet contentType="video" mimeType="video/mp4" '
        'segmentAlignment="true" startWithSAP="1">'
        f'<SegmentTemplate timescale="1000" duration="{SEGMENT_SECONDS * 1000}" startNumber="1" '
        f'initialization="{base}/$RepresentationID$/init.mp4" '
        f'media="{base}/$RepresentationID$/chunk-$Number%03d$.m4s"/>'
        f"{representations}</AdaptationSet></Period></MPD>")


def encrypt_segment(data: bytes, key: bytes, sequence: int) -> bytes:
    """AES-128-CBC with PKCS#7 and the sequence number as IV (RFC 8216 5.2)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(sequence.to_bytes(16, "big"))).encryptor()
    return encryptor.update(padded) + encryptor.finalize()

