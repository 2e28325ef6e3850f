"""What a reviewer sees of a matched file: blurred and grey by default, clear on request.

The picture comes from the case's encrypted evidence copy when there is one, else from the
crawl's object store; a video shows its still nearest the matched second (for a segment of a
streamed video, the matched second of the whole video).
"""

from __future__ import annotations

import io
import itertools
from typing import Any

from PIL import Image, ImageFilter

from engines.objects import ObjectStore
from engines.sealed import media_bytes
from matcher.decode import UnreadableImage
from matcher.events import first_second
from matcher.video import stills
from takedown.evidence import read_encrypted_copy

PREVIEW_SIZE = 320
BLUR_RADIUS = 12


def case_picture(store: ObjectStore, case: dict[str, Any]) -> Image.Image:
    if case.get("evidence_key"):
        data = read_encrypted_copy(store, case["evidence_key"])
    elif case.get("store_key"):
        data = media_bytes(store, case["store_key"])
    else:
        raise UnreadableImage("no stored copy of this file")
    pictures = stills(data)  # one at a time: a long video's stills are not all kept
    first = next(pictures)
    target = case.get("second") or 0.0
    if case.get("segment_start") is not None:
        # A segment of a streamed video: the case's second is the whole video's, and the
        # segment's frames count from its first one (matcher/events.py).
        target = target - case["segment_start"] + (first_second([first]) or 0.0)
    return min(itertools.chain([first], pictures),
               key=lambda still: abs((still.second or 0.0) - target)).image


def render_preview(picture: Image.Image, clear: bool) -> bytes:
    image = picture.copy()
    image.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    if not clear:
        image = image.convert("L").filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()
