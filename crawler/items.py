"""What the spider hands to the item pipelines."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass
class FetchedMedia:
    """One image or video as fetched: the evidence record, plus the bytes until stored.

    `body` is dropped by the store pipeline once the bytes are in the object store, so the
    items that travel further (and any queue in cluster mode) stay small.
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
    body: bytes | None = field(default=None, repr=False)
    store_key: str | None = None


@dataclass
class SiteFacts:
    """What notices need to know of a site, gathered while crawling it."""

    site: str
    language: str | None = None
    charset: str | None = None
    contacts: list[str] = field(default_factory=list)
    preferred_languages: list[str] = field(default_factory=list)
    security_txt_url: str | None = None
