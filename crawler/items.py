"""What the spider hands to the item pipelines: fetched files and what was learnt of sites."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The fields a segment of a streamed video has and an ordinary file has not (see FetchRecord).
STREAM_FIELDS = ("manifest_url", "segment_start")


@dataclass
class FetchRecord:
    """The evidence of one fetched image or video: where and when it was seen, and what it was.

    One shape the whole way from crawl to match event: the store pipeline writes it as a
    fetched_files row, a cluster node sends `to_json()` as the match task's argument and the
    worker reads it back with `from_json()`, and the matcher builds its match events from it.
    The JSON's field names are the task's wire format, shared by crawler nodes and workers of
    different releases during an upgrade: a field may be added, never renamed or dropped, and
    `from_json` passes over fields it does not know.

    A segment of a streamed video (HLS, DASH) says which stream it is of: `manifest_url`, the
    manifest the player was given (the master playlist or MPD, not the variant's playlist), and
    `segment_start`, the seconds from the start of the video at which the segment begins. An
    ordinary file has neither, and its JSON leaves them out, so it is what the last release sent.
    """

    url: str
    page_url: str
    site: str
    fetched_at: dt.datetime
    status: int
    media_type: str
    kind: str
    sha256: str
    size: int
    headers: dict[str, list[str]]
    server_ip: str | None
    store_key: str | None = None
    manifest_url: str | None = None
    segment_start: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The record's fields alone (never a subclass's, such as FetchedMedia's bytes); the
        stream's fields only when the file is a segment of one."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(FetchRecord)}
        data["fetched_at"] = self.fetched_at.isoformat()
        for name in STREAM_FIELDS:
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FetchRecord:
        known = {f.name for f in dataclasses.fields(FetchRecord)}
        values = {k: v for k, v in data.items() if k in known}
        values["fetched_at"] = dt.datetime.fromisoformat(data["fetched_at"])
        return cls(**values)


@dataclass
class FetchedMedia(FetchRecord):
    """A fetch record as the spider yields it, with the file's bytes until they are stored.

    `body` is dropped once the bytes are in the object store and hashed, so the items that
    travel further (and any queue in cluster mode) stay small.
    """

    body: bytes | None = field(default=None, repr=False)


@dataclass
class SiteFacts:
    """What notices need to know of a site, gathered while crawling it."""

    site: str
    language: str | None = None
    charset: str | None = None
    contacts: list[str] = field(default_factory=list)
    preferred_languages: list[str] = field(default_factory=list)
    security_txt_url: str | None = None
