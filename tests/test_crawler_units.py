"""Unit tests of the crawler's parts: URL canonicalisation and traps, media discovery,
security.txt, byte sniffing."""

from __future__ import annotations

import pytest
from scrapy.http import HtmlResponse

from crawler.discovery import media_urls, page_language, page_urls
from crawler.failures import failure_kind
from crawler.run import crawl_settings
from crawler.security_txt import parse_security_txt
from crawler.urls import TrapGuard, canonical_url, on_site, site_of
from engines.media import sniff_media


def test_canonical_url_drops_sessions_tracking_and_fragments() -> None:
    assert canonical_url(
        "http://Example.com/a;jsessionid=XYZ?b=2&utm_source=x&PHPSESSID=1&a=1#top"
    ) == "http://example.com/a?a=1&b=2"


def test_site_membership_includes_subdomains_not_lookalikes() -> None:
    assert site_of("https://www.Example.com/x") == "example.com"
    assert on_site("http://cdn.example.com/x", "example.com")
    assert not on_site("http://example.com.evil.net/x", "example.com")


def test_trap_guard_stops_calendars_repeating_paths_and_random_parameters() -> None:
    guard = TrapGuard()
    months = [f"http://s/calendar?month={2026 + m // 12}-{m % 12 + 1:02d}" for m in range(100)]
    assert "calendar" in [guard.check(u) for u in months]
    assert guard.check("http://s/a/more/more/more/more/") == "repeating-path"
    guard = TrapGuard()
    tokens = [guard.check(f"http://s/list?filter=t{n}x") for n in range(40)]
    assert tokens.count(None) <= 12 and "endless-parameters" in tokens
    guard = TrapGuard()
    assert all(guard.check(f"http://s/gallery?page={n}") is None for n in range(150))


PAGE = b"""<!doctype html><html lang="ko-KR"><head><base href="/g/">
<meta property="og:image" content="/og.jpg"><style>.a{background:url("bg.png")}</style>
</head><body>
<img src="a.jpg" srcset="a-1x.jpg 1x, a-2x.jpg 2x"><img data-src="//cdn.example.org/lazy.webp">
<picture><source srcset="/p.avif"><img src="p.jpg"></picture>
<div style="background-image: url('inline.jpg')"></div><div data-bg="/div-bg.jpg"></div>
<video poster="poster.jpg"><source src="/v.mp4"></video>
<a href="/full/big.JPG?x=1">big</a><a href="/page/2">next</a><a href="style.css">css</a>
<a href="javascript:void(0)">js</a>
<script>var g = {"items": ["\\/s\\/json.jpg"]};</script>
</body></html>"""


def test_media_discovery_finds_every_pattern_and_resolves_base_href() -> None:
    response = HtmlResponse("http://example.com/x/index.html", body=PAGE)
    found = set(media_urls(response))
    expected = {
        "http://example.com/og.jpg", "http://example.com/g/bg.png", "http://example.com/g/a.jpg",
        "http://example.com/g/a-1x.jpg", "http://example.com/g/a-2x.jpg",
        "http://cdn.example.org/lazy.webp", "http://example.com/p.avif",
        "http://example.com/g/p.jpg", "http://example.com/g/inline.jpg",
        "http://example.com/div-bg.jpg", "http://example.com/g/poster.jpg",
        "http://example.com/v.mp4", "http://example.com/full/big.JPG?x=1",
        "http://example.com/s/json.jpg",
    }
    assert expected <= found
    assert page_urls(response) == ["http://example.com/page/2"]
    assert page_language(response) == "ko-kr"


def test_security_txt_contacts_and_languages() -> None:
    contacts, languages = parse_security_txt(
        "# comment\nContact: mailto:abuse@example.com\ncontact: https://example.com/r\n"
        "Preferred-Languages: ko, EN\nExpires: 2030-01-01T00:00:00Z\n")
    assert contacts == ["mailto:abuse@example.com", "https://example.com/r"]
    assert languages == ["ko", "en"]


def test_media_is_sniffed_by_bytes() -> None:
    assert sniff_media(b"\xff\xd8\xff\xe0rest").mime == "image/jpeg"
    assert sniff_media(b"\x00\x00\x00\x18ftypisom").mime == "video/mp4"
    assert sniff_media(b"\x1a\x45\xdf\xa3\x01\x00webm").mime == "video/webm"
    assert sniff_media(b"\x00\x00\x00\x18ftypavif").mime == "image/avif"
    assert sniff_media(b"<!doctype html>") is None


def test_failures_are_named_by_kind() -> None:
    from scrapy.exceptions import DownloadTimeoutError, IgnoreRequest

    assert failure_kind(DownloadTimeoutError("x")) == "timeout"
    assert failure_kind(IgnoreRequest("exceeded DOWNLOAD_MAXSIZE (1 B)")) == "too-large"
    assert failure_kind(ConnectionRefusedError()) == "connection-refused"


def test_haechi_crawler_settings_are_read_from_variables_of_the_same_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAECHI_SITE_INTERVAL", "0.5")
    monkeypatch.setenv("HAECHI_SCRAPY_DOWNLOAD_TIMEOUT", "7")
    settings = crawl_settings()
    assert settings.getfloat("HAECHI_SITE_INTERVAL") == 0.5
    assert settings.getint("DOWNLOAD_TIMEOUT") == 7
    # The prefixed spelling still works, and wins where both are set.
    monkeypatch.setenv("HAECHI_SCRAPY_HAECHI_SITE_INTERVAL", "2")
    assert crawl_settings().getfloat("HAECHI_SITE_INTERVAL") == 2.0
