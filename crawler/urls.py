"""URL canonicalisation, site membership and crawler-trap detection.

Abusive sites are large, generated and often hostile: the same page under endless session ids
and tracking parameters, calendars that page forward for ever, paths that repeat themselves.
Every URL the spider follows passes through `canonical_url` (so Scrapy's duplicate filter sees
one URL per page) and a site's `TrapGuard` (so no site can hold the crawler for ever).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

# Query parameters that name a visitor or a campaign, never a different page.
_SESSION_PARAMS = {
    "sid", "sessionid", "session_id", "phpsessid", "jsessionid", "aspsessionid", "cfid",
    "cftoken", "s", "sess", "ref", "referrer", "fbclid", "gclid", "dclid", "msclkid", "yclid",
    "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "spm",
}
_SESSION_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
# ;jsessionid=... path parameters (Java servlets) and ;sid=...
_PATH_SESSION = re.compile(r";(?:jsessionid|sid|phpsessid)=[^/?#]*", re.IGNORECASE)


def canonical_url(url: str) -> str:
    """`url` without fragments, session ids or tracking parameters, query keys sorted."""
    parts = urlsplit(url)
    path = _PATH_SESSION.sub("", parts.path)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _SESSION_PARAMS and not key.lower().startswith(_SESSION_PREFIXES)
    ]
    cleaned = urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))
    return canonicalize_url(cleaned)


def site_of(url: str) -> str:
    """The site a URL belongs to: its host, lower-case, without a leading "www."."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def on_site(url: str, site: str) -> bool:
    """True when `url` is on `site` itself or one of its subdomains."""
    host = site_of(url)
    return host == site or host.endswith("." + site)


# Limits on what one site may make the crawler follow; each is far above what a real gallery
# needs and far below what a generated trap offers.
MAX_URL_LENGTH = 512
MAX_PATH_DEPTH = 14
MAX_SEGMENT_REPEATS = 3
MAX_QUERY_PARAMS = 8
# Pages that differ only in numbers (pagination, ids, dates) share a shape; a site gets this
# many pages of one shape, and fewer for date-shaped ones (calendars page on for ever).
MAX_PAGES_PER_SHAPE = 200
MAX_DATED_PAGES_PER_SHAPE = 24
# A parameter that takes ever new non-numeric values on one path (a random filter, a token per
# view) generates endless URLs for the same content.
MAX_DISTINCT_VALUES = 12

_DATE = re.compile(r"(?<!\d)(?:19|20|21)\d\d[-/_.]?(?:0[1-9]|1[0-2])(?:[-/_.]?\d\d)?(?!\d)")
_CALENDAR_WORDS = re.compile(r"calendar|(?<![a-z])(?:year|month|day|date)=", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")


def shape_of(url: str) -> str:
    """The URL with every run of digits replaced, and the query reduced to its sorted keys."""
    parts = urlsplit(url)
    keys = sorted({key for key, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return _DIGITS.sub("N", parts.path) + "?" + "&".join(keys)


def static_trap(url: str) -> str | None:
    """Why `url` alone already looks like a trap, or None."""
    if len(url) > MAX_URL_LENGTH:
        return "url-too-long"
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > MAX_PATH_DEPTH:
        return "path-too-deep"
    if segments and Counter(segments).most_common(1)[0][1] > MAX_SEGMENT_REPEATS:
        return "repeating-path"
    if len(parse_qsl(parts.query, keep_blank_values=True)) > MAX_QUERY_PARAMS:
        return "too-many-parameters"
    return None


@dataclass
class TrapGuard:
    """Per-site memory of the URL shapes followed, to stop endless families of pages."""

    shapes: Counter[str] = field(default_factory=Counter)
    values: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def check(self, url: str) -> str | None:
        """Why following `url` would feed a trap, or None (and the URL is counted)."""
        reason = static_trap(url)
        if reason:
            return reason
        shape = shape_of(url)
        dated = bool(_DATE.search(url) or _CALENDAR_WORDS.search(url))
        if dated:
            if self.shapes[shape] >= MAX_DATED_PAGES_PER_SHAPE:
                return "calendar"
        else:
            if self.shapes[shape] >= MAX_PAGES_PER_SHAPE:
                return "endless-parameters"
            for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
                if value.isdigit():
                    continue
                seen = self.values.setdefault((shape, key), set())
                if value not in seen and len(seen) >= MAX_DISTINCT_VALUES:
                    return "endless-parameters"
                seen.add(value)
        self.shapes[shape] += 1
        return None
