"""Re-scan: a newly registered victim searched against everything already crawled.

The seen index (matcher/seen.py) keeps every crawled file's query views upright and its local
features as visual words. The live match compares each query view in eight orientations with
the registered views upright; the re-scan turns that round: every registration view of the
victim's pictures in eight orientations (and the registered codes, for a victim registered
from a hash list) against the kept views, and the pictures' local features, upright and
mirrored, as words. Each candidate file is read back from the object store and matched in full,
so only confirmed matches become events, one per URL the file was fetched from (a segment of a
streamed video: with its stream and the second of the whole video, as the crawl's own events).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

import numpy as np
from PIL import Image

from crawler.records import CrawlRecords
from engines.objects import ObjectStore
from engines.sealed import SealedMediaError, media_bytes
from matcher import seen_words
from matcher.bank import VictimBank
from matcher.confirm import Showing, judge_with, still_shows
from matcher.decode import UnreadableImage
from matcher.events import MatchEvent, first_second
from matcher.hasher import SEEN_SIGNAL
from matcher.match import Matcher
from matcher.seen import GLOBAL_COLUMNS, SeenIndex
from matcher.signals import get_signal
from matcher.signals.local import LocalSignal
from matcher.video import stills
from matcher.views import registration_views


def _images(pictures: Iterable[bytes]) -> list[Image.Image]:
    images = []
    for data in pictures:
        try:
            images.extend(still.image for still in stills(data))
        except UnreadableImage:
            continue
    return images


def victim_codes(bank: VictimBank, victim: str, pictures: Iterable[bytes],
                 algorithm: str = SEEN_SIGNAL, images: list[Image.Image] | None = None
                 ) -> np.ndarray:
    """The codes to search the seen views with under one global signal: the registered ones,
    and every registration view of each picture in its eight orientations."""
    signal = get_signal(algorithm)
    rows = [bytes(row) for row in bank.codes(victim, algorithm)]
    for image in _images(pictures) if images is None else images:
        for view in registration_views(image).values():
            rows.extend(h.code for h in signal.hash_dihedral(view)
                        if h.quality >= signal.min_quality)
    unique = list(dict.fromkeys(rows))
    return np.frombuffer(b"".join(unique), np.uint8).reshape(len(unique), signal.nbytes)


def victim_words(images: list[Image.Image]) -> np.ndarray:
    """The visual words of each picture's local features, upright and mirrored (the seen
    files keep theirs upright; the live match describes a query both ways)."""
    local = LocalSignal()
    words = [seen_words.words_of(local.features(picture).descriptors)
             for image in images
             for picture in (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    return np.unique(np.concatenate(words)) if words else np.zeros(0, np.uint16)


def rescan(victim: str, pictures: Iterable[bytes], bank: VictimBank, seen: SeenIndex,
           store: ObjectStore, records: CrawlRecords) -> list[MatchEvent]:
    """Confirmed match events for `victim` among the files crawled so far."""
    matcher = Matcher(bank)
    events = []
    now = dt.datetime.now(dt.UTC)
    images = _images(pictures)
    codes = {name: victim_codes(bank, victim, (), name, images) for name in GLOBAL_COLUMNS}
    for sha256 in sorted(seen.candidates(codes, victim_words(images))):
        fetches = records.files(sha256)
        stored = next((f["store_key"] for f in reversed(fetches) if f["store_key"]), None)
        if stored is None:
            continue
        try:
            frames = matcher.hasher.media_hashes(media_bytes(store, stored))
        except (UnreadableImage, OSError, SealedMediaError):
            continue
        confirmed = [m for m in matcher.match_frames(frames) if m.victim == victim]
        if not confirmed:
            continue
        best = min(confirmed, key=lambda m: m.distance)
        latest = {f["url"]: f for f in fetches}  # the last fetch of each URL
        origin = first_second(frames)  # where a segment's own timeline begins
        for fetch in latest.values():
            events.append(MatchEvent.of_fetch(fetch, best, now, origin))
    return events


def recheck(events: list[MatchEvent], victim_matcher: Matcher, store: ObjectStore
            ) -> tuple[list[MatchEvent], int]:
    """Fetch each earlier copy again: keep the events whose URL is still seen serving the
    victim's picture (matcher/confirm.py: the same file, or another that still matches, kept
    in the store like a crawled one), with this fetch's time and status; returns them and
    how many were not seen (no answer, any status but 2xx, or a picture that no longer
    matches)."""
    from crawler.refetch import LIMITS
    from engines.fetch import Fetcher
    from engines.objects import media_key

    judge = judge_with(victim_matcher)
    online, gone = [], 0
    with Fetcher(LIMITS) as fetch:
        for event in events:
            seen = still_shows(event.image_url, event.victim, event.sha256, judge, fetch)
            if not seen.shows:
                gone += 1
                continue
            got, store_key = seen.fetched, event.store_key
            if seen.showing is Showing.MATCHES:
                store_key = media_key(got.sha256)
                store.put(store_key, got.body)
            online.append(dataclasses.replace(
                event, sha256=got.sha256, status=got.status,
                fetched_at=dt.datetime.now(dt.UTC), store_key=store_key))
    return online, gone
