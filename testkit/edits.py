"""The edits re-uploaders make to an image, applied to test pictures.

The robustness benchmark, the tests and the demo all edit victim stand-ins with these, so the
claim "an edited copy still matches" means the same thing everywhere. Each edit is a function
of (image, random generator) so a corpus is reproducible from its seed.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Edit = Callable[[Image.Image, np.random.Generator], Image.Image]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def jpeg_q25(image, rng):
    return jpeg(image, 25)


def downscale_third(image, rng):
    w, h = image.size
    return image.resize((max(1, w // 3), max(1, h // 3)), Image.Resampling.BILINEAR)


def upscale(image, rng):
    w, h = image.size
    return image.resize((int(w * 1.8), int(h * 1.8)), Image.Resampling.BICUBIC)


def crop_5_each_side(image, rng):
    w, h = image.size
    return image.crop((round(w * 0.05), round(h * 0.05), round(w * 0.95), round(h * 0.95)))


def crop_15_one_side(image, rng):
    w, h = image.size
    side = int(rng.integers(4))
    box = [(round(w * 0.15), 0, w, h), (0, 0, round(w * 0.85), h),
           (0, round(h * 0.15), w, h), (0, 0, w, round(h * 0.85))][side]
    return image.crop(box)


def rotate_5(image, rng):
    degrees = 5.0 if rng.random() < 0.5 else -5.0
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False)


def rotate_90(image, rng):
    return image.transpose(Image.Transpose.ROTATE_90)


def mirror(image, rng):
    return ImageOps.mirror(image)


def caption_bar(image, rng):
    w, h = image.size
    bar = max(24, h // 6)
    light = rng.random() < 0.5
    canvas = Image.new("RGB", (w, h + bar), (255, 255, 255) if light else (0, 0, 0))
    top = rng.random() < 0.5
    canvas.paste(image, (0, bar if top else 0))
    draw = ImageDraw.Draw(canvas)
    y = (0 if top else h) + bar // 4
    draw.text((w // 20, y), "when you see it lol #viral", font=_font(min(bar // 2, w // 16)),
              fill=(0, 0, 0) if light else (255, 255, 255))
    return canvas


def watermark(image, rng):
    w, h = image.size
    layer = image.convert("RGBA")
    overlay = Image.new("RGBA", layer.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.text((w * 0.6, h * 0.92), "hotpics.example", font=_font(min(h // 28, w // 16)),
              fill=(255, 255, 255, 140))
    return Image.alpha_composite(layer, overlay).convert("RGB")


def meme_text(image, rng):
    w, h = image.size
    out = image.copy()
    draw = ImageDraw.Draw(out)
    font = _font(min(h // 9, w // 14))
    for text, y in (("WHEN SHE SAYS", h * 0.03), ("SHE IS ONLY 5 MIN AWAY", h * 0.84)):
        draw.text((w * 0.06, y), text, font=font, fill=(255, 255, 255),
                  stroke_width=max(1, h // 150), stroke_fill=(0, 0, 0))
    return out


def brightness(image, rng):
    return ImageEnhance.Brightness(image).enhance(1.35)


def contrast(image, rng):
    return ImageEnhance.Contrast(image).enhance(1.6)


def greyscale(image, rng):
    return ImageOps.grayscale(image).convert("RGB")


def sepia(image, rng):
    grey = np.asarray(ImageOps.grayscale(image), dtype=np.float32)
    tone = np.stack([grey * 1.07, grey * 0.74, grey * 0.43], axis=2) + np.array([20, 10, 0])
    return Image.fromarray(np.clip(tone, 0, 255).astype(np.uint8))


def letterbox(image, rng):
    w, h = image.size
    pad = max(8, h // 5)
    canvas = Image.new("RGB", (w, h + 2 * pad), (0, 0, 0))
    canvas.paste(image, (0, pad))
    return canvas


def blur(image, rng):
    return image.filter(ImageFilter.GaussianBlur(radius=max(1.0, max(image.size) / 300)))


def noise(image, rng):
    pixels = np.asarray(image, dtype=np.int16)
    noisy = pixels + rng.normal(0, 12, pixels.shape).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def stretch(image, rng):
    w, h = image.size
    return image.resize((int(w * 1.3), h), Image.Resampling.BILINEAR)


def screenshot(image, rng):
    """The image shown on a web page in a browser window, captured whole."""
    w, h = image.size
    scale = 640 / max(w, h)
    shown = image.resize((max(1, int(w * scale)), max(1, int(h * scale))))
    sw, sh = shown.size
    width, height = sw + 260, sh + 230
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 34), fill=(222, 225, 230))  # tab strip
    draw.rectangle((10, 6, 220, 34), fill=(255, 255, 255))  # active tab
    draw.text((20, 12), "Hot pics - gallery", font=_font(13), fill=(30, 30, 30))
    draw.rectangle((0, 34, width, 74), fill=(247, 247, 247))  # toolbar
    draw.rounded_rectangle((90, 41, width - 90, 67), radius=12, fill=(235, 236, 240))
    draw.text((110, 47), "https://pics.example/gallery/1234", font=_font(13), fill=(60, 60, 60))
    for x in (15, 40, 65):
        draw.ellipse((x, 47, x + 14, 61), fill=(120, 120, 120))
    draw.text((40, 90), "Posted by anon - 2 hours ago", font=_font(16), fill=(40, 40, 40))
    canvas.paste(shown, (40, 125))
    draw.text((40, 135 + sh), "1.2k views  |  share  |  report", font=_font(14), fill=(90, 90, 90))
    draw.rectangle((width - 14, 74, width, height), fill=(241, 241, 241))  # scrollbar
    draw.rectangle((width - 12, 120, width - 2, 220), fill=(193, 193, 193))
    return canvas


def combo_crop_jpeg_caption(image, rng):
    return caption_bar(jpeg(crop_5_each_side(image, rng), 40), rng)


def combo_mirror_grey_small(image, rng):
    return downscale_third(greyscale(mirror(image, rng), rng), rng)


def combo_screenshot_jpeg(image, rng):
    return jpeg(screenshot(image, rng), 50)


# Edits that leave the whole picture in place; the targets ask ≥ 0.98 recall on these.
MILD_EDITS: dict[str, Edit] = {
    "jpeg_q25": jpeg_q25,
    "downscale_third": downscale_third,
    "upscale": upscale,
    "mirror": mirror,
    "rotate_90": rotate_90,
    "watermark": watermark,
    "brightness": brightness,
    "contrast": contrast,
    "greyscale": greyscale,
    "sepia": sepia,
    "blur": blur,
    "noise": noise,
    "stretch": stretch,
    "letterbox": letterbox,
}

# Edits that cut, cover or wrap the picture.
HARD_EDITS: dict[str, Edit] = {
    "crop_5_each_side": crop_5_each_side,
    "crop_15_one_side": crop_15_one_side,
    "rotate_5": rotate_5,
    "caption_bar": caption_bar,
    "meme_text": meme_text,
    "screenshot": screenshot,
    "combo_crop_jpeg_caption": combo_crop_jpeg_caption,
    "combo_mirror_grey_small": combo_mirror_grey_small,
    "combo_screenshot_jpeg": combo_screenshot_jpeg,
}

EDITS: dict[str, Edit] = {**MILD_EDITS, **HARD_EDITS}
