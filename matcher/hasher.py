"""Turns a file's bytes into the hashes the bank stores (registration) or searches (query).

Byte signals (SHA-256) hash the file; pixel signals hash the decoded views chosen in views.py:
all registration views upright, and each query view in its eight orientations. Hashes whose
quality is under the signal's floor are dropped here, so nothing downstream matches on them.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from matcher import seen_words
from matcher.decode import UnreadableImage, decode_image
from matcher.signals import SIGNAL_TYPES, SignalType
from matcher.video import stills
from matcher.views import query_views, registration_views


@dataclass(frozen=True)
class HashRecord:
    """One hash to store in the bank for a victim."""

    algorithm: str
    code: bytes
    view: str
    quality: int


@dataclass(frozen=True)
class SeenForm:
    """What the seen index (matcher/seen.py) keeps of one still, so that a victim who registers
    later is found in it wherever the live match would have found them.

    `codes`: for each global pixel signal, the upright hash of every query view (the picture as
    found, each crop the peelers find, its middle rows), deduplicated, one after the other. The
    live match hashes each view in eight orientations against the registration's upright views;
    a re-scan hashes the registration's views in eight orientations against these, which is the
    same comparison turned round, at an eighth of the bytes per file. `words`: the visual words
    of the picture's local features (matcher/seen_words.py), for the copies only the local stage
    finds.
    """

    codes: dict[str, bytes]
    words: bytes = b""


@dataclass
class QueryHashes:
    """All hashes of one query file, grouped by algorithm, as rows of uint8 codes."""

    sha256: str
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    # The PDQ hash of the picture as found, upright (also the first of `seen`'s PDQ codes).
    seen_code: bytes | None = None
    # What the seen index keeps of this still; None for hashes read back from a hash cache.
    seen: SeenForm | None = None


@dataclass
class FrameHashes:
    """Query hashes of one still: a whole image (`second` None) or a video frame."""

    second: float | None
    hashes: QueryHashes


# The signal the seen index (matcher/seen.py) keeps one hash of per crawled file.
SEEN_SIGNAL = "pdq"


class ImageHasher:
    """Computes registration and query hashes with a chosen set of signal types."""

    def __init__(self, signals: Iterable[SignalType] | None = None) -> None:
        self.signals = list(signals) if signals is not None else list(SIGNAL_TYPES.values())

    @property
    def pixel_signals(self) -> list[SignalType]:
        """The global pixel hashes (PDQ, pHash): every view, eight orientations."""
        return [s for s in self.signals if not s.hashes_bytes and not s.geometric]

    @property
    def local_signals(self) -> list[SignalType]:
        """Local features (matcher/signals/local.py): the picture as given, and the query as
        found, upright and mirrored; the second stage of the cascade."""
        return [s for s in self.signals if s.geometric]

    def registration_hashes(self, data: bytes, local: bool = False) -> list[HashRecord]:
        """Hashes for a victim image or video; raises UnreadableImage when nothing can match.

        A video registers the hashes of its sampled frames (frames too plain to register, such
        as black fades, are skipped). With `local`, each still's local features are registered
        too (`haechi register` asks for them; callers written before the local stage get the
        global hashes alone, as before), and a picture too plain for the global hashes is
        registered under them when it has the structure.
        """
        records = [
            HashRecord(s.name, s.hash_bytes(data).code, "file", 100)
            for s in self.signals
            if s.hashes_bytes
        ]
        local = local and bool(self.local_signals)
        if not self.pixel_signals and not local:
            return records
        pixel_records = []
        for second, image in stills(data):
            prefix = "" if second is None else f"t{second:g}:"
            pixel_records.extend(self._registration_pixels(image, prefix))
            if local:
                pixel_records.extend(self._registration_local(image, prefix))
        if not pixel_records:
            raise UnreadableImage(
                "image is too plain or unstable to register: its hashes score under the "
                "quality floor or change when the same picture is re-saved"
                + (", and it has too few corners for local features" if local else "")
            )
        return records + unique_records(pixel_records)

    def _registration_local(self, image: Image.Image, prefix: str = "") -> list[HashRecord]:
        """The picture's local features, when it has the structure to verify a copy by (a
        picture too plain for PDQ or pHash can still have it: a line drawing, a flat room)."""
        found = []
        resaved = None
        for signal in self.local_signals:
            hashed = signal.hash_image(image)
            if not signal.registrable(hashed):
                continue
            # As for the global hashes: features the verifier no longer confirms in the same
            # picture merely shrunk and re-saved (a soft picture's corners are JPEG's) cannot
            # find re-uploads, and are not registered.
            resaved = resaved or _resaved(image, LOCAL_RESAVE_SCALE)
            if signal.finds(hashed.code, resaved):
                found.append(HashRecord(signal.name, hashed.code, prefix + "full",
                                        hashed.quality))
        return found

    def _registration_pixels(self, image: Image.Image, prefix: str = "") -> list[HashRecord]:
        views = registration_views(image)
        resaved = _resaved(image)
        pixel_records = []
        for signal in self.pixel_signals:
            # Judged on the whole picture: a plain picture's tilted views gain fill corners
            # that look like structure, and must not make it registrable.
            whole = signal.hash_image(views["full"])
            if whole.quality < signal.min_quality:
                continue
            # A hash that no longer matches when the same picture is merely shrunk and re-saved
            # (flat gradients, parallel stripes: coefficients near the median flip) cannot find
            # re-uploads, only collide; such a picture is not registered under this signal.
            if signal.distance(whole.code, signal.hash_image(resaved).code) > signal.threshold:
                continue
            for view_name, view in views.items():
                if not signal.registers_view(view_name):
                    continue
                hashed = whole if view_name == "full" else signal.hash_image(view)
                if hashed.quality >= signal.min_quality:
                    pixel_records.append(
                        HashRecord(signal.name, hashed.code, prefix + view_name, hashed.quality)
                    )
        return pixel_records

    def query_hashes(self, data: bytes) -> QueryHashes:
        """Hashes of a crawled image in every query view and orientation."""
        result = self._byte_hashes(data)
        if self.pixel_signals or self.local_signals:
            codes, result.seen_code, result.seen = self._pixel_hashes(decode_image(data))
            result.codes.update(codes)
        return result

    def media_hashes(self, data: bytes) -> list[FrameHashes]:
        """Query hashes of an image (one entry, second None) or of a video's sampled frames.

        Raises UnreadableImage when the file is neither a readable image nor a readable video.
        """
        whole = self._byte_hashes(data)
        if not self.pixel_signals and not self.local_signals:
            return [FrameHashes(None, whole)]
        frames = []
        for second, image in stills(data):
            codes, seen_code, seen = self._pixel_hashes(image)
            if second is None:  # an image: its picture is the file, one entry for both
                whole.codes.update(codes)
                whole.seen_code, whole.seen = seen_code, seen
            else:
                frames.append(FrameHashes(second, QueryHashes(whole.sha256, codes, seen_code,
                                                              seen)))
        # A video's byte hashes are an entry of their own, before its frames.
        return ([FrameHashes(None, whole)] if whole.codes or not frames else []) + frames

    def _byte_hashes(self, data: bytes) -> QueryHashes:
        byte_signal = next((s for s in self.signals if s.name == "sha256"), None)
        digest = (byte_signal or SIGNAL_TYPES["sha256"]).hash_bytes(data).code
        result = QueryHashes(sha256=digest.hex())
        if byte_signal is not None:
            result.codes["sha256"] = np.frombuffer(digest, np.uint8).reshape(1, -1)
        return result

    def _pixel_hashes(self, image: Image.Image
                      ) -> tuple[dict[str, np.ndarray], bytes | None, SeenForm]:
        pixel_signals = self.pixel_signals
        rows: dict[str, list[bytes]] = {s.name: [] for s in pixel_signals}
        upright: dict[str, list[bytes]] = {s.name: [] for s in pixel_signals}
        seen_code = None
        views = query_views(image)
        for name, view in views.items():
            for signal in pixel_signals:
                hashes = signal.hash_dihedral(view)
                if hashes and hashes[0].quality >= signal.min_quality:  # upright first
                    upright[signal.name].append(hashes[0].code)
                    if name == "full" and signal.name == SEEN_SIGNAL:
                        seen_code = hashes[0].code
                rows[signal.name].extend(
                    h.code for h in hashes if h.quality >= signal.min_quality
                )
        codes = {}
        for name, found in rows.items():
            if found:
                unique = list(dict.fromkeys(found))
                codes[name] = np.frombuffer(b"".join(unique), np.uint8).reshape(len(unique), -1)
        words = b""
        # The local stage describes the crops the peelers found too (not the middle rows: a
        # band of the picture, which the picture as found already holds).
        peeled = [view for name, view in views.items() if name not in ("full", "middle")]
        for signal in self.local_signals:
            local_rows = signal.query_rows(image, peeled)
            if len(local_rows):
                codes[signal.name] = local_rows
                words = seen_words.file_words(local_rows)
        # The whole picture's hash first, so that a seen row's first code is what a row of an
        # earlier release held.
        kept = {name: b"".join(dict.fromkeys(
                    ([seen_code] if name == SEEN_SIGNAL and seen_code else []) + found))
                for name, found in upright.items() if found}
        return codes, seen_code, SeenForm(kept, words)


# The mildest re-upload: half the size, re-saved as a JPEG of middling quality.
RESAVE_SCALE = 0.5
RESAVE_QUALITY = 60
# Local features are checked on a milder re-save (three quarters of the size): verification
# needs 35 corners to agree, and a soft picture keeps too few of them at half size, while its
# copies posted near its own size still match (on the tuning split, `bench_robustness.py
# --library`, this registered 2 more of 204 regions under the local stage and found 1.2% more
# copies, with no false match).
LOCAL_RESAVE_SCALE = 0.75


def _resaved(image: Image.Image, scale: float = RESAVE_SCALE) -> Image.Image:
    width, height = image.size
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=RESAVE_QUALITY)
    return decode_image(buffer.getvalue())


def unique_records(
    records: Iterable[HashRecord], already: set[tuple[str, bytes]] | None = None
) -> list[HashRecord]:
    """`records` without repeats of an (algorithm, code) pair, nor of any pair in `already`.

    Views of one picture often hash alike (a tilt of a symmetric picture, a crop of a flat
    border); one row per distinct hash keeps the bank and its index small.
    """
    seen = set(already or ())
    kept = []
    for record in records:
        key = (record.algorithm, record.code)
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


_process_hasher: ImageHasher | None = None


def hash_in_process(data: bytes) -> list[FrameHashes] | str:
    """A file's hashes in a hashing pool's process, or the sentence saying why there are none;
    it never raises, so one strange file never stops the run.

    It lives here, not beside the pool (matcher/pipeline.py), because a spawned process imports
    the module of the function it runs: this one needs numpy, Pillow and OpenCV, the pipeline's
    module Scrapy and SQLAlchemy as well (a process's start 0.45 s against 1.2 s of CPU here,
    every pool and every rebuilt pool)."""
    global _process_hasher
    if _process_hasher is None:
        _process_hasher = ImageHasher()
    try:
        return _process_hasher.media_hashes(data)
    except UnreadableImage as exc:
        return str(exc)
    except Exception as exc:  # one strange file never stops the run
        return f"internal error while hashing: {type(exc).__name__}: {exc}"
