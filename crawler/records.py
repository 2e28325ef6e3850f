"""The crawler's own tables: every fetched file and what was learnt of every site.

A fetched-file row is the evidence of where and when a file was seen (URL, page, headers,
server address, time, SHA-256), kept whether or not it matched, so a victim who registers
tomorrow can be told where their picture already was. A segment of a streamed video also keeps
its stream's manifest URL and the second of the video the segment starts at.

Nearly every value in these rows was written by the site: its URLs, headers, language, charset
and security.txt. The checks below (also used for the takedown tables) make each one fit its
column before it is written. A value that would break the INSERT (a NUL, which PostgreSQL
refuses in text; a lone surrogate, which UTF-8 cannot carry; a value longer than its column)
must not cost the rows written beside it, and a value that cannot be made safe without
changing what it says is refused with UnsafeValue, naming the field, instead of being cut.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from crawler.items import FetchRecord, SiteFacts
from crawler.security_txt import (
    MAX_LANGUAGE_TAG_CHARS,
    bounded_contacts,
    bounded_languages,
    language_tag,
)
from engines.db import UtcDateTime, open_engine, upgrade
from engines.fetch import ip_literal

metadata = MetaData()

fetched_files = Table(
    "fetched_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("page_url", Text, nullable=False),
    Column("site", String(255), nullable=False),
    Column("fetched_at", UtcDateTime, nullable=False),
    Column("status", Integer, nullable=False),
    Column("size", Integer, nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("headers", JSON, nullable=False),
    Column("server_ip", String(64)),
    Column("store_key", String(200)),
    # A segment of a streamed video (migration 0007): its manifest, and the second of the
    # video it starts at; NULL for every other file.
    Column("manifest_url", Text),
    Column("segment_start", Float),
    Index("ix_fetched_files_sha256", "sha256"),
    Index("ix_fetched_files_site", "site"),
)

sites = Table(
    "sites",
    metadata,
    Column("site", String(255), primary_key=True),
    Column("language", String(MAX_LANGUAGE_TAG_CHARS)),
    Column("charset", String(40)),
    Column("contacts", JSON, nullable=False),
    Column("preferred_languages", JSON, nullable=False),
    Column("security_txt_url", Text),
    Column("updated_at", UtcDateTime, nullable=False),
)



class UnsafeValue(ValueError):
    """A site-controlled value that no table takes as it is; the message names the field."""


# The longest URL a row keeps. Above the request-line limits of the common web servers
# (Apache 8,190 bytes, nginx 8 KiB, http.sys 16 KiB), so no URL a server could have answered
# is refused, yet bounded, so a site cannot make a row, or a notice listing it, as large as
# it likes.
MAX_URL_BYTES = 16 * 1024
# Response headers kept as evidence of a fetch: more than real responses send, few and short
# enough that a hostile server's thousands of headers or megabyte values stay out of the rows.
MAX_HEADERS = 64
MAX_HEADER_VALUES = 8
MAX_HEADER_NAME_CHARS = 128
MAX_HEADER_VALUE_CHARS = 2048
# RFC 1035: a host name is at most 253 characters written out, a label at most 63.
MAX_HOST_CHARS = 253
# Ends a descriptive text that was cut, so nobody reads it as all there was.
CUT_MARK = "…[cut]"

_SURROGATE = re.compile("[\ud800-\udfff]")
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_CHARSET = re.compile(r"^[A-Za-z0-9!#$%&'+^_`{}~.:-]+$")  # RFC 2978 mime-name characters
_DATA_MEDIA_TYPE = re.compile(r"^data:([a-z0-9.+-]+/[a-z0-9.+-]+)", re.IGNORECASE)


def storable(text: str) -> str:
    """`text` as every column can hold it: NULs dropped, lone surrogates (JSON can carry them,
    UTF-8 cannot) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def bounded(text: str, limit: int) -> str:
    """`storable(text)` of at most `limit` characters, the cut marked. For descriptive text
    (header values, error messages) only, never for a value that names something."""
    text = storable(text)
    return text if len(text) <= limit else text[:limit - len(CUT_MARK)] + CUT_MARK


def url_value(value: object, field: str) -> str:
    """A URL as rows keep it, or UnsafeValue if it is not an http(s) or data: URL or is an
    http(s) URL longer than MAX_URL_BYTES.

    Control characters and spaces are percent-encoded (what a browser sends for them, so the
    URL names the same resource), lone surrogates replaced. A data: URL longer than the bound
    is named by the SHA-256 of its text: its content is the fetched file itself, which the
    object store keeps under its own SHA-256.
    """
    if not isinstance(value, str):
        raise UnsafeValue(f"{field}: not text")
    url = _SURROGATE.sub("\ufffd", _URL_UNSAFE.sub(_percent_encoded, value.strip()))
    scheme, colon, _ = url.partition(":")
    if not colon or scheme.lower() not in ("http", "https", "data"):
        raise UnsafeValue(f"{field}: not an http(s) or data: URL")
    if len(url.encode()) <= MAX_URL_BYTES:
        return url
    if scheme.lower() != "data":
        raise UnsafeValue(f"{field}: longer than {MAX_URL_BYTES} bytes")
    media = _DATA_MEDIA_TYPE.match(url)
    digest = hashlib.sha256(url.encode()).hexdigest()
    return f"data:{media.group(1).lower() if media else ''};sha256,{digest}"


