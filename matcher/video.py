"""The stills of a file, the pictures that are hashed: an image's one picture, or the frames of
a video or of an animated picture (WebP, GIF, APNG, AVIF) sampled in time.

Frames are taken at about one per second of presentation time, not at keyframes: a re-encode
moves the keyframes, but the picture at second 12 stays the picture at second 12. Neighbouring
samples that look the same (a still scene) are dropped, so a ten-minute static clip costs a
handful of hashes. An animated picture is sampled the same way, by its frames' durations, so a
victim shown in its fourth frame is found like one shown at second 3 of a clip. Every failure
is an UnreadableImage with a sentence, like images.

`stills` is the one place that tells the kinds apart (by the file's magic bytes, then by the
picture's frame count), so that registering, matching, re-scanning and the review previews all
see a file alike.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from PIL import Image

from engines.media import sniff_media
from matcher.decode import (
    WORKING_SIZE,
    UnreadableImage,
    check_decoded_size,
    decode_opened,
    decoding_errors,
    open_image,
    working_rgb,
)

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

# Animated pictures. Browsers show a frame whose duration is missing, zero or under 11 ms for
# 100 ms (so did Netscape); the same rule places the frames of such a picture in time.
DEFAULT_FRAME_MS = 100.0
SHORTEST_FRAME_MS = 11.0
# A frame held on screen this long is a picture of its own (a slideshow GIF at two slides a
# second), not a step of a motion: it is taken even between two whole seconds, or every other
# slide would be missed. At most two a second, so an animation costs at most twice a video's
# hashes per second shown.
HELD_FRAME_MS = 500.0
# Every frame is decoded (each is drawn over the one before), so an animation costs CPU per
# frame and per pixel. 5,000 frames is over eight minutes of a 10 fps GIF; 1,000 megapixels is
# 3,000 frames of 640x480, or 25 of the largest canvas allowed. A hostile file (100,000 frames
# of one pixel, or a huge canvas with many frames) stops there, keeping the samples found.
MAX_ANIMATION_FRAMES = 5_000
MAX_ANIMATION_PIXELS = 1_000_000_000
ANIMATION_DECODE_SECONDS = 30.0
# While an animation is read, its reader holds the canvas and the canvas before it (for
# disposal), and sampling a frame converts a copy: three RGBA canvases, twelve bytes a pixel,
# count against decode.py's MAX_DECODED_BYTES (a canvas of at most about 13 megapixels, 4200 x
# 3200, which no real animation comes near), keeping a hashing process under 512 MB.
_ANIMATION_BYTES_PER_PIXEL = 12


# A DASH/CMAF media segment opens with one of these; alone, it cannot be decoded.
_MEDIA_SEGMENT_BOXES = frozenset({b"styp", b"sidx", b"moof"})


def _av_reason(exc: Exception) -> str:
    """FFmpeg's reason in words, without its errno and the "<none>" file name of a buffer."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(reason).split())


def _thumbnail(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((16, 16), Image.Resampling.BILINEAR), np.float32)


def video_frames(
    data: bytes, interval: float = SAMPLE_INTERVAL
) -> Iterator[tuple[float, Image.Image]]:
    """(second, RGB frame no larger than WORKING_SIZE) about every `interval` seconds."""
    import av  # PyAV, here: a command that meets no video never loads it (tests/test_startup.py)

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        if data[4:8] in _MEDIA_SEGMENT_BOXES:
            raise UnreadableImage(
                "unreadable video: a streaming media segment without its initialisation "
                "segment, which holds the codec setup it needs to be decoded") from exc
        raise UnreadableImage(f"unreadable video: {_av_reason(exc)}") from exc
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
                raise UnreadableImage(f"truncated or corrupt video: {_av_reason(exc)}") from exc
            # A truncated video still yields the frames before the damage.
        if not produced:
            raise UnreadableImage("video has no decodable frames")


