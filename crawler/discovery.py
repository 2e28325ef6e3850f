"""Finding every image, video and in-site link a page shows a visitor, whatever its markup.

Gallery sites hide their media behind lazy loading (`data-src` and a dozen cousins), responsive
`srcset`s, CSS backgrounds, social-card meta tags and plain links to files. Relative,
protocol-relative and `<base href>` URLs are resolved by Scrapy's `response.urljoin`, which
honours `<base>`. What a URL really holds is decided later from its bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from scrapy.http import HtmlResponse

from crawler.appdata import AppData, app_data

# File extensions that mark a link as media to fetch rather than a page to parse.
MEDIA_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif",
    ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".flv",
    # Streaming manifests (crawler/streaming.py): fetched like media, read as manifests.
    ".m3u8", ".mpd",
)
# Non-HTML files a page may link to that are neither media nor pages.
SKIP_EXTENSIONS = (
    ".css", ".js", ".json", ".xml", ".pdf", ".zip", ".rar", ".7z", ".gz", ".txt", ".ico",
    ".svg", ".woff", ".woff2", ".ttf", ".mp3", ".wav", ".ogg", ".exe", ".apk", ".dmg",
)

# Attributes that lazy-loading scripts move the real image address into.
_LAZY_ATTRIBUTES = (
    "src", "data-src", "data-original", "data-lazy-src", "data-lazy", "data-url", "data-img",
    "data-image", "data-full", "data-full-src", "data-hi-res", "data-large", "data-large-file",
    "data-medium-file", "data-orig-file", "data-echo", "data-bg", "data-background",
    "data-background-image", "data-zoom-image", "data-thumb", "data-poster", "data-video",
    "data-mp4", "data-webm", "data-flickity-lazyload", "lowsrc", "poster", "background",
)
_SRCSET_ATTRIBUTES = ("srcset", "data-srcset", "data-lazy-srcset", "imagesrcset")
_MEDIA_ELEMENTS = "//img | //picture/source | //video | //video/source | //audio/source | " \
    "//input[@type='image'] | //*[@background] | //*[starts-with(name(), 'amp-')]"
_META_PROPERTIES = (
    "og:image", "og:image:url", "og:image:secure_url", "og:video", "og:video:url",
    "og:video:secure_url", "twitter:image", "twitter:image:src", "twitter:player:stream",
    "thumbnail", "image",
)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+?)\1\s*\)""", re.IGNORECASE)
_JSON_MEDIA_URL = re.compile(
    r"""["'](?P<url>(?:https?:)?(?:\\?/)[^"'\s<>]+?\.(?:jpe?g|png|gif|webp|mp4|webm|m3u8|mpd)"""
    r"""(?:\?[^"'\s<>]*)?)["']""",
    re.IGNORECASE,
)


def _srcset_urls(value: str) -> Iterator[str]:
    # Candidates are separated by commas followed by whitespace; a URL may itself hold commas.
    for candidate in re.split(r",\s+", value.strip()):
        url = candidate.strip().split()[0] if candidate.strip() else ""
        if url:
            yield url


def _usable(url: str) -> bool:
    url = url.strip()
    return bool(url) and not url.lower().startswith(("javascript:", "about:", "#", "mailto:"))


def page_links(response: HtmlResponse) -> tuple[list[str], list[str]]:
    """(media URLs, page URLs) of the page: its scripts are read and their app state decoded
    once for both."""
    scripts = _inline_scripts(response)
    data = app_data(scripts)
    return _media_urls(response, scripts, data), _page_urls(response, data)


def media_urls(response: HtmlResponse) -> list[str]:
    """Absolute URLs of every image and video the page shows or links to, first seen first."""
    return page_links(response)[0]


def page_urls(response: HtmlResponse) -> list[str]:
    """Absolute URLs of the pages the page links to (media and other files excluded)."""
    return page_links(response)[1]