def _percent_encoded(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


def site_value(value: object, field: str = "site") -> str:
    """A site as rows name it: its host name in lower-case ASCII (IDNA-encoded) or its IP
    address, normalised; UnsafeValue if it is neither."""
    if not isinstance(value, str):
        raise UnsafeValue(f"{field}: not text")
    host = value.strip().lower().rstrip(".")
    address = ip_literal(host)
    if address is not None:
        return str(address)
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeValue(f"{field}: not a host name") from None
    if len(host) > MAX_HOST_CHARS or not all(_HOST_LABEL.match(p) for p in host.split(".")):
        raise UnsafeValue(f"{field}: not a host name")
    return host


def ip_value(value: object) -> str | None:
    """A server's address as rows keep it (normalised), None if it is not an IP address."""
    if not isinstance(value, str):
        return None
    parsed = ip_literal(value.strip())
    if parsed is None:
        return None
    address = str(parsed)
    return address if len(address) <= fetched_files.c.server_ip.type.length else None


def optional_url_value(value: object, field: str) -> str | None:
    """`url_value(value)` for a URL a record stands without (a segment's manifest): None when
    there is none or it is no usable URL, instead of refusing the record."""
    if value is None:
        return None
    try:
        return url_value(value, field)
    except UnsafeValue:
        return None


# The latest second of a video a segment may start at: far beyond any stream (the streaming
# parser bounds a video to 100,000 segments of under a day), and within an SQL INTEGER, which
# the cases' checks also take as the bound of a second.
MAX_SEGMENT_START = 2**31 - 1


def seconds_value(value: object) -> float | None:
    """A second of a video as rows keep it (finite, from 0 to MAX_SEGMENT_START), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and 0 <= seconds <= MAX_SEGMENT_START else None


def headers_value(value: object) -> dict[str, list[str]]:
    """Response headers as rows keep them: names and values text, each bounded in number and
    length (see MAX_HEADERS); anything else dropped."""
    if not isinstance(value, dict):
        return {}
    kept: dict[str, list[str]] = {}
    for name, values in itertools.islice(value.items(), MAX_HEADERS):
        if isinstance(values, str):
            values = [values]
        if not isinstance(name, str) or not isinstance(values, list | tuple):
            continue
        kept[bounded(name, MAX_HEADER_NAME_CHARS)] = [
            bounded(v, MAX_HEADER_VALUE_CHARS) for v in values[:MAX_HEADER_VALUES]
            if isinstance(v, str)]
    return kept


def charset_value(value: object) -> str | None:
    """A charset name as its column keeps it (an RFC 2978 name fits its 40), else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    limit = sites.c.charset.type.length
    return value if 0 < len(value) <= limit and _CHARSET.match(value) else None


def _site_values(facts: SiteFacts) -> dict[str, Any]:
    """What is known of `facts.site`, each value checked; unknown or unusable ones left out,
    so they never replace what an earlier visit learnt."""
    try:
        security_txt_url = url_value(facts.security_txt_url, "security_txt_url")
    except UnsafeValue:
        security_txt_url = None
    values = {
        "language": language_tag(facts.language), "charset": charset_value(facts.charset),
        "contacts": bounded_contacts(facts.contacts),
        "preferred_languages": bounded_languages(facts.preferred_languages),
        "security_txt_url": security_txt_url,
    }
    return {k: v for k, v in values.items() if v not in (None, [])}


def _file_row(record: FetchRecord) -> dict[str, Any]:
    """The fetched_files row of `record`, each site-written value checked. Its `kind` has no
    column: it is the media type's first part, which `fetch_record` reads back. A segment's
    manifest URL or start that no column can take is left out: the file's row stands without
    it (and is still the evidence of the segment's own URL)."""
    row = record.to_json()
    del row["kind"]
    row.update(fetched_at=record.fetched_at, url=url_value(record.url, "url"),
               page_url=url_value(record.page_url, "page_url"), site=site_value(record.site),
               server_ip=ip_value(record.server_ip), headers=headers_value(record.headers),
               manifest_url=optional_url_value(record.manifest_url, "manifest_url"),
               segment_start=seconds_value(record.segment_start))
    return row


def fetch_record(row: Mapping[str, Any]) -> FetchRecord:
    """The fetch record a fetched_files row keeps."""
    return FetchRecord.from_json({**row, "fetched_at": row["fetched_at"].isoformat(),
                                  "kind": row["media_type"].partition("/")[0]})


class CrawlRecords:
    """Writes and reads the crawler's tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        upgrade(engine)

    @classmethod
    def open(cls, url: str | None = None) -> CrawlRecords:
        return cls(open_engine(url))

    def record_files(self, records: list[FetchRecord]) -> None:
        if not records:
            return
        rows = [_file_row(record) for record in records]
        with self.engine.begin() as conn:
            conn.execute(fetched_files.insert(), rows)

    def record_site(self, facts: SiteFacts) -> None:
        """Merge `facts` into the site's row: what is newly known replaces what was.

        Values the site wrote are checked first (see `_site_values`); UnsafeValue if the site
        itself is not a host name.
        """
        now = dt.datetime.now(dt.UTC)
        site = site_value(facts.site)
        values = {"site": site, **_site_values(facts)}
        with self.engine.begin() as conn:
            row = conn.execute(select(sites).where(sites.c.site == site)).mappings().first()
            if row is None:
                conn.execute(sites.insert(), [{
                    "contacts": [], "preferred_languages": [], **values, "updated_at": now,
                }])
            else:
                conn.execute(
                    sites.update().where(sites.c.site == site),
                    [{**values, "updated_at": now}],
                )

    def site(self, site: str) -> SiteFacts | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(sites).where(sites.c.site == site)).mappings().first()
        if row is None:
            return None
        return SiteFacts(**{k: row[k] for k in SiteFacts.__dataclass_fields__})

    def files(self, sha256: str | None = None) -> list[dict]:
        query = select(fetched_files).order_by(fetched_files.c.id)
        if sha256:
            query = query.where(fetched_files.c.sha256 == sha256)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]
