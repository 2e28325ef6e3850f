"""Sitemaps: the pages and pictures a site lists for search engines, where links do not lead.

Image hosts and tube sites often show little to a crawler that follows links (a search box, a
script-built home page) while their sitemaps list every page, picture and video for Google:
robots.txt names them (`Sitemap:` lines), a sitemap index names more sitemaps, often gzipped,
and each `<url>` may carry `<image:loc>` (Google's image extension) and `<video:content_loc>`
or `<video:thumbnail_loc>` (the video extension). This module reads them; the spider decides
what to fetch under its page budget and trap guard.

Hostile input: the robots.txt scan uses Scrapy's helper, gzip is expanded with Scrapy's
size-capped `gunzip`, and the XML parser resolves no entity and reads no network or file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

# A sitemap larger than this, expanded, is not read (the protocol's limit is 50 MB).
MAX_SITEMAP_BYTES = 50 << 20
# Entries read per sitemap (the protocol's limit is 50,000 URLs).
MAX_ENTRIES = 50_000
_IMAGE_LOCS = ("loc",)
_VIDEO_LOCS = ("content_loc", "thumbnail_loc", "player_loc")


class SitemapError(ValueError):
    """A sitemap that cannot be read (not XML, too large, a bad gzip); says why."""


@dataclass
class SitemapContent:
    """What one sitemap lists: more sitemaps (an index), pages, and media."""

    sitemaps: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    media: list[str] = field(default_factory=list)


def robots_sitemaps(body: bytes, robots_url: str) -> list[str]:
    """The sitemaps a robots.txt names; none named: the conventional /sitemap.xml."""
    from scrapy.utils.sitemap import sitemap_urls_from_robots

    found = [url for url in sitemap_urls_from_robots(body[:512 * 1024], base_url=robots_url)
             if url.startswith(("http://", "https://"))]
    return found or [urljoin(robots_url, "/sitemap.xml")]


def _expanded(body: bytes) -> bytes:
    if body[:2] != b"\x1f\x8b":
        return body
    from scrapy.utils.gz import gunzip

    try:
        return gunzip(body, max_size=MAX_SITEMAP_BYTES)
    except Exception as exc:  # DecompressionMaxSizeExceeded, a bad stream: the same to us
        raise SitemapError(f"the gzipped sitemap cannot be expanded: {exc}") from None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def read_sitemap(body: bytes, url: str) -> SitemapContent:
    """The entries of a sitemap or sitemap index (gzipped or not), resolved against `url`."""
    from lxml import etree

    data = _expanded(body)
    if len(data) > MAX_SITEMAP_BYTES:
        raise SitemapError(f"a sitemap of {len(data)} bytes, over {MAX_SITEMAP_BYTES}")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             recover=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"not a sitemap: {exc}") from None
    if root is None:
        raise SitemapError("not a sitemap: no XML in it")
    content = SitemapContent()
    index = _local(root.tag) == "sitemapindex"
    for entry in list(root)[:MAX_ENTRIES]:
        kind = _local(entry.tag)
        for child in entry:
            name, text = _local(child.tag), (child.text or "").strip()
            if name == "loc" and text:
                (content.sitemaps if index or kind == "sitemap" else content.pages).append(
                    urljoin(url, text))
            elif name in ("image", "video"):
                wanted = _IMAGE_LOCS if name == "image" else _VIDEO_LOCS
                content.media.extend(
                    urljoin(url, (loc.text or "").strip()) for loc in child
                    if _local(loc.tag) in wanted and (loc.text or "").strip())
    return content
