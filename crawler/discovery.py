"""Finding every image, video and in-site link a page shows a visitor, whatever its markup.

Gallery sites hide their media behind lazy loading (`data-src` and a dozen cousins), responsive
`srcset`s, CSS backgrounds, social-card meta tags and plain links to files; and the full-size
picture of a gallery often lives only in a lightbox's data attribute (PhotoSwipe
`data-pswp-src`, fancybox `data-src`, WooCommerce `data-large_image`, `data-zoom`, `data-hires`)
or in the `href` of a link a lightbox script opens. So every `data-*` attribute of every element
is read (`data_attribute_media`): a URL in it is media when its path ends in a media extension,
when it has the shape of a media-serving path (an image CDN's transform, an uploads folder), or
when the attribute's name says it holds a picture; never when it is text, JSON, a selector, a
MIME type or a link to a page; and a URL taken as media is no page link too.

Relative, protocol-relative and `<base href>` URLs are resolved by Scrapy's `response.urljoin`,
which honours `<base>`. What a URL really holds is decided later from its bytes. The media
extensions are crawler/appdata.py's one list (`MEDIA_EXTENSIONS`, re-exported here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from urllib.parse import urlsplit

from scrapy.http import HtmlResponse

from crawler.appdata import (
    MEDIA_EXTENSION_PATTERN,
    MEDIA_EXTENSIONS,
    AppData,
    app_data,
    has_media_extension,
    path_of,
)

__all__ = [
    "MEDIA_EXTENSIONS", "SKIP_EXTENSIONS", "data_attribute_media", "is_lightbox_link",
    "media_shaped", "media_urls", "page_language", "page_links", "page_urls", "url_shaped",
]

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
# A quoted URL with a media extension in a script that is no JSON (plain JS arrays).
_JSON_MEDIA_URL = re.compile(
    r"""["'](?P<url>(?:https?:)?(?:\\?/)[^"'\s<>]+?\.(?:""" + MEDIA_EXTENSION_PATTERN + r""")"""
    r"""(?:\?[^"'\s<>]*)?)["']""",
    re.IGNORECASE,
)

# --- data attributes ----------------------------------------------------------------------
# Names whose values are text, numbers, settings or selectors, never a URL to fetch: captions
# (lightGallery's `data-sub-html` holds markup), sizes (`data-pswp-width`, `data-lg-size`),
# tooltips (`data-original-title`), ids, toggles and targets.
_TEXT_NAME = re.compile(
    r"html|title|caption|alt(?:$|[-_])|desc|text|label|count|width|height|size|ratio|aspect|"
    r"type|(?:^|[-_])id$|index|delay|speed|toggle|target|option|config|setting|placement|"
    r"position|color|colour|class|style|lang|mime|format|duration", re.IGNORECASE)
# Names that point at a page, a feed or an API (`data-href`, `data-next-url`, `data-api`):
# their value is media only when its path says so (crawler/apis.py reads them as endpoints).
_LINK_NAME = re.compile(
    r"href|link|permalink|next|prev|page|more|api|endpoint|feed|action|ajax|json|redirect|"
    r"canonical|share|download", re.IGNORECASE)
# Names that say the value is a picture or a video: lazy loaders, lightboxes, zoomers.
_MEDIA_NAME = re.compile(
    r"src|img|image|bg|background|photo|pic(?:$|[-_t])|poster|video|mp4|webm|hls|stream|"
    r"full|hi-?res|hi_res|high-?res|retina|zoom|large|big|orig|thumb|preview|lightbox|pswp|"
    r"avatar|media|lazy|(?:^|[-_])(?:dash|cover|file|lg)(?:$|[-_])", re.IGNORECASE)
# A MIME type (`image/jpeg`) has the shape of a relative path and is none.
_MIME = re.compile(r"^(?:image|video|audio|application|text|font|model)/[\w.+-]+$",
                   re.IGNORECASE)
_URL_SHAPE = re.compile(
    r"""^(?:https?:)?//[\w.-]+(?::\d+)?(?:[/?#][^\s"'<>{}\\]*)?$   # absolute, scheme-relative
       |^/(?!/)[^\s"'<>{}\\]*$                                    # root-relative
       |^\.{1,2}/[^\s"'<>{}\\]+$                                  # ./a, ../a
       |^[\w~%-][\w.~%-]*(?:/[\w.~%@+,=:!-]*)+(?:[?#][^\s"'<>{}\\]*)?$  # a/b/c
       |^[\w.~%-]+\.[a-z0-9]{2,5}(?:[?#][^\s"'<>{}\\]*)?$        # a.jpg
    """, re.IGNORECASE | re.VERBOSE)
# Paths an image CDN or an upload folder serves pictures under, extension or not.
_MEDIA_PATH = re.compile(
    r"/wp-content/uploads/|/_next/image\b|/cdn-cgi/image/|/(?:image|video)/upload/|"
    r"/(?:uploads?|imgs?|images|pics|thumbs|thumbnails|originals|hires)/|"
    r"/\d{2,5}x\d{2,5}(?:/|$)|/(?:fit-in|unsafe)/", re.IGNORECASE)
