"""Sitemaps as sites publish them (issue 14, "sitemap only"): robots.txt, an index of gzipped
sitemaps, Google's image and video extensions; and hostile ones are bounded."""

from __future__ import annotations

import gzip

import pytest

from crawler.sitemaps import MAX_SITEMAP_BYTES, SitemapError, read_sitemap, robots_sitemaps

ROBOTS = b"""User-agent: *
Disallow: /admin/
Crawl-delay: 2

Sitemap: https://img.example/sitemap_index.xml
sitemap: /sitemaps/video.xml.gz
Sitemap: javascript:alert(1)
"""

INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://img.example/sitemaps/posts-1.xml.gz</loc>
    <lastmod>2026-11-30T10:00:00+00:00</lastmod></sitemap>
  <sitemap><loc>https://img.example/sitemaps/posts-2.xml.gz</loc></sitemap>
</sitemapindex>"""

POSTS = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"
        xmlns:video="http://www.google.com/schemas/sitemap-video/1.1">
  <url><loc>https://img.example/p/8812</loc><changefreq>daily</changefreq>
    <image:image><image:loc>https://i.img.example/8812/full.jpg</image:loc>
      <image:caption>사진</image:caption></image:image>
    <image:image><image:loc>https://i.img.example/8812/2.webp</image:loc></image:image>
  </url>
  <url><loc>https://img.example/v/77</loc>
    <video:video><video:thumbnail_loc>https://i.img.example/v77.jpg</video:thumbnail_loc>
      <video:title>clip</video:title>
      <video:content_loc>https://v.img.example/77.mp4</video:content_loc></video:video>
  </url>
</urlset>""".encode()


def test_robots_index_and_gzipped_sitemaps_give_pages_and_pictures() -> None:
    assert robots_sitemaps(ROBOTS, "https://img.example/robots.txt") == [
        "https://img.example/sitemap_index.xml", "https://img.example/sitemaps/video.xml.gz"]
    assert robots_sitemaps(b"User-agent: *\n", "https://a.example/robots.txt") == [
        "https://a.example/sitemap.xml"]
    index = read_sitemap(INDEX, "https://img.example/sitemap_index.xml")
    assert index.sitemaps == ["https://img.example/sitemaps/posts-1.xml.gz",
                              "https://img.example/sitemaps/posts-2.xml.gz"]
    assert index.pages == index.media == []
    posts = read_sitemap(gzip.compress(POSTS), "https://img.example/sitemaps/posts-1.xml.gz")
    assert posts.pages == ["https://img.example/p/8812", "https://img.example/v/77"]
    assert posts.media == ["https://i.img.example/8812/full.jpg",
                           "https://i.img.example/8812/2.webp",
                           "https://i.img.example/v77.jpg", "https://v.img.example/77.mp4"]


def test_hostile_sitemaps_are_errors_not_memory() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * (MAX_SITEMAP_BYTES + 1024) + b"</urlset>")
    assert len(bomb) < 1 << 20
    with pytest.raises(SitemapError, match="expanded"):
        read_sitemap(bomb, "https://h/s.xml.gz")
    with pytest.raises(SitemapError):
        read_sitemap(b"\x1f\x8bnot gzip at all", "https://h/s.xml.gz")
    entity = (b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
              b'<urlset><url><loc>https://h/&x;</loc></url></urlset>')
    assert all("etc" not in url and len(url) < 40
               for url in read_sitemap(entity, "https://h/s.xml").pages)
    not_found = read_sitemap(b"<html><body>Not found</body>", "https://h/s.xml")
    assert not_found.pages == not_found.media == not_found.sitemaps == []
    with pytest.raises(SitemapError):
        read_sitemap(b"", "https://h/s.xml")
