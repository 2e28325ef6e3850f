"""The edits of the robustness eval split: how each one is drawn, made and labelled.

Every edit is a list of steps ``{"op", "library", "params"}``. The planner (``plan.py``) draws
the parameters once, from fixed seeds, and writes them into ``manifest.json``; the generator
(``generate.py``) only applies what the manifest says, so the split is the manifest.

Which library makes what (``LIBRARY``): AugLy 1.0 where its function runs with today's Pillow
and numpy (screenshot templates, overlay text, emoji, stripes, pad, crop, mirror, rotate with
crop, shuffle_pixels); albumentations for what AugLy cannot do now (perspective: AugLy's
``perspective_transform`` uses the removed ``np.float``; rotation with an expanded canvas; 90°
turns; resize; JPEG); Pillow for the meme and caption bands (AugLy's ``meme_format`` calls the
removed ``FreeTypeFont.getsize_multiline``: ``meme_band`` is a port of its layout, and
neither library has a caption bar or "impact" meme text).

The mild/hard rule (``HARD_RULE``) was written down before anything was measured. It judges
how much of the picture's own content an edit leaves (area kept, resolution, occlusion,
distortion), from the drawn parameters, not from what the matcher does.
"""

from __future__ import annotations

import io
import math
import os
import pickle
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# albumentations asks PyPI for a newer version when imported, unless told not to
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# --- the mild/hard rule: fixed before any measurement; never tune it on results ---------------

KEPT_MIN = 0.70  # hard when less than 70% of the picture's area is still in the query
PICTURE_MIN_PX = 256  # hard when the picture's long side in the query is under 256 px
ROTATION_MAX = 10.0  # hard when turned more than 10° away from a multiple of 90°
PERSPECTIVE_MAX = 0.05  # hard when the perspective corner jitter (albumentations scale) > 0.05
JPEG_MIN = 30  # hard when re-encoded at a JPEG quality under 30
OCCLUSION_MAX = 0.25  # hard when overlays cover more than 25% of the picture (boxes x opacity)
CHAIN_HARD = 3  # a chain of 3 edits is hard whatever its steps

HARD_RULE = (
    f"A query is hard when any of these holds, else mild: less than {KEPT_MIN:.0%} of the "
    f"picture's area is left in it (crops, crop-to-fit, rotate-and-crop); the picture's long "
    f"side in it is under {PICTURE_MIN_PX} px; it is turned more than {ROTATION_MAX:g} degrees "
    f"away from a multiple of 90; a perspective warp with corner jitter above "
    f"{PERSPECTIVE_MAX:g} (albumentations scale); a JPEG quality under {JPEG_MIN}; overlays "
    f"(text, emoji, stripes, impact text, a bar over the picture) covering more than "
    f"{OCCLUSION_MAX:.0%} of the picture, counted as their bounding boxes times their opacity, "
    f"summed over steps; or it is a chain of {CHAIN_HARD} edits. Frames around the picture "
    f"(screenshot templates, pads, bands, an expanded canvas) are not hard by themselves. "
    f"Computed from the drawn parameters before anything was measured."
)

JPEG_OUT_QUALITY = 90  # every query file is written as a JPEG at this quality (Pillow)
MAX_SIDE = 1024  # victim pictures and distractor bases are at most this long

LIBRARY = {
    "screenshot": "augly",
    "meme_band": "pillow",
    "meme_impact": "pillow",
    "caption": "pillow",
    "text": "augly",
    "emoji": "augly",
    "stripes": "augly",
    "pad": "augly",
    "rotate_expand": "albumentations",
    "rotate_crop": "augly",
    "rotate90": "albumentations",
    "mirror": "augly",
    "perspective": "albumentations",
    "crop": "augly",
    "resize": "albumentations",
    "jpeg": "albumentations",
    "shuffle_pixels": "augly",
}

# The families of positive queries; every one but "chain" is a single edit (resize_jpeg: two
# albumentations steps). "chain" draws 2 or 3 of the other families.
FAMILIES = (
    "screenshot", "meme", "caption", "overlay_text", "emoji", "stripes", "pad",
    "rotate_small", "rotate90", "mirror", "perspective", "crop_mild", "crop_heavy",
    "resize_jpeg", "chain",
)