def _frame_ms(image: Image.Image) -> float:
    """How long the current frame of an animation is shown, in milliseconds, as browsers do."""
    duration = image.info.get("duration")
    if not isinstance(duration, int | float) or not duration >= SHORTEST_FRAME_MS:
        return DEFAULT_FRAME_MS
    return float(duration)


def animation_frames(
    fmt: str, image: Image.Image, interval: float = SAMPLE_INTERVAL
) -> Iterator[tuple[float, Image.Image]]:
    """(second the frame is first shown, RGB frame no larger than WORKING_SIZE) of an animated
    picture opened by decode.open_image: the frame on screen at each `interval` of presentation
    time (a frame shown across a sample point is taken, however short its neighbours) and every
    frame held for HELD_FRAME_MS, same-scene neighbours dropped, within the frame, pixel and
    time budgets above."""
    with decoding_errors(fmt):
        check_decoded_size(image, _ANIMATION_BYTES_PER_PIXEL, "animated")
    width, height = image.size
    step_ms = interval * 1000.0
    start_ms = 0.0
    next_sample_ms = 0.0
    previous: np.ndarray | None = None
    produced = False
    pixels = 0
    deadline = time.monotonic() + ANIMATION_DECODE_SECONDS
    try:
        for index in range(MAX_ANIMATION_FRAMES):
            if (index and (pixels + width * height > MAX_ANIMATION_PIXELS
                           or time.monotonic() > deadline)):
                break
            try:
                with decoding_errors(fmt):
                    if index:
                        try:
                            image.seek(index)
                        except EOFError:
                            break  # the last frame was the one before
                    image.load()
                    pixels += width * height
                    # An APNG's default image, when it is not the animation's first frame, is
                    # what viewers without APNG show: a picture, but one that takes no time.
                    hidden = index == 0 and bool(getattr(image, "default_image", False))
                    end_ms = start_ms + (0.0 if hidden else _frame_ms(image))
                    sampled = (index == 0 or end_ms > next_sample_ms + 1e-6
                               or end_ms - start_ms >= HELD_FRAME_MS)
                    frame = working_rgb(image) if sampled else None
                    if frame is image:  # the next seek draws over the reader's own pixels
                        frame = image.copy()
            except UnreadableImage:
                if not produced:
                    raise
                break  # a truncated animation still yields the frames before the damage
            if frame is not None:
                second = start_ms / 1000.0
                next_sample_ms = max(next_sample_ms,
                                     -(-(end_ms - 1e-6) // step_ms) * step_ms)
                thumb = _thumbnail(frame)
                if previous is None or float(np.abs(thumb - previous).mean()) >= SAME_SCENE:
                    previous = thumb
                    produced = True
                    yield round(second, 2), frame
            start_ms = end_ms
    finally:
        image.close()
    if not produced:
        raise UnreadableImage(f"animated {fmt} picture has no decodable frames")


def _is_animated(image: Image.Image) -> bool:
    """True for a picture of several frames shown in time. A HEIF file's several images are a
    collection, not an animation (no frame times): its primary picture is the one hashed."""
    return image.format != "HEIF" and bool(getattr(image, "is_animated", False))


class Still(NamedTuple):
    """One picture of a file: `second` is None for a single picture (the picture is the file)
    and the presentation time for a frame of a video or an animated picture."""

    second: float | None
    image: Image.Image


def stills(data: bytes) -> Iterator[Still]:
    """The pictures of `data`, each within the decode budgets of decode.py and above:
    one for an image, about one a second for a video or an animated picture. Lazy, like
    `video_frames`: an UnreadableImage is raised on the way through, not when called."""
    media = sniff_media(data)
    if media is not None and media.kind == "video":
        for second, frame in video_frames(data):
            yield Still(second, frame)
        return
    fmt, image = open_image(data)
    with decoding_errors(fmt):
        animated = _is_animated(image)
    if animated:
        for second, frame in animation_frames(fmt, image):
            yield Still(second, frame)
    else:
        yield Still(None, decode_opened(fmt, image))
