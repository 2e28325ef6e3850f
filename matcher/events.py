"""Match events: what the matcher tells the rest of the world, in a versioned JSON schema.

Every hit of a fetched file against the bank becomes one event. Consumers (the takedown case
store on the embedded default; any case system that reads the Redis stream in cluster mode)
see only this schema, never the matcher's internals. Sinks are named by dotted path in the
MATCH_EVENT_SINKS setting, so the matcher never imports its consumers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from crawler.items import FetchRecord

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

SCHEMA = "haechi.match-event/1"


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

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fetched_at"] = self.fetched_at.isoformat()
        data["detected_at"] = self.detected_at.isoformat()
        return {"schema": SCHEMA, **data}

    @classmethod
    def of_fetch(cls, fetch: FetchRecord | Mapping[str, Any], match: Any,
                 detected_at: dt.datetime) -> MatchEvent:
        """The event of `match` (victim, algorithm, distance, second) in the fetched file.

        A fetched_files row is still taken for re-scan (matcher/rescan.py), which reads rows,
        until it reads fetch records; it is turned into one here, so there is one way from a
        fetch to its event."""
        if not isinstance(fetch, FetchRecord):
            # Imported here, for this case alone: the embedded crawl's hashing processes
            # import this module, and need not carry the crawler's tables (and HTTP client).
            from crawler.records import fetch_record

            fetch = fetch_record(fetch)
        return cls(victim=match.victim, algorithm=match.algorithm, distance=match.distance,
                   second=match.second, image_url=fetch.url, page_url=fetch.page_url,
                   site=fetch.site, sha256=fetch.sha256, media_type=fetch.media_type,
                   fetched_at=fetch.fetched_at, detected_at=detected_at,
                   server_ip=fetch.server_ip, status=fetch.status, store_key=fetch.store_key,
                   headers=fetch.headers)

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