def _media_urls(response: HtmlResponse, scripts: list[tuple[str, str]], data: AppData
                ) -> list[str]:
    found: list[str] = []
    for element in response.xpath(_MEDIA_ELEMENTS):
        attributes = element.attrib
        for name in _LAZY_ATTRIBUTES:
            if name in attributes:
                found.append(attributes[name])
        for name in _SRCSET_ATTRIBUTES:
            if name in attributes:
                found.extend(_srcset_urls(attributes[name]))
    # Lazy loaders on any element (div data-bg, a data-src...), not only on img.
    for value in response.xpath(
        "//*[not(self::img or self::source or self::video or self::script)]/@*["
        "starts-with(name(), 'data-') and (contains(name(), 'src') or contains(name(), 'bg') "
        "or contains(name(), 'image') or contains(name(), 'img'))]"
    ).getall():
        if "/" in value or _has_extension(value, MEDIA_EXTENSIONS):
            found.extend(_srcset_urls(value) if ", " in value else [value])
    for prop in _META_PROPERTIES:
        found.extend(response.xpath(
            f"//meta[@property='{prop}' or @name='{prop}' or @itemprop='{prop}']/@content"
        ).getall())
    found.extend(response.xpath(
        "//link[@rel='image_src' or (@rel='preload' and @as='image')]/@href"
    ).getall())
    for css in response.xpath("//@style").getall() + response.xpath("//style/text()").getall():
        found.extend(match.group(2) for match in _CSS_URL.finditer(css))
    for href in response.xpath("//a/@href | //area/@href").getall():
        if _has_extension(href, MEDIA_EXTENSIONS):
            found.append(href)
    # Galleries built by scripts keep their list in app state (crawler/appdata.py) or, in
    # plain JS arrays that are no JSON, as quoted root-relative paths.
    found.extend(data.media)
    # Players and galleries keep their configuration as JSON in a data attribute.
    found.extend(app_data(_json_attributes(response)).media)
    for _, script in scripts:
        found.extend(m.group("url").replace("\\/", "/") for m in _JSON_MEDIA_URL.finditer(script))
    return _absolute_unique(response, found)


def _page_urls(response: HtmlResponse, data: AppData) -> list[str]:
    found = response.xpath(
        "//a/@href | //area/@href | //link[@rel='next' or @rel='prev']/@href | "
        "//iframe/@src | //frame/@src"
    ).getall()
    found.extend(data.pages)
    pages = [u for u in found if not _has_extension(u, MEDIA_EXTENSIONS + SKIP_EXTENSIONS)]
    return _absolute_unique(response, pages)


def _json_attributes(response: HtmlResponse) -> list[tuple[str, str]]:
    """Data attributes holding JSON (`data-config='{"file": ...}'`), as JSON blobs."""
    return [("application/json", value) for value in response.xpath(
        "//@*[starts-with(name(), 'data-')][starts-with(normalize-space(), '{') or "
        "starts-with(normalize-space(), '[')]").getall()]


def _inline_scripts(response: HtmlResponse) -> list[tuple[str, str]]:
    """(type attribute, text) of each inline script."""
    return [(script.attrib.get("type", ""), script.xpath("string()").get() or "")
            for script in response.xpath("//script[not(@src)]")]



def _has_extension(url: str, extensions: tuple[str, ...]) -> bool:
    path = url.split("#", 1)[0].split("?", 1)[0].lower()
    return path.endswith(extensions)


def _absolute_unique(response: HtmlResponse, urls: list[str]) -> list[str]:
    result: dict[str, None] = {}
    for url in urls:
        url = url.strip()
        if not _usable(url):
            continue
        if url.startswith("data:"):
            if url[5:].lower().startswith(("image/", "video/")):
                result[url] = None
            continue
        absolute = response.urljoin(url)
        if absolute.startswith(("http://", "https://")):
            result[absolute] = None
    return list(result)


def page_language(response: HtmlResponse) -> str | None:
    """The page's declared language: `<html lang>`, then Content-Language, then meta tags."""
    declared = (
        response.xpath("/html/@lang | /html/@xml:lang").get()
        or (response.headers.get("Content-Language") or b"").decode("latin-1")
        or response.xpath(
            "//meta[translate(@http-equiv, 'CONTENTLANGUAGE', 'contentlanguage')="
            "'content-language']/@content | //meta[@property='og:locale']/@content"
        ).get()
    )
    if not declared:
        return None
    first = declared.split(",")[0].strip().replace("_", "-")
    return first.lower() or None