PHRASES = (
    "when the weekend finally arrives", "nobody:\nme at 3 am", "this is fine",
    "monday again", "look at this view", "best day ever", "can't stop laughing",
    "who did this", "weekend mood", "my face when", "not again", "story of my life",
    "so true lol", "tag a friend", "you had one job", "mood", "me irl", "wait for it",
    "same energy", "no words", "plot twist", "summer vibes", "throwback",
    "found this today", "is it just me", "new wallpaper", "send help", "big if true",
    "how it started", "how it's going",
)

MEME_FONTS = ("Raleway-ExtraBold", "Raleway-Black", "OpenSans-Semibold", "PlayfairDisplay-Black")
TEXT_FONTS = (
    "Raleway-ExtraBold", "OpenSans-Regular", "OpenSans-Semibold", "IBMPlexSans-Medium",
    "SourceSansPro-Regular", "PlayfairDisplay-Bold", "Ubuntu-RI", "Titillium-Semibold",
    "CaviarDreams", "DancingScript-Regular", "KaushanScript-Regular", "Allura-Regular",
    "IBMPlexMono-Bold", "NotoSerif-Regular", "Montserrat-Thin",
)
EMOJI_GROUPS = ("smileys", "people", "animals_and_nature", "food_and_drink", "symbols",
                "objects", "activity", "travel_and_places")
TEMPLATES = {"web.png": ((1200, 736), (254, 424, 783, 710)),
             "mobile.png": ((414, 736), (27, 411, 389, 689))}
SCREENSHOT_MAX_PIXELS = 2_500_000


def assets_dir() -> str:
    import augly.utils as augly_utils

    return augly_utils.ASSETS_BASE_DIR


def font_path(name: str) -> str:
    return os.path.join(assets_dir(), "fonts", name + ".ttf")


@cache
def font_chars(name: str) -> list[int]:
    # AugLy's own list of the code points its font has (a pickle shipped inside the package)
    with open(os.path.join(assets_dir(), "fonts", name + ".pkl"), "rb") as f:
        return pickle.load(f)


@cache
def emoji_names(group: str) -> list[str]:
    return sorted(os.listdir(os.path.join(assets_dir(), "twemojis", group)))


@cache
def emoji_size(rel: str) -> tuple[int, int]:
    with Image.open(os.path.join(assets_dir(), "twemojis", rel)) as im:
        return im.size


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(name), max(1, size))


# --- geometry that the planner follows through a chain, for the rule ---------------------------

