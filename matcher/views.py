"""Which views of an image are hashed: several at registration, few at query time.

A perceptual hash survives recompression and resizing but not geometry: a 15% crop or a 5 degree
tilt moves PDQ past its threshold. Registering the crops and tilts re-uploaders make turns those
edits into near-exact matches, and costs only storage in the bank; queries (every crawled file)
stay cheap. Rotations by 90 degrees and mirrors need no views: every query is hashed in all
eight orientations, which also catches them against hash lists that only hold the original.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from matcher.canonical import peeled_views, trim_borders

# Centre crops (share of each side kept) for re-uploads cropped evenly on all sides.
CENTRE_CROPS = (0.9, 0.8)

# One-side crops (share of the cut side kept) for re-uploads cut on one side only.
SIDE_CROPS = (0.85, 0.7)

# Small tilts (degrees) that re-uploaders and phone photos of screens add.
TILTS = (-5.0, 5.0)


# Pictures whose detail runs one way (edge energy along one axis over this many times the
# other: stripes, blinds, corrugation) are not registered tilted. A tilted stripe pattern looks
# like any other tilted stripe pattern: in scripts/bench_robustness.py every false PDQ match
# came from such tilts, while photos measured at most 3.1.
MAX_TILT_ANISOTROPY = 3.5


def anisotropy(image: Image.Image) -> float:
    """How much more the picture changes along one axis than along the other (1 = evenly)."""
    grey = np.asarray(image.convert("L").resize((128, 128), Image.Resampling.BOX), dtype=float)
    across = np.abs(np.diff(grey, axis=1)).sum()
    down = np.abs(np.diff(grey, axis=0)).sum()
    return float(max(across, down) / max(min(across, down), 1e-9))


# Meme captions (and text overlaid inside the top and bottom of a picture) cover roughly the
# top and bottom sixth. Both the query and the registration are also hashed with only the rows
# between, so text written over the picture there does not decide the hash.
MIDDLE_ROWS = (1 / 6, 5 / 6)


def _middle(image: Image.Image) -> Image.Image:
    return _crop_share(image, 0, MIDDLE_ROWS[0], 1, MIDDLE_ROWS[1])


def query_views(image: Image.Image) -> dict[str, Image.Image]:
    """The image as found, each distinct crop the peelers find in it, and its middle rows."""
    return {"full": image, **peeled_views(image), "middle": _middle(image)}


def _tilt(image: Image.Image, degrees: float) -> Image.Image:
    """Rotate within the same frame, corners filled black, as most editors do by default."""
    return image.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=False)


def _crop_share(image: Image.Image, left: float, top: float, right: float, bottom: float):
    width, height = image.size
    return image.crop(
        (round(left * width), round(top * height), round(right * width), round(bottom * height))
    )


def _tilt_inner(image: Image.Image, degrees: float) -> Image.Image:
    """Rotate, then crop to the largest centred box with no fill corners."""
    width, height = image.size
    rotated = _tilt(image, degrees)
    angle = math.radians(abs(degrees))
    cos, sin = math.cos(angle), math.sin(angle)
    # The axis-aligned box of the original's aspect that fits inside the rotated frame.
    scale = min(width / (width * cos + height * sin), height / (width * sin + height * cos))
    keep = (1 - scale) / 2
    return _crop_share(rotated, keep, keep, 1 - keep, 1 - keep)


def registration_views(image: Image.Image) -> dict[str, Image.Image]:
    """Named views of a victim image: as given, centre and side crops, and small tilts.

    The picture as given is the base. When its own edges are uniform (a framed photo, a plain
    sky), the trimmed picture is registered too: a re-upload that cut the frame away matches
    that view, while a letterboxed copy, peeled back to the picture as given, matches the base.
    """
    base = image
    views = {"full": base}
    trimmed = trim_borders(image)
    if trimmed is not image:
        views["trimmed"] = trimmed
    views["middle"] = _middle(base)
    for keep in CENTRE_CROPS:
        cut = (1 - keep) / 2
        views[f"crop-centre-{keep:.2f}"] = _crop_share(base, cut, cut, 1 - cut, 1 - cut)
    for keep in SIDE_CROPS:
        cut = 1 - keep
        views[f"crop-left-{keep:.2f}"] = _crop_share(base, cut, 0, 1, 1)
        views[f"crop-right-{keep:.2f}"] = _crop_share(base, 0, 0, keep, 1)
        views[f"crop-top-{keep:.2f}"] = _crop_share(base, 0, cut, 1, 1)
        views[f"crop-bottom-{keep:.2f}"] = _crop_share(base, 0, 0, 1, keep)
    if anisotropy(base) <= MAX_TILT_ANISOTROPY:
        for degrees in TILTS:
            views[f"tilt-{degrees:+.0f}"] = _tilt(base, degrees)
            views[f"tilt-inner-{degrees:+.0f}"] = _tilt_inner(base, degrees)
    return views
