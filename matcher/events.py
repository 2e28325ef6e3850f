"""Match events: what the matcher tells the rest of the world, in a versioned JSON schema.

Every hit of a fetched file against the bank becomes one event. Consumers (the takedown case
store on the embedded default; any case system that reads the Redis stream in cluster mode)
see only this schema, never the matcher's internals. Sinks are named by dotted path in the
MATCH_EVENT_SINKS setting, so the matcher never imports its consumers.

A file fetched as a segment of a streamed video (its fetch record has a `manifest_url` and a
`segment_start`) raises events that name the stream: `image_url` is the segment's URL,
`manifest_url` the manifest's, and `second` the second of the whole video, which is the
segment's start plus how far into the segment the frame is. That distance is taken from the
segment's own first frame (`origin`), not from its timestamps alone: a segment's timestamps
often run on from the segments before it (DASH fragments, HLS streams cut by a packager), so
the frame at second 3 of a segment starting at 60 s may be stamped 63 s, or 64.4 s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from crawler.items import FetchRecord

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

SCHEMA = "haechi.match-event/1"
# Fields only an event of a streamed video's segment has (optional within version 1).
STREAM_FIELDS = ("manifest_url", "segment_start")


def video_second(segment_start: float | None, second: float | None,
                 origin: float | None = None) -> float | None:
    """Where a match is in the video: `second` itself for a file that is no segment
    (`segment_start` None); for a segment, its start plus the frame's distance from the
    segment's first frame (`origin`; 0 when not known), or its start alone for a match of the
    whole segment (a byte hash, no frame)."""
    if segment_start is None:
        return second
    if second is None:
        return segment_start
    return round(segment_start + max(0.0, second - (origin or 0.0)), 2)


def first_second(frames: Iterable[Any]) -> float | None:
    """The second of the first video frame among a file's hashed frames (matcher/hasher.py's
    FrameHashes, or matcher/video.py's stills: anything with a `second`), None for an image.
    matcher/video.py samples a video's first decodable frame first, so this is where the
    file's own timeline begins."""
    return next((frame.second for frame in frames if frame.second is not None), None)


@dataclass(frozen=True)
class MatchEvent:
    """One victim found in one fetched file (at one second, for a video)."""

    victim: str
    algorithm: str
    distance: int
    image_url: str
    page_url: str
    site: str
    sha256: str
    media_type: str
    fetched_at: dt.datetime
    detected_at: dt.datetime
    second: float | None = None
    server_ip: str | None = None
    status: int | None = None
    store_key: str | None = None
    headers: dict[str, list[str]] = field(default_factory=dict)
    # A segment of a streamed video (see the module docstring); None for any other file.
    manifest_url: str | None = None
    segment_start: float | None = None
    # A local-feature match (matcher/local_index.py): the keypoint matches geometric
    # verification confirmed, more is closer; `distance` is then the median descriptor
    # distance of those inliers. None for every other algorithm.
    inliers: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The event in its schema; the stream's fields only for a segment of one, and
        `inliers` only for a local-feature match, so any other event is what the last release
        wrote."""
        data = asdict(self)
        data["fetched_at"] = self.fetched_at.isoformat()
        data["detected_at"] = self.detected_at.isoformat()
        for name in (*STREAM_FIELDS, "inliers"):
            if data[name] is None:
                del data[name]
        return {"schema": SCHEMA, **data}

    @classmethod
    def of_fetch(cls, fetch: FetchRecord | Mapping[str, Any], match: Any,
                 detected_at: dt.datetime, origin: float | None = None) -> MatchEvent:
        """The event of `match` (victim, algorithm, distance, inliers, second) in the fetched file;
        `origin` is the second of the file's first sampled frame, by which a segment's frame
        is placed in the whole video (`video_second`).

        A fetched_files row is still taken for re-scan (matcher/rescan.py), which reads rows,
        until it reads fetch records; it is turned into one here, so there is one way from a
        fetch to its event."""
        if not isinstance(fetch, FetchRecord):
            # Imported here, for this case alone: the embedded crawl's hashing processes
            # import this module, and need not carry the crawler's tables (and HTTP client).
            from crawler.records import fetch_record

            fetch = fetch_record(fetch)
        return cls(victim=match.victim, algorithm=match.algorithm, distance=match.distance,
                   inliers=getattr(match, "inliers", None),
                   second=video_second(fetch.segment_start, match.second, origin),
                   image_url=fetch.url, page_url=fetch.page_url,
                   site=fetch.site, sha256=fetch.sha256, media_type=fetch.media_type,
                   fetched_at=fetch.fetched_at, detected_at=detected_at,
                   server_ip=fetch.server_ip, status=fetch.status, store_key=fetch.store_key,
                   headers=fetch.headers, manifest_url=fetch.manifest_url,
                   segment_start=fetch.segment_start)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchEvent:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"unknown match event schema {data.get('schema')!r}, "
                             f"expected {SCHEMA!r}")
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["fetched_at"] = dt.datetime.fromisoformat(values["fetched_at"])
        values["detected_at"] = dt.datetime.fromisoformat(values["detected_at"])
        return cls(**values)


class MatchEventSink(Protocol):
    """Receives match events; built with `from_settings(settings)`."""

    def deliver(self, events: list[MatchEvent]) -> None: ...


def load_sinks(settings: BaseSettings) -> list[MatchEventSink]:
    """The sinks the MATCH_EVENT_SINKS setting names by dotted path, each built from
    `settings`: by name, so the matcher never imports its consumers (the case intake, the
    crawler's re-crawl schedule)."""
    # Imported here: Scrapy takes half a second to import, which readers of events (the
    # takedown side) need not pay.
    from scrapy.utils.misc import load_object

    return [load_object(path).from_settings(settings)
            for path in settings.getlist("MATCH_EVENT_SINKS")]