# ... unless the path names a listing (`/images/page/2`, `/uploads/tag/x`): a page of them.
_LISTING_PATH = re.compile(
    r"/(?:page|tags?|categor(?:y|ies)|search|users?|authors?|galler(?:y|ies)|albums?|posts?|"
    r"archive|list)(?:/|$)|[?&](?:page|p|offset|sort|q)=", re.IGNORECASE)
_MEDIA_HOST = re.compile(
    r"^(?:https?:)?//(?:i|img\d*|images?\d*|pics?\d*|thumbs?\d*|media\d*|photos?\d*)\.",
    re.IGNORECASE)
_MEDIA_QUERY = re.compile(
    r"[?&](?:format|fm|ext|f|output|mime)=(?:jpe?g|png|webp|avif|gif|heic|jxl|mp4|webm|"
    r"image(?:/|%2f))", re.IGNORECASE)
_SRCSET_CANDIDATE = re.compile(r"\S\s+\d+(?:\.\d+)?[wx](?:,|\s*$)")
# Not pictures, whatever the attribute's name (a fancybox `data-src` of an ajax page...).
_PAGE_EXTENSIONS = (".html", ".htm", ".shtml", ".xhtml")
# A lightbox opens these as something other than a picture.
_NON_IMAGE_TYPES = {"iframe", "ajax", "inline", "html", "pdf", "clone", "youtube", "vimeo"}
# What marks a link that a lightbox script opens as a picture (its href is then the picture):
# attributes of lightGallery, fancybox, PhotoSwipe, Lightbox2, featherlight, GLightbox...
_LIGHTBOX_ATTRIBUTES = frozenset((
    "data-lightbox", "data-fancybox", "data-pswp-src", "data-pswp-width", "data-pswp-height",
    "data-lg-size", "data-featherlight", "data-lity", "data-glightbox",
))
# ... and classes, `rel` and `data-rel` values (prettyPhoto), matched token by token.
_LIGHTBOX_TOKEN = re.compile(
    r"^(?:[\w-]*(?:lightbox|fancybox|swipebox|venobox|photoswipe|magnific)[\w-]*|pswp|"
    r"mfp-image|image-popup|popup-image|lity|prettyphoto)(?:\[.*)?$", re.IGNORECASE)
# Hosts whose links a lightbox plays in a frame: video pages, never a picture.
_VIDEO_PAGE_HOSTS = re.compile(r"^(?:https?:)?//(?:[\w-]+\.)*(?:youtube\.com|youtu\.be|"
                               r"vimeo\.com|dailymotion\.com)(?:[:/?#]|$)", re.IGNORECASE)


def url_shaped(value: str) -> bool:
    """Whether `value` is written like a URL or a path, not like text, JSON, a number pair
    (`4/3`), a MIME type (`image/jpeg`) or a selector (`.gallery`, `#box`)."""
    value = value.strip()
    if not value or len(value) > 2048 or _MIME.match(value) or not _URL_SHAPE.match(value):
        return False
    if value.startswith(("/", ".", "http:", "https:")) or "/" not in value:
        return True
    # A relative path (`uploads/a`) has a word in it; a ratio or a date (`16/9`) has none.
    return re.search(r"[a-z]", path_of(value), re.IGNORECASE) is not None


def media_shaped(url: str) -> bool:
    """Whether a URL has the shape of a picture or video whatever the page calls it: a media
    extension, an image CDN's transform (`/_next/image?url=`, `/cdn-cgi/image/`, Cloudinary
    `/image/upload/`, thumbor `/fit-in/`, `/800x600/`), an uploads folder, an image host's
    picture host (`i.`, `img3.`), or a format parameter (`?format=jpg`).

    Used where nothing else says what a URL holds; a tube site's `/videos/123/title` or a
    photo site's `/photo/9` is a page, so those words are no media shape here."""
    url = url.strip()
    if has_media_extension(url):
        return True
    path = path_of(url)
    if path.lower().endswith(SKIP_EXTENSIONS + _PAGE_EXTENSIONS):
        return False
    if _MEDIA_QUERY.search(url):
        return True
    if _LISTING_PATH.search(url):
        return False
    # An image host's picture host (`i.imgbox.com/abc`), not its home page.
    return bool(_MEDIA_PATH.search(path)
                or (_MEDIA_HOST.match(url) and urlsplit(url).path.strip("/")))


