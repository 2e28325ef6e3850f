"""Pictures and videos of the held-out web, made from a seed.

Why a generator of its own: the held-out web must not share a single line with the fixtures
the crawler was developed against (``testkit/synthetic.py``, ``testkit/testweb/``), or its
figure would no longer be held out. Scenes here are built from a gradient sky, a horizon,
layered shapes, a caption and sensor-like noise, so that two seeds give pictures whose
perceptual hashes are far apart (distractors must not match victims by accident), while a
re-upload of one picture (resized, re-encoded, cropped a little) stays recognisable.

Videos are encoded with PyAV (libx264), as HLS segments, DASH fMP4 segments or one
progressive MP4: the victim picture is on screen for a few seconds in the middle, never at
the start, because real clips do not open on the frame that matters.
"""

from __future__ import annotations

import io
import math
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

SCENE_SIZE = (640, 480)
WORDS = (
    "harbour", "summit", "orchard", "lantern", "meadow", "canyon", "glacier", "market",
    "station", "bridge", "garden", "festival", "island", "valley", "tower", "river",
)


def scene(seed: int, size: tuple[int, int] = SCENE_SIZE) -> Image.Image:
    """A structured, seed-determined scene: why not plain noise? Noise has no stable
    low-frequency structure, so its hash would not survive a resize; real photos do."""
    rng = random.Random(f"heldout-scene-{seed}")
    w, h = size
    top = np.array([rng.randrange(256) for _ in range(3)], float)
    bottom = np.array([rng.randrange(256) for _ in range(3)], float)
    angle = rng.uniform(0, math.tau)
    # the gradient is computed on a coarse grid and scaled up: smooth anyway, and cheap
    gh, gw = h // 8, w // 8
    yy, xx = np.mgrid[0:gh, 0:gw]
    t = (np.cos(angle) * xx / gw + np.sin(angle) * yy / gh)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    arr = top[None, None, :] * (1 - t[..., None]) + bottom[None, None, :] * t[..., None]
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB").resize(
        (w, h), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img, "RGBA")
    # a horizon: a filled polyline across the picture, like hills or a skyline
    horizon = rng.uniform(0.35, 0.75) * h
    pts = [(0, h)]
    for i in range(9):
        pts.append((i * w / 8, horizon + rng.uniform(-0.18, 0.18) * h))
    pts.append((w, h))
    draw.polygon(pts, fill=(*[rng.randrange(200) for _ in range(3)], 255))
    for _ in range(rng.randint(7, 14)):
        color = (*[rng.randrange(256) for _ in range(3)], rng.randint(120, 255))
        x0, y0 = rng.uniform(-0.1, 1.0) * w, rng.uniform(-0.1, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.08, 0.5) * w, y0 + rng.uniform(0.08, 0.5) * h
        kind = rng.choice(("ellipse", "rect", "poly", "line"))
        if kind == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif kind == "rect":
            draw.rectangle((x0, y0, x1, y1), fill=color)
        elif kind == "poly":
            draw.polygon([(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(5)],
                         fill=color)
        else:
            draw.line((x0, y0, x1, y1), fill=color, width=rng.randint(4, 18))
    font = ImageFont.load_default(size=rng.randint(26, 44))
    caption = f"{rng.choice(WORDS)} {rng.randint(10, 99)}"
    draw.text((rng.uniform(0.05, 0.5) * w, rng.uniform(0.05, 0.8) * h), caption,
              fill=(255, 255, 255, 230), font=font, stroke_width=2, stroke_fill=(0, 0, 0, 200))
    noise = np.random.default_rng(seed & 0xFFFFFFFF).integers(-9, 10, (h, w, 3), np.int16)
    out = np.asarray(img, np.int16) + noise
    return Image.fromarray(out.clip(0, 255).astype(np.uint8), "RGB")


def reupload(img: Image.Image, rng: random.Random, *, min_scale: float = 0.55) -> Image.Image:
    """A light re-upload edit: a crop of at most 1% per side (under 5% of the area), a resize.
    The eval judges delivery, not matching, so nothing heavier (no filters, captions,
    mirrors): bigger crops already cost perceptual hashes their match on some scenes."""
    w, h = img.size
    left, right = (int(w * rng.uniform(0, 0.01)) for _ in range(2))
    top, bottom = (int(h * rng.uniform(0, 0.01)) for _ in range(2))
    img = img.crop((left, top, w - right, h - bottom))
    scale = rng.uniform(min_scale, 1.0)
    return img.resize((max(64, int(img.width * scale)), max(64, int(img.height * scale))),
                      Image.Resampling.LANCZOS)


def encode(img: Image.Image, fmt: str, rng: random.Random) -> bytes:
    """Encode as a re-upload would be: JPEG at quality 70-90, the others at their usual
    settings."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(buf, "JPEG", quality=rng.randint(70, 90))
    elif fmt == "webp":
        img.convert("RGB").save(buf, "WEBP", quality=rng.randint(70, 90))
    elif fmt == "avif":
        img.convert("RGB").save(buf, "AVIF", quality=rng.randint(60, 80), speed=9)
    elif fmt == "png":
        img.convert("RGB").save(buf, "PNG")
    elif fmt == "gif":
        img.convert("RGB").save(buf, "GIF")
    else:
        raise ValueError(fmt)
    return buf.getvalue()


def animated(frames: list[Image.Image], fmt: str, durations: list[int]) -> bytes:
    """An animation (GIF, APNG, animated WebP): the caller puts the victim in a later frame,
    as reaction GIFs and slideshows do, so a decoder reading only frame 0 misses it."""
    size = frames[0].size
    frames = [f.convert("RGB").resize(size) for f in frames]
    buf = io.BytesIO()
    if fmt == "gif":
        pal = [f.quantize(256, method=Image.Quantize.FASTOCTREE) for f in frames]
        pal[0].save(buf, "GIF", save_all=True, append_images=pal[1:], duration=durations,
                    loop=0, disposal=1)
    elif fmt == "apng":
        frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0)
    elif fmt == "webp":
        frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0, quality=80)
    else:
        raise ValueError(fmt)
    return buf.getvalue()


@dataclass
class Clip:
    """Seconds of video: a list of (picture, seconds on screen). The picture is fitted to
    the frame size with black bars, the way players letterbox."""

    shots: list[tuple[Image.Image, float]]
    width: int = 480
    height: int = 360
    fps: int = 6

    def frames(self) -> Iterator[np.ndarray]:
        """Yield RGB arrays with a slow pan and a little grain on each shot (a perfect still
        is not what cameras give; the motion makes the encoder work as on real footage)."""
        grain = np.random.default_rng(len(self.shots)).integers(
            -4, 5, (8, self.height, self.width, 3), np.int16)
        k = 0
        for img, seconds in self.shots:
            fitted = np.asarray(fit(img, self.width + 4, self.height), np.int16)
            n = max(1, int(seconds * self.fps))
            for i in range(n):
                x0 = int(4 * i / n)
                frame = fitted[:, x0:x0 + self.width] + grain[k % 8]
                k += 1
                yield frame.clip(0, 255).astype(np.uint8)


def fit(img: Image.Image, width: int, height: int) -> Image.Image:
    """Letterbox img into width x height."""
    img = img.convert("RGB")
    scale = min(width / img.width, height / img.height)
    small = img.resize((max(2, int(img.width * scale)), max(2, int(img.height * scale))),
                       Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(small, ((width - small.width) // 2, (height - small.height) // 2))
    return canvas


def _encode_into(out: av.container.OutputContainer, clip: Clip, crf: int) -> None:
    stream = out.add_stream("libx264", rate=clip.fps)
    stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
    gop = str(clip.fps * 2)
    stream.options = {"g": gop, "keyint_min": gop, "sc_threshold": "0", "crf": str(crf),
                      "preset": "ultrafast"}
    for i, arr in enumerate(clip.frames()):
        frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def mp4(clip: Clip, crf: int = 23) -> bytes:
    """A progressive MP4 with the index first (faststart), as tube sites serve downloads."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            _encode_into(out, clip, crf)
        return path.read_bytes()


def hls(clip: Clip, crf: int = 23) -> tuple[str, dict[str, bytes]]:
    """A VOD variant playlist and its MPEG-TS segments (2 s each), from ffmpeg's own HLS
    muxer, so the segments are what a packager really writes."""
    with tempfile.TemporaryDirectory() as tmp:
        opts = {"hls_time": "2", "hls_playlist_type": "vod",
                "hls_segment_filename": str(Path(tmp) / "seg-%03d.ts")}
        with av.open(str(Path(tmp) / "index.m3u8"), "w", format="hls", options=opts) as out:
            _encode_into(out, clip, crf)
        playlist = (Path(tmp) / "index.m3u8").read_text()
        segs = {p.name: p.read_bytes() for p in sorted(Path(tmp).glob("seg-*.ts"))}
    return playlist, segs


def dash(clip: Clip, crf: int = 23) -> tuple[str, dict[str, bytes]]:
    """An MPD with SegmentTemplate, an fMP4 init segment and numbered media segments, from
    ffmpeg's DASH muxer."""
    with tempfile.TemporaryDirectory() as tmp:
        opts = {"seg_duration": "2", "use_template": "1", "use_timeline": "0",
                "init_seg_name": "init-$RepresentationID$.mp4",
                "media_seg_name": "chunk-$RepresentationID$-$Number%05d$.m4s"}
        with av.open(str(Path(tmp) / "manifest.mpd"), "w", format="dash", options=opts) as out:
            _encode_into(out, clip, crf)
        mpd = (Path(tmp) / "manifest.mpd").read_text()
        files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())
                 if p.name != "manifest.mpd"}
    return mpd, files


def aes128(data: bytes, key: bytes, iv: bytes) -> bytes:
    """HLS AES-128: AES-CBC over the whole segment with PKCS#7 padding (RFC 8216 4.3.2.4)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def load_photos(folder: Path, limit: int) -> list[Image.Image]:
    """Wallpaper photos (HAECHI_WALLPAPERS) as victims, scaled to at most 800 px wide, or an
    empty list when the folder holds none."""
    out: list[Image.Image] = []
    exts = {".jpg", ".jpeg", ".png", ".webp"}
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts):
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if im.width > 800:
                    im = im.resize((800, int(im.height * 800 / im.width)),
                                   Image.Resampling.LANCZOS)
                out.append(im)
        except OSError:
            continue
        if len(out) >= limit:
            break
    return out


def aes128_decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    """The inverse of aes128, as a player does it (for the oracle browser)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(data) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()
