"""The crawler's own tables: every fetched file and what was learnt of every site.

A fetched-file row is the evidence of where and when a file was seen (URL, page, headers,
server address, time, SHA-256), kept whether or not it matched, so a victim who registers
tomorrow can be told where their picture already was.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from crawler.items import FetchedMedia, SiteFacts
from haechi.home import UtcDateTime, open_engine

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
    Index("ix_fetched_files_sha256", "sha256"),
    Index("ix_fetched_files_site", "site"),
)

sites = Table(
    "sites",
    metadata,
    Column("site", String(255), primary_key=True),
    Column("language", String(35)),
    Column("charset", String(40)),
    Column("contacts", JSON, nullable=False),
    Column("preferred_languages", JSON, nullable=False),
    Column("security_txt_url", Text),
    Column("updated_at", UtcDateTime, nullable=False),
)


class CrawlRecords:
    """Writes and reads the crawler's tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    @classmethod
    def open(cls, url: str | None = None) -> CrawlRecords:
        return cls(open_engine(url))

    def record_files(self, items: list[FetchedMedia]) -> None:
        if not items:
            return
        rows = [
            {k: v for k, v in asdict(item).items() if k not in ("body", "kind")}
            for item in items
        ]
        with self.engine.begin() as conn:
            conn.execute(fetched_files.insert(), rows)

    def record_site(self, facts: SiteFacts) -> None:
        """Merge `facts` into the site's row: what is newly known replaces what was."""
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            row = conn.execute(select(sites).where(sites.c.site == facts.site)).mappings().first()
            values = {k: v for k, v in asdict(facts).items() if v not in (None, [])}
            if row is None:
                conn.execute(sites.insert(), [{
                    "contacts": [], "preferred_languages": [], **values, "updated_at": now,
                }])
            else:
                conn.execute(
                    sites.update().where(sites.c.site == facts.site),
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
