"""Files other parties publish that Haechi ships a copy of: IANA's RDAP bootstrap files and the
CDNs' IP range lists.

Each is shipped in takedown/data/ (so a fresh installation works offline and tests read only
the checkout) and can be refreshed from its publisher's URL. A refreshed copy is written to the
data folder, never over the shipped one, and only once it parsed: a publisher (or whoever sits
between us and it) that serves a truncated or hostile file leaves Haechi on the copy it had.
Reading prefers the data folder's copy and falls back to the shipped one when the refreshed
copy is missing or no longer parses.

Every refresh goes through engines/fetch (the outbound policy, a byte cap, redirects checked
hop by hop): a published URL is as able to redirect to the metadata service as any page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from crawler.settings import USER_AGENT
from engines.fetch import Fetcher, FetchLimits
from engines.home import data_home, private_folder, write_atomically

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent / "data"
# The largest published file we accept: IANA's dns.json is about 100 kB, AWS's CloudFront
# list about 10 kB; a few MB leaves room for growth and none for a memory bomb.
MAX_PUBLISHED_BYTES = 4_000_000
PUBLISHED_LIMITS = FetchLimits(timeout=30.0, max_bytes=MAX_PUBLISHED_BYTES, max_redirects=3,
                               user_agent=USER_AGENT)

T = TypeVar("T")


class PublishedFileError(ValueError):
    """A published file that cannot be used: unreachable, too large, or not what it claims
    to be. The message names the file and the party that served it."""


def refreshed_path(name: str) -> Path:
    """Where the refreshed copy of shipped file `name` (e.g. "rdap/dns.json") is kept."""
    return data_home() / "published" / name


def read_published(name: str, parse: Callable[[bytes], T]) -> T:
    """`name` parsed: the refreshed copy if there is one that parses, else the shipped copy
    (whose failure to parse is a bug in the checkout, and raises)."""
    refreshed = refreshed_path(name)
    if refreshed.is_file():
        try:
            return parse(refreshed.read_bytes())
        except (OSError, PublishedFileError) as exc:
            log.warning("the refreshed %s is not used (%s): reading the shipped copy",
                        refreshed, exc)
    return parse((SHIPPED / name).read_bytes())


def fetch_published(url: str, fetcher: Fetcher) -> bytes:
    """The whole body `url` serves, or PublishedFileError saying why not."""
    got = fetcher(url)
    if not got.whole:
        reason = got.error or f"HTTP status {got.status}"
        raise PublishedFileError(f"{url}: {reason}")
    return got.body


def write_refreshed(name: str, data: bytes) -> Path:
    """Write `data` as the refreshed copy of `name`, atomically (a reader never sees half a
    file), mode 600 like everything in the data folder."""
    path = refreshed_path(name)
    private_folder(path.parent)
    write_atomically(path, data)
    return path


def published_fetcher() -> Fetcher:
    """A Fetcher within the published files' limits, under the process's outbound policy."""
    return Fetcher(PUBLISHED_LIMITS)