def data_attribute_media(name: str, value: str) -> list[str]:
    """The media URLs (as written) in one `data-*` attribute of any element.

    The full-size picture of a gallery is often only in such an attribute, under a name no
    list can hold (`data-pswp-src`, `data-large_image`, `data-hires`, `data-zoom`, fancybox's
    `data-src` on an `<a>`). So the value decides: a URL with a media extension is media
    under any name; one of a media-serving shape (`media_shaped`) is media unless the name
    says it is a link (`data-href`, `data-next-url`, `data-api`: pages and endpoints); any
    URL is media under a name that says picture (`src`, `img`, `full`, `zoom`, `thumb`...)
    unless it is an HTML page or another file. Names of text and numbers (`data-sub-html`,
    `data-caption`, `data-pswp-width`) and values that are no URL (JSON, words, ratios,
    MIME types, selectors) give nothing. A srcset-like value gives each candidate."""
    is_text, is_link, is_media, is_srcset = _name_kinds(name)
    value = value.strip()
    if not value or is_text:
        return []
    if value.startswith(("data:image/", "data:video/")):
        return [value]
    if is_srcset or (" " in value and _SRCSET_CANDIDATE.search(value)):
        return [url for url in _srcset_urls(value) if url_shaped(url) and (
            media_shaped(url) or not is_link)]
    if not url_shaped(value):
        return []
    if has_media_extension(value):
        return [value]
    if is_link or path_of(value).lower().endswith(SKIP_EXTENSIONS + _PAGE_EXTENSIONS):
        return []
    if media_shaped(value):
        return [value]
    return [value] if is_media else []


@lru_cache(maxsize=4096)
def _name_kinds(name: str) -> tuple[bool, bool, bool, bool]:
    """(text, link, media, srcset) kinds of a data attribute's name: pages repeat a handful of
    names thousands of times."""
    name = name.lower()
    name = name[5:] if name.startswith("data-") else name
    return (bool(_TEXT_NAME.search(name)), bool(_LINK_NAME.search(name)),
            bool(_MEDIA_NAME.search(name)), "srcset" in name)


def is_lightbox_link(attributes: Mapping[str, str]) -> bool:
    """Whether an `<a>` with these attributes is opened by a lightbox script as a picture, so
    that its `href` is the full-size picture even without an extension (`/photo/9/original`):
    Lightbox2 `data-lightbox`, fancybox `data-fancybox`, PhotoSwipe `data-pswp-width`,
    lightGallery `data-lg-size`, ekko `data-toggle="lightbox"`, `rel="lightbox[set]"`, a
    `glightbox`/`mfp-image` class. Not when the lightbox is told to frame a page (`data-type=
    "iframe"`, `"ajax"`) or the link is to a video site's page."""
    names = {name.lower() for name in attributes}
    toggles = {attributes.get(name, "").strip().lower()
               for name in ("data-toggle", "data-bs-toggle")}
    marked = (bool(names & _LIGHTBOX_ATTRIBUTES) or "lightbox" in toggles
              or re.fullmatch(r"\d{2,5}x\d{2,5}", attributes.get("data-size", "").strip())
              is not None  # PhotoSwipe 4: data-size="1600x1200"
              or any(_LIGHTBOX_TOKEN.match(token) for token in (
                  attributes.get("class", "") + " " + attributes.get("rel", "") + " "
                  + attributes.get("data-rel", "")).split()))
    if not marked:
        return False
    kinds = {attributes.get(name, "").strip().lower()
             for name in ("data-type", "data-fancybox-type", "data-lg-type", "data-featherlight")}
    href = attributes.get("href", "").strip()
    return not (kinds & _NON_IMAGE_TYPES or not href or not _usable(href)
                or _VIDEO_PAGE_HOSTS.match(href)
                or path_of(href).lower().endswith(SKIP_EXTENSIONS + _PAGE_EXTENSIONS))


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
    media = _media_urls(response, scripts, data)
    # A URL taken as media is not also a page: the spider would ask for it twice, and the
    # duplicate filter would drop one of the two requests.
    taken = set(media)
    return media, [url for url in _page_urls(response, data) if url not in taken]


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
    # Lazy loaders and lightboxes on any element (div data-bg, a data-src, a data-pswp-src,
    # img data-zoom...): every data attribute whose value is a picture's URL. A lazy `<iframe
    # data-src>` or a lightbox told to frame something frames a page: a page, not media.
    root = response.selector.root
    for element in root.xpath("//*[@*[starts-with(name(), 'data-')]]"
                              "[not(self::script or self::style)]"):
        attributes = element.attrib
        kinds = {attributes.get(name, "").strip().lower()
                 for name in ("data-type", "data-fancybox-type", "data-lg-type")}
        framed = element.tag in ("iframe", "frame") or bool(kinds & _NON_IMAGE_TYPES)
        for name, value in attributes.items():
            if name.startswith("data-") and not value.lstrip().startswith(("{", "[")):
                urls = data_attribute_media(name, value)
                found.extend(u for u in urls if not framed or has_media_extension(u))
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
    # A link a lightbox opens is the full-size picture, extension or not.
    found.extend(link.attrib["href"] for link in root.xpath("//a[@href]")
                 if is_lightbox_link(link.attrib))
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
        "//iframe/@src | //frame/@src | //iframe/@data-src | //iframe/@data-lazy-src"
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
    for url in dict.fromkeys(urls):  # each written form joined once
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
