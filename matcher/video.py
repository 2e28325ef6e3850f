"""The stills of a file, the pictures that are hashed: an image's one picture, or a video
sampled into frames.

Frames are taken at about one per second of presentation time, not at keyframes: a re-encode
moves the keyframes, but the picture at second 12 stays the picture at second 12. Neighbouring
samples that look the same (a still scene) are dropped, so a ten-minute static clip costs a
handful of hashes. Every failure is an UnreadableImage with a sentence, like images.

`stills` is the one place that tells the two apart (by the file's magic bytes), so that
registering, matching, re-scanning and the review previews all see a file alike.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import NamedTuple

import av
import numpy as np
from PIL import Image

from engines.media import sniff_media
from matcher.decode import WORKING_SIZE, UnreadableImage, decode_image

SAMPLE_INTERVAL = 1.0
# Three hours of video is more than any re-upload; longer streams are cut there.
MAX_SECONDS = 3 * 3600
# Frames larger than this (8K and up) are refused like image bombs.
MAX_FRAME_PIXELS = 40_000_000
# A video is decoded frame by frame to find each second, so a long or dense stream costs CPU in
# proportion to its frames: decoding stops after this many frames or this many seconds of work,
# keeping the samples found so far (a hostile file cannot hold a hashing process for hours).
MAX_DECODED_FRAMES = 250_000
DECODE_SECONDS = 120.0
# Two samples whose 16x16 grey thumbnails differ by less than this (mean, 0-255) are one scene.
SAME_SCENE = 3.0


def _thumbnail(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((16, 16), Image.Resampling.BILINEAR), np.float32)


def video_frames(
    data: bytes, interval: float = SAMPLE_INTERVAL
) -> Iterator[tuple[float, Image.Image]]:
    """(second, RGB frame no larger than WORKING_SIZE) about every `interval` seconds."""
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise UnreadableImage(f"unreadable video: {exc}") from exc
    with container:
        if not container.streams.video:
            raise UnreadableImage("video file without a video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > MAX_FRAME_PIXELS:
            raise UnreadableImage(f"refused: {width}x{height} video frames are over the limit")
        next_second = 0.0
        previous: np.ndarray | None = None
        produced = False
        deadline = time.monotonic() + DECODE_SECONDS
        try:
            for decoded, frame in enumerate(container.decode(stream)):
                if decoded >= MAX_DECODED_FRAMES or time.monotonic() > deadline:
                    if not produced:
                        raise UnreadableImage(
                            f"refused: no frame worth hashing in the first {decoded:,} frames "
                            f"({DECODE_SECONDS:.0f} s of decoding at most)")
                    break
                second = frame.time
                if second is None or second + 1e-3 < next_second:
                    continue
                if second > MAX_SECONDS:
                    break
                next_second = (second // interval + 1) * interval
                scale = min(1.0, WORKING_SIZE / max(frame.width, frame.height))
                image = frame.to_image(
                    width=max(1, round(frame.width * scale)),
                    height=max(1, round(frame.height * scale)),
                )
                thumb = _thumbnail(image)
                if previous is not None and float(np.abs(thumb - previous).mean()) < SAME_SCENE:
                    continue
                previous = thumb
                produced = True
                yield round(second, 2), image
        except av.error.FFmpegError as exc:
            if not produced:
                raise UnreadableImage(f"truncated or corrupt video: {exc}") from exc
            # A truncated video still yields the frames before the damage.
        if not produced:
            raise UnreadableImage("video has no decodable frames")


class Still(NamedTuple):
    """One picture of a file: `second` is None for an image (the picture is the file) and the
    presentation time for a video frame."""

    second: float | None
    image: Image.Image


def stills(data: bytes) -> Iterator[Still]:
    """The pictures of `data`, each within the decode budgets of decode.py and above:
    one for an image, about one a second for a video. Lazy, like `video_frames`: an
    UnreadableImage is raised on the way through, not when called."""
    media = sniff_media(data)
    if media is not None and media.kind == "video":
        for second, frame in video_frames(data):
            yield Still(second, frame)
    else:
        yield Still(None, decode_image(data))
