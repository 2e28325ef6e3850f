"""Media and pages in the data a page's scripts carry (issue 14, "app state in inline JSON"):
Next.js, Nuxt-style assignments, JSON.parse strings and JSON-LD, with the escapes and relative
paths real bundles write; and a hostile page cannot make the walk slow or deep."""

from __future__ import annotations

import json
import time

from scrapy.http import HtmlResponse

from crawler.appdata import MAX_STRINGS, app_data
from crawler.discovery import media_urls, page_urls

NEXT_PAGE = """<!doctype html><html><head><title>gallery</title></head><body><div id="__next"></div>
<script id="__NEXT_DATA__" type="application/json">{"props":{"pageProps":{"gallery":[
{"id":1,"image":"\\u002Fuploads\\u002F2024\\u002Fa.jpg","alt":"a"},
{"id":2,"thumbnailUrl":"media/77/preview"}],"nextPage":"/gallery?cursor=eyJwIjoyfQ"}},
"page":"/gallery","buildId":"x1"}</script>
<script>window.__INITIAL_STATE__ = {"posts":[{"src":"https:\\/\\/cdn.example.net\\/p\\/1.webp",
"permalink":"/post/7"}]};window.track=function(){return 1};</script>
<script>self.__APP__=JSON.parse('{"photo":"\\\\/img\\\\/9.png","title":"it\\'s"}')</script>
<script type="application/ld+json">{"@context":"https://schema.org","@type":"ImageObject",
"contentUrl":"https://example.com/c/77","url":"https://example.com/p/77"}</script>
<script type="text/template"><img src="/from-template.jpg"></script>
</body></html>"""


def test_app_state_of_real_bundles_gives_its_media_and_pages() -> None:
    response = HtmlResponse("http://example.com/gallery", body=NEXT_PAGE.encode())
    media = set(media_urls(response))
    assert {"http://example.com/uploads/2024/a.jpg", "http://example.com/media/77/preview",
            "https://cdn.example.net/p/1.webp", "http://example.com/img/9.png",
            "https://example.com/c/77"} <= media
    assert "http://example.com/from-template.jpg" in media  # a client template renders it
    pages = set(page_urls(response))
    assert {"http://example.com/gallery?cursor=eyJwIjoyfQ", "http://example.com/post/7",
            "https://example.com/p/77"} <= pages
    assert "https://schema.org" not in pages | media


def test_words_and_names_are_not_urls() -> None:
    found = app_data([("application/json", json.dumps(
        {"title": "a day at the sea", "image": "sunset", "author": "kim/lee", "ratio": "4/3",
         "tags": ["beach", "summer"], "next": None, "count": 3, "image_type": "image/jpeg",
         "image_ratio": "16/9", "video_date": "05/2024", "thumb_mime": "image/webp"}))])
    assert found.media == [] and found.pages == []


def test_a_hostile_blob_is_bounded() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    wide = json.dumps({"items": [{"image": f"/i/{n}.jpg"} for n in range(MAX_STRINGS * 3)]})
    started = time.monotonic()
    assert app_data([("application/json", deep)]).media == []
    found = app_data([("application/json", wide), ("", "window.x = " + deep)])
    assert len(found.media) <= MAX_STRINGS
    assert time.monotonic() - started < 30  # far more than it needs; bounded, not timed