@dataclass
class State:
    """The query canvas and where the picture is in it, as the planner follows a chain."""

    w: int
    h: int
    box: list[float]  # the picture's bounding box in the canvas: x0, y0, x1, y1
    kept: float = 1.0  # fraction of the original picture's area still in the canvas
    occlusion: float = 0.0  # summed overlay coverage of the picture (boxes x opacity)
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, w: int, h: int) -> State:
        return cls(w, h, [0.0, 0.0, float(w), float(h)])

    def pic_long(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def box_area(self) -> float:
        return max(1.0, (self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))

    def scale(self, fx: float, fy: float | None = None) -> None:
        fy = fx if fy is None else fy
        self.box = [self.box[0] * fx, self.box[1] * fy, self.box[2] * fx, self.box[3] * fy]

    def shift(self, dx: float, dy: float) -> None:
        self.box = [self.box[0] + dx, self.box[1] + dy, self.box[2] + dx, self.box[3] + dy]

    def crop(self, left: float, top: float, right: float, bottom: float) -> None:
        before = self.box_area()
        nb = [max(self.box[0], left), max(self.box[1], top),
              min(self.box[2], right), min(self.box[3], bottom)]
        if nb[2] <= nb[0] or nb[3] <= nb[1]:
            nb = [left, top, left + 1.0, top + 1.0]
            self.kept = 0.0
        else:
            self.kept *= (nb[2] - nb[0]) * (nb[3] - nb[1]) / before
        self.box = [nb[0] - left, nb[1] - top, nb[2] - left, nb[3] - top]
        self.w, self.h = round(right - left), round(bottom - top)

    def cover(self, rects: list[tuple[float, float, float, float]], opacity: float) -> float:
        """Adds the overlay boxes' share of the picture (union area x opacity)."""
        if not rects:
            return 0.0
        x0, y0, x1, y1 = self.box
        mask = np.zeros((64, 64), bool)
        sx, sy = 64 / max(1.0, x1 - x0), 64 / max(1.0, y1 - y0)
        for r in rects:
            a = max(0, math.floor((r[0] - x0) * sx))
            b = min(64, math.ceil((r[2] - x0) * sx))
            c = max(0, math.floor((r[1] - y0) * sy))
            d = min(64, math.ceil((r[3] - y0) * sy))
            if b > a and d > c:
                mask[c:d, a:b] = True
        share = float(mask.mean()) * opacity
        self.occlusion += share
        return share

    def rotate_bbox(self, degrees: float) -> None:
        """Canvas and picture box after a rotation by ``degrees`` with an expanded canvas."""
        t = math.radians(degrees)
        c, s = abs(math.cos(t)), abs(math.sin(t))
        nw, nh = self.w * c + self.h * s, self.w * s + self.h * c
        bw, bh = self.box[2] - self.box[0], self.box[3] - self.box[1]
        cx = (self.box[0] + self.box[2]) / 2 - self.w / 2
        cy = (self.box[1] + self.box[3]) / 2 - self.h / 2
        rx, ry = cx * math.cos(t) + cy * math.sin(t), -cx * math.sin(t) + cy * math.cos(t)
        pw, ph = bw * c + bh * s, bw * s + bh * c
        ncx, ncy = rx + nw / 2, ry + nh / 2
        self.box = [ncx - pw / 2, ncy - ph / 2, ncx + pw / 2, ncy + ph / 2]
        self.w, self.h = round(nw), round(nh)


def judge(state: State, n_edits: int) -> list[str]:
    """The reasons a query is hard (none: mild), by HARD_RULE."""
    reasons = list(state.reasons)
    if state.kept < KEPT_MIN:
        reasons.append(f"kept {state.kept:.2f} of the picture")
    if state.pic_long() < PICTURE_MIN_PX:
        reasons.append(f"picture {state.pic_long():.0f} px long")
    if state.occlusion > OCCLUSION_MAX:
        reasons.append(f"overlays cover {state.occlusion:.2f}")
    if n_edits >= CHAIN_HARD:
        reasons.append(f"chain of {n_edits}")
    return reasons


# --- drawing the parameters of each family -----------------------------------------------------

def _u(rng: np.random.Generator, lo: float, hi: float, nd: int = 3) -> float:
    return round(float(rng.uniform(lo, hi)), nd)


def _colour(rng: np.random.Generator) -> list[int]:
    return [int(v) for v in rng.integers(0, 256, 3)]


def _step(op: str, **params) -> dict:
    return {"op": op, "library": LIBRARY[op], "params": params}


def draw_screenshot(rng, st: State, level: str) -> list[dict]:
    template = str(rng.choice(sorted(TEMPLATES)))
    (tw, th), bbox = TEMPLATES[template]
    bw, bh = bbox[2] - bbox[0], bbox[3] - bbox[1]
    if level == "mild":
        resize_src = bool(rng.random() < 0.6)
        crop = False
    else:
        resize_src, crop = False, True
    if resize_src:
        # AugLy scales the picture to fit the slot, then pads it to the slot (crop has no effect)
        f = min(bw / st.w, bh / st.h)
        nw, nh = int(st.w * f), int(st.h * f)
        st.scale(nw / st.w, nh / st.h)
        st.shift(bbox[0] + max(0, (bw - nw) // 2), bbox[1] + max(0, (bh - nh) // 2))
        st.w, st.h = tw, th
    else:
        f = min(st.w / bw, st.h / bh) if crop else max(st.w / bw, st.h / bh)
        if tw * th * f * f > SCREENSHOT_MAX_PIXELS:
            f = math.sqrt(SCREENSHOT_MAX_PIXELS / (tw * th))
        sbw, sbh = int(bw * f), int(bh * f)
        left, top = int(bbox[0] * f), int(bbox[1] * f)
        if crop:
            dx, dy = (st.w - sbw) // 2, (st.h - sbh) // 2
            st.crop(dx, dy, dx + sbw, dy + sbh)
            if st.w < sbw or st.h < sbh:
                st.shift(max(0, (sbw - st.w) // 2), max(0, (sbh - st.h) // 2))
        elif st.w > sbw or st.h > sbh:
            g = min(sbw / st.w, sbh / st.h)
            nw, nh = int(st.w * g), int(st.h * g)
            st.scale(nw / st.w, nh / st.h)
            st.shift(max(0, (sbw - nw) // 2), max(0, (sbh - nh) // 2))
        else:
            st.shift(max(0, (sbw - st.w) // 2), max(0, (sbh - st.h) // 2))
        st.shift(left, top)
        st.w, st.h = int(tw * f), int(th * f)
    return [_step("screenshot", template=template, crop_src_to_fit=crop,
                  resize_src_to_match_template=resize_src,
                  max_image_size_pixels=SCREENSHOT_MAX_PIXELS)]


def meme_band_layout(w: int, h: int, p: dict):
    cap = max(12, round(p["caption_frac"] * h))
    size = cap - 10
    while True:
        font = _font(p["font"], size)
        x0, t, r, b = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox(
            (0, 0), p["text"], font=font, align="center")
        if (r - x0 <= w - 10 and b - t <= cap - 10) or size <= 6:
            return cap, font, (round((w - (r - x0)) / 2) - x0, round((cap - (b - t)) / 2) - t)
        size -= 5


def impact_layout(w: int, h: int, p: dict):
    """Top and bottom lines of white text with a black outline, over the picture."""
    out = []
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    for text, top in ((p["top"], True), (p["bottom"], False)):
        if not text:
            continue
        size = max(8, round(p["size_frac"] * h))
        while True:
            font = _font(p["font"], size)
            sw = max(1, size // 15)
            x0, t, r, b = draw.textbbox((0, 0), text, font=font, stroke_width=sw)
            if r - x0 <= 0.95 * w or size <= 8:
                break
            size -= 2
        x = round((w - (r - x0)) / 2) - x0
        y = round(0.03 * h) - t if top else round(0.97 * h - (b - t)) - t
        out.append((text, font, sw, (x, y), (x + x0, y + t, x + r, y + b)))
    return out


def draw_meme(rng, st: State, level: str) -> list[dict]:
    font = str(rng.choice(MEME_FONTS))
    if level == "mild" and rng.random() < 0.7:
        p = {"text": str(rng.choice(PHRASES)), "caption_frac": _u(rng, 0.12, 0.35),
             "font": font, "bg": [255, 255, 255] if rng.random() < 0.8 else [0, 0, 0]}
        p["fg"] = [0, 0, 0] if p["bg"][0] == 255 else [255, 255, 255]
        cap, _, _ = meme_band_layout(st.w, st.h, p)
        st.shift(0, cap)
        st.h += cap
        return [_step("meme_band", **p)]
    top, bottom = (str(t).upper() for t in rng.choice(PHRASES, 2, replace=False))
    if rng.random() < 0.25:
        bottom = ""
    frac = _u(rng, 0.05, 0.09) if level == "mild" else _u(rng, 0.11, 0.18)
    p = {"top": top, "bottom": bottom, "size_frac": frac, "font": font}
    rects = [r for *_, r in impact_layout(st.w, st.h, p)]
    st.cover(rects, 1.0)
    return [_step("meme_impact", **p)]


def caption_layout(w: int, h: int, p: dict):
    band = max(16, round(p["band_frac"] * h))
    lines = p["text"].split("\n")
    size = max(8, int(band / (len(lines) * 1.45 + 0.6)))
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    while True:
        font = _font(p["font"], size)
        widest = max(draw.textbbox((0, 0), ln, font=font)[2] for ln in lines)
        if widest <= w - 2 * max(6, w // 40) or size <= 8:
            return band, font, max(6, w // 40), size
        size -= 2


def draw_caption(rng, st: State, level: str) -> list[dict]:
    text = str(rng.choice(PHRASES))
    if rng.random() < 0.3:
        text = text + "\n" + str(rng.choice(PHRASES))
    shade = int(rng.integers(0, 48))
    p = {"text": text, "font": str(rng.choice(("OpenSans-Semibold", "IBMPlexSans-Medium",
                                                "SourceSansPro-Regular"))),
         "band_rgb": [shade, shade, shade + int(rng.integers(0, 16))],
         "text_rgb": [255, 255, 255] if rng.random() < 0.85 else [255, 221, 0]}
    if level == "mild" and rng.random() < 0.7:
        p.update(over=False, band_frac=_u(rng, 0.10, 0.35), opacity=1.0)
        st.h += max(16, round(p["band_frac"] * st.h))
    else:
        frac = _u(rng, 0.08, 0.20) if level == "mild" else _u(rng, 0.28, 0.45)
        p.update(over=True, band_frac=frac, opacity=_u(rng, 0.70, 0.95, 2))
        band = max(16, round(frac * st.h))
        st.cover([(0, st.h - band, st.w, st.h)], p["opacity"])
    return [_step("caption", **p)]


def text_rects(w: int, h: int, p: dict) -> list[tuple[float, float, float, float]]:
    chars = font_chars(p["font"])
    px = int(min(w, h) * p["font_size"])
    font = _font(p["font"], px)
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    rects = []
    for i, line in enumerate(p["text"]):
        s = "".join(chr(chars[c % len(chars)]) for c in line)
        xy = (p["x_pos"] * w, p["y_pos"] * h + i * (px + 5))
        r = draw.textbbox(xy, s, font=font)
        rects.append((max(0, r[0]), max(0, r[1]), min(w, r[2]), min(h, r[3])))
    return rects


def draw_text(rng, st: State, level: str) -> list[dict]:
    font = str(rng.choice(TEXT_FONTS))
    n = len(font_chars(font))
    if level == "mild":
        lines, size, length = int(rng.integers(1, 3)), _u(rng, 0.04, 0.10), (5, 14)
    else:
        lines, size, length = int(rng.integers(2, 4)), _u(rng, 0.12, 0.20), (10, 20)
    text = [[int(c) for c in rng.integers(1, min(n, 200), int(rng.integers(*length)))]
            for _ in range(lines)]
    p = {"text": text, "font": font, "font_size": size, "opacity": _u(rng, 0.6, 1.0, 2),
         "color": _colour(rng), "x_pos": _u(rng, 0.0, 0.45), "y_pos": _u(rng, 0.0, 0.75)}
    st.cover(text_rects(st.w, st.h, p), p["opacity"])
    return [_step("text", **p)]


def draw_emoji(rng, st: State, level: str) -> list[dict]:
    if level == "mild":
        count, lo, hi = int(rng.integers(1, 3)), 0.08, 0.22
    else:
        count, lo, hi = int(rng.integers(3, 6)), 0.22, 0.40
    stickers, rects = [], []
    for _ in range(count):
        group = str(rng.choice(EMOJI_GROUPS))
        rel = f"{group}/{rng.choice(emoji_names(group))}"
        size = _u(rng, lo, hi)
        x, y = _u(rng, 0.0, 0.9), _u(rng, 0.0, 0.9)
        ew, eh = emoji_size(rel)
        nh = max(1, int(st.h * size))
        nw = int(ew * nh / eh)
        rects.append((int(st.w * x), int(st.h * y), int(st.w * x) + nw, int(st.h * y) + nh))
        stickers.append({"emoji": rel, "emoji_size": size, "x_pos": x, "y_pos": y,
                         "opacity": _u(rng, 0.85, 1.0, 2)})
    st.cover(rects, min(s["opacity"] for s in stickers))
    return [_step("emoji", stickers=stickers)]


def stripe_mask(w: int, h: int, p: dict) -> np.ndarray:
    from augly.image.utils import compute_stripe_mask

    mask = compute_stripe_mask(w, h, p["line_width"], p["line_angle"], p["line_density"])
    if p["line_type"] == "dotted":
        mask = mask * compute_stripe_mask(w, h, p["line_width"], p["line_angle"] + 90,
                                          p["line_density"])
    elif p["line_type"] == "dashed":
        mask = mask * compute_stripe_mask(w, h, 0.7, p["line_angle"] + 90, p["line_density"])
    return mask


def draw_stripes(rng, st: State, level: str) -> list[dict]:
    if level == "mild":
        width, density, opacity = _u(rng, 0.05, 0.25), _u(rng, 0.2, 0.6), _u(rng, 0.3, 0.7, 2)
    else:
        width, density, opacity = _u(rng, 0.3, 0.7), _u(rng, 0.5, 0.9), _u(rng, 0.6, 1.0, 2)
    p = {"line_width": width, "line_color": _colour(rng),
         "line_angle": float(rng.choice([0.0, 90.0, _u(rng, -80, 80, 1)])),
         "line_density": density, "line_type": str(rng.choice(["solid", "dashed", "dotted"])),
         "line_opacity": opacity}
    sw, sh = max(8, st.w // 8), max(8, st.h // 8)
    mask = stripe_mask(st.w, st.h, p)[::8, ::8][:sh, :sw]
    x0, y0, x1, y1 = (int(v) // 8 for v in st.box)
    part = mask[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)]
    share = float(part.mean()) * opacity if part.size else 0.0
    st.occlusion += share
    return [_step("stripes", **p)]


def draw_pad(rng, st: State, level: str) -> list[dict]:
    lo, hi = (0.03, 0.30) if level == "mild" else (0.30, 0.80)
    p = {"w_factor": _u(rng, lo, hi), "h_factor": _u(rng, lo, hi), "color": _colour(rng)}
    left, top = int(p["w_factor"] * st.w), int(p["h_factor"] * st.h)
    st.shift(left, top)
    st.w, st.h = st.w + 2 * left, st.h + 2 * top
    return [_step("pad", **p)]


def draw_rotate_small(rng, st: State, level: str) -> list[dict]:
    sign = 1 if rng.random() < 0.5 else -1
    if rng.random() < 0.7:  # expanded canvas (albumentations), filled with a colour
        deg = sign * (_u(rng, 1.0, 10.0, 1) if level == "mild" else _u(rng, 11.0, 30.0, 1))
        fill = [0, 0, 0] if rng.random() < 0.4 else (
            [255, 255, 255] if rng.random() < 0.5 else _colour(rng))
        st.rotate_bbox(deg)
        if abs(deg) > ROTATION_MAX:
            st.reasons.append(f"rotated {deg:g}")
        return [_step("rotate_expand", angle=deg, fill=fill, seed=int(rng.integers(2**31)))]
    # AugLy rotate: turned, then cut to the largest upright rectangle inside
    deg = sign * (_u(rng, 1.0, 3.0, 1) if level == "mild" else _u(rng, 4.0, 12.0, 1))
    from augly.image.utils import rotated_rect_with_max_area

    wr, hr = rotated_rect_with_max_area(st.w, st.h, deg)
    # a turned picture loses its corners to the cut: kept is the inner rectangle's share
    st.kept *= min(1.0, (wr * hr) / (st.w * st.h))
    st.box = [0.0, 0.0, float(int(wr)), float(int(hr))]
    st.w, st.h = int(wr), int(hr)
    if abs(deg) > ROTATION_MAX:
        st.reasons.append(f"rotated {deg:g}")
    return [_step("rotate_crop", degrees=deg)]


def draw_rotate90(rng, st: State, level: str) -> list[dict]:
    k = int(rng.choice([1, 3]))
    x0, y0, x1, y1 = st.box
    st.box = [y0, st.w - x1, y1, st.w - x0] if k == 1 else [st.h - y1, x0, st.h - y0, x1]
    st.w, st.h = st.h, st.w
    return [_step("rotate90", k=k)]


def draw_mirror(rng, st: State, level: str) -> list[dict]:
    st.box = [st.w - st.box[2], st.box[1], st.w - st.box[0], st.box[3]]
    return [_step("mirror")]


def draw_perspective(rng, st: State, level: str) -> list[dict]:
    s = _u(rng, 0.02, 0.05) if level == "mild" else _u(rng, 0.06, 0.12)
    fill = [0, 0, 0] if rng.random() < 0.5 else _colour(rng)
    if s > PERSPECTIVE_MAX:
        st.reasons.append(f"perspective {s:g}")
    return [_step("perspective", scale=s, fill=fill, seed=int(rng.integers(2**31)))]


def _crop(rng, st: State, lo: float, hi: float) -> list[dict]:
    area = float(rng.uniform(lo, hi))
    aspect = float(rng.uniform(0.8, 1.25))  # the crop's shape against the picture's
    fw = min(1.0, math.sqrt(area * aspect))
    fh = min(1.0, area / fw)
    x1 = round(float(rng.uniform(0, 1 - fw)), 3)
    y1 = round(float(rng.uniform(0, 1 - fh)), 3)
    x2, y2 = round(min(1.0, x1 + fw), 3), round(min(1.0, y1 + fh), 3)
    st.crop(int(st.w * x1), int(st.h * y1), int(st.w * x2), int(st.h * y2))
    return [_step("crop", x1=x1, y1=y1, x2=x2, y2=y2)]


def draw_crop_mild(rng, st: State, level: str) -> list[dict]:
    return _crop(rng, st, 0.72, 0.95)


def draw_crop_heavy(rng, st: State, level: str) -> list[dict]:
    return _crop(rng, st, 0.25, 0.55)


def draw_resize_jpeg(rng, st: State, level: str) -> list[dict]:
    long = max(st.w, st.h)
    if level == "mild":
        target, q = _u(rng, 300, 900, 0), int(rng.integers(35, 91))
    else:
        target, q = (_u(rng, 120, 250, 0), int(rng.integers(30, 91))) if rng.random() < 0.5 \
            else (_u(rng, 300, 900, 0), int(rng.integers(10, 30)))
    f = round(min(1.0, target / long), 4)
    st.scale(f)
    st.w, st.h = max(1, round(st.w * f)), max(1, round(st.h * f))
    if q < JPEG_MIN:
        st.reasons.append(f"jpeg q{q}")
    return [_step("resize", factor=f), _step("jpeg", quality=q)]


DRAW = {
    "screenshot": draw_screenshot, "meme": draw_meme, "caption": draw_caption,
    "overlay_text": draw_text, "emoji": draw_emoji, "stripes": draw_stripes, "pad": draw_pad,
    "rotate_small": draw_rotate_small, "rotate90": draw_rotate90, "mirror": draw_mirror,
    "perspective": draw_perspective, "crop_mild": draw_crop_mild,
    "crop_heavy": draw_crop_heavy, "resize_jpeg": draw_resize_jpeg,
}
SINGLE = tuple(f for f in FAMILIES if f != "chain")


def draw_edit(rng: np.random.Generator, family: str, w: int, h: int, level: str) -> dict:
    """One edit of ``family`` on a w x h picture: its steps, parts and mild/hard label."""
    st = State.of(w, h)
    if family == "chain":
        n = 2 if (level == "mild" or rng.random() < 0.5) else 3
        parts = [str(f) for f in rng.choice(SINGLE, n, replace=False)]
        # recompression comes last, as it does on a re-upload
        parts.sort(key=lambda f: f == "resize_jpeg")
        levels = ["mild" if (level == "mild" or rng.random() < 0.6) else "hard" for _ in parts]
    else:
        parts, levels = [family], [level]
    steps = []
    for part, lv in zip(parts, levels, strict=True):
        steps += DRAW[part](rng, st, lv)
    reasons = judge(st, len(parts))
    return {"family": family, "parts": parts, "steps": steps,
            "difficulty": "hard" if reasons else "mild", "hard_reasons": reasons,
            "expected_size": [st.w, st.h]}


# --- applying the steps -----------------------------------------------------------------------

def _albu(img: Image.Image, transform, seed: int) -> Image.Image:
    import albumentations as A

    out = A.Compose([transform], seed=seed)(image=np.asarray(img.convert("RGB")))["image"]
    return Image.fromarray(np.ascontiguousarray(out))


def apply_step(img: Image.Image, step: dict) -> Image.Image:
    import augly.image as imaugs

    op, p = step["op"], step["params"]
    img = img.convert("RGB")
    if op == "screenshot":
        out = imaugs.overlay_onto_screenshot(
            img, template_filepath=os.path.join(assets_dir(), "screenshot_templates",
                                                p["template"]),
            template_bboxes_filepath=os.path.join(assets_dir(), "screenshot_templates",
                                                  "bboxes.json"),
            max_image_size_pixels=p["max_image_size_pixels"],
            crop_src_to_fit=p["crop_src_to_fit"],
            resize_src_to_match_template=p["resize_src_to_match_template"])
    elif op == "meme_band":
        w, h = img.size
        cap, font, xy = meme_band_layout(w, h, p)
        out = Image.new("RGB", (w, h + cap), tuple(p["bg"]))
        out.paste(img, (0, cap))
        ImageDraw.Draw(out).multiline_text(xy, p["text"], font=font, fill=tuple(p["fg"]),
                                           align="center")
    elif op == "meme_impact":
        out = img.copy()
        draw = ImageDraw.Draw(out)
        for text, font, sw, xy, _ in impact_layout(*img.size, p):
            draw.text(xy, text, font=font, fill=(255, 255, 255), stroke_width=sw,
                      stroke_fill=(0, 0, 0))
    elif op == "caption":
        w, h = img.size
        band, font, margin, size = caption_layout(w, h, p)
        if p["over"]:
            out = img.copy()
            layer = Image.new("RGBA", (w, band), (*p["band_rgb"], round(255 * p["opacity"])))
            out.paste(layer, (0, h - band), layer)
            y = h - band
        else:
            out = Image.new("RGB", (w, h + band), tuple(p["band_rgb"]))
            out.paste(img, (0, 0))
            y = h
        lines = p["text"].split("\n")
        draw = ImageDraw.Draw(out)
        line_h = size * 1.45
        y0 = y + (band - line_h * len(lines)) / 2
        for i, ln in enumerate(lines):
            draw.text((margin, round(y0 + i * line_h)), ln, font=font, fill=tuple(p["text_rgb"]))
    elif op == "text":
        out = imaugs.overlay_text(img, text=p["text"], font_file=font_path(p["font"]),
                                  font_size=p["font_size"], opacity=p["opacity"],
                                  color=tuple(p["color"]), x_pos=p["x_pos"], y_pos=p["y_pos"])
    elif op == "emoji":
        out = img
        for s in p["stickers"]:
            out = imaugs.overlay_emoji(out, emoji_path=os.path.join(assets_dir(), "twemojis",
                                                                    s["emoji"]),
                                       opacity=s["opacity"], emoji_size=s["emoji_size"],
                                       x_pos=s["x_pos"], y_pos=s["y_pos"])
    elif op == "stripes":
        out = imaugs.overlay_stripes(img, line_width=p["line_width"],
                                     line_color=tuple(p["line_color"]),
                                     line_angle=p["line_angle"], line_density=p["line_density"],
                                     line_type=p["line_type"], line_opacity=p["line_opacity"])
    elif op == "pad":
        out = imaugs.pad(img, w_factor=p["w_factor"], h_factor=p["h_factor"],
                         color=tuple(p["color"]))
    elif op == "rotate_expand":
        import albumentations as A
        import cv2

        out = _albu(img, A.Affine(rotate=(p["angle"], p["angle"]), fit_output=True,
                                  border_mode=cv2.BORDER_CONSTANT, fill=tuple(p["fill"]), p=1.0),
                    p["seed"])
    elif op == "rotate_crop":
        out = imaugs.rotate(img, degrees=p["degrees"])
    elif op == "rotate90":
        from albumentations.augmentations.geometric.functional import rot90

        out = Image.fromarray(np.ascontiguousarray(rot90(np.asarray(img), p["k"])))
    elif op == "mirror":
        out = imaugs.hflip(img)
    elif op == "perspective":
        import albumentations as A
        import cv2

        out = _albu(img, A.Perspective(scale=(p["scale"], p["scale"]), keep_size=False,
                                       fit_output=True, border_mode=cv2.BORDER_CONSTANT,
                                       fill=tuple(p["fill"]), p=1.0), p["seed"])
    elif op == "crop":
        out = imaugs.crop(img, x1=p["x1"], y1=p["y1"], x2=p["x2"], y2=p["y2"])
    elif op == "resize":
        import albumentations as A
        import cv2

        w, h = img.size
        nw, nh = max(1, round(w * p["factor"])), max(1, round(h * p["factor"]))
        out = _albu(img, A.Resize(nh, nw, interpolation=cv2.INTER_AREA, p=1.0), 0)
    elif op == "jpeg":
        import albumentations as A

        out = _albu(img, A.ImageCompression(quality_range=(p["quality"], p["quality"]),
                                            compression_type="jpeg", p=1.0), 0)
    elif op == "shuffle_pixels":
        out = imaugs.shuffle_pixels(img, factor=p["factor"], seed=p["seed"])
    else:
        raise ValueError(f"unknown edit {op!r}")
    return out.convert("RGB")


def apply_steps(img: Image.Image, steps: list[dict]) -> Image.Image:
    for step in steps:
        img = apply_step(img, step)
    return img


def encode(img: Image.Image) -> bytes:
    """The query file's bytes: a baseline JPEG, the same bytes for the same picture."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=JPEG_OUT_QUALITY)
    return buf.getvalue()


def fit(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """At most max_side long (Lanczos), RGB."""
    img = img.convert("RGB")
    w, h = img.size
    f = max_side / max(w, h)
    if f >= 1:
        return img
    return img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.LANCZOS)
