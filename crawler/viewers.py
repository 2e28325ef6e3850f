"""Viewer pages: the page an image host shows one picture on, reached from a site's link.

Forums, boards and many galleries do not host their pictures: a post links to
`imgbox.com/abc`, `ibb.co/xyz` or `postimg.cc/...`, a page on the image host that shows the
picture (between ads, a logo and other people's uploads). That picture is a picture *of the
site that links to it*: it is how that site shows it to its visitors, and the notice goes to
that site (and the host). So the spider follows such a link one hop deep onto the other host
and takes only the one picture the viewer is about (`main_picture`), filed under the linking
site's page; it never crawls the image host itself. Short links and "continue to your image"
pages send the visitor on at once, by a meta refresh or a script that sets `location`;
`redirect_target` reads where, so the hop reaches the viewer (or the file) without a browser.

Pure functions of a response: no fetching here, and every input is hostile (bounded scans).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from parsel import Selector
from scrapy.http import HtmlResponse

from crawler.appdata import has_media_extension, js_string, literal_end
from crawler.discovery import data_attribute_media

# Longest delay of a refresh that still sends the visitor on "at once": a "you will be
# redirected in 5 seconds" page does; a page that reloads itself every minute does not.
MAX_REFRESH_SECONDS = 10.0
# Scripts longer than this are not scanned for a location (a redirect page's script is short;
# a bundle that sets location somewhere in 2 MB is an app, not a redirect).
MAX_SCRIPT_CHARS = 256_000
# Location assignments looked at per page.
MAX_ASSIGNMENTS = 50
# The smallest declared picture that can be a viewer's main content (not a logo or a banner),
# and how much bigger than the next one it must be.
MIN_MAIN_AREA = 200 * 200
MAIN_DOMINANCE = 2.0

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
# `location = ...`, `window.location.href = ...`, `top.location = ...`,
# `document.location.href = ...`; not `item.location = ...` (any object's field) or `==`.
_ASSIGN = re.compile(
    r"(?<![\w$.])(?:(?:window|self|top|parent|document|globalThis)\s*\.\s*){0,2}"
    r"location(?:\s*\.\s*href)?\s*=(?![=>])\s*")
# `location.replace("...")`, `window.location.assign('...')`.
_CALL = re.compile(
    r"(?<![\w$.])(?:(?:window|self|top|parent|document|globalThis)\s*\.\s*){0,2}"
    r"location\s*\.\s*(?:replace|assign)\s*\(\s*")
_DECLARED = re.compile(r"(?:\bvar|\blet|\bconst)\s+$")
# A block run when the visitor does something, not at once.
_USER_EVENT = (r"(?:click|dblclick|auxclick|contextmenu|mouse\w*|pointer\w*|touch\w*|key\w*|"
               r"submit|change|input|focus|blur|tap|hover|scroll|wheel|drag\w*)")
_HANDLER = re.compile(
    rf"""addEventListener\s*\(\s*['"`]{_USER_EVENT}['"`]"""
    rf"""|\.on{_USER_EVENT}\s*=|\.on\s*\(\s*['"`]{_USER_EVENT}\b"""
    rf"""|\.{_USER_EVENT}\s*\(\s*(?:function|\(|[\w$]+\s*=>)""",
    re.IGNORECASE)
_FUNCTION_DECLARATION = re.compile(r"(?:^|[;{}\s])function\s*\*?\s*([\w$]+)\s*\([^()]*\)\s*$")
_TIMER = re.compile(r"set(?:Timeout|Interval)\s*\(\s*(?:async\s*)?"
                    r"(?:function\b[^{]*|\([^()]*\)\s*=>\s*|[\w$]+\s*=>\s*)$")
_TIMER_DELAY = re.compile(r"\s*\)?\s*,\s*(\d+(?:\.\d+)?)")
_JS_TYPES = ("", "text/javascript", "application/javascript", "module", "text/ecmascript",
             "application/ecmascript", "application/x-javascript")


def redirect_target(response: HtmlResponse) -> str | None:
    """The absolute http(s) URL the page sends its visitor to at once, or None.

    Read, in the order a browser acts on them: a `Refresh` header; a `<meta http-equiv=
    "refresh" content="0; url=...">` (any case, the URL quoted or not, `url=` or not) with a
    delay of at most MAX_REFRESH_SECONDS; an inline script that sets the location to a
    literal string (`location = "..."`, `location.href = '...'`, `window.location.replace(
    "...")`, `location.assign(...)`, `top.location = ...`, `document.location.href = ...`),
    directly, in a function the script calls, on load, or in a timer of at most
    MAX_REFRESH_SECONDS. Resolved against the page (`<base href>` honoured).

    Not a redirect: a refresh with a longer delay or without a URL (a reload); a location
    built at run time (`"/v/" + id`: no browser here to run it); an assignment in a comment or
    in a handler of something the visitor does (`addEventListener("click", ...)`,
    `.onclick = ...`, `$(...).click(...)`, an `onclick` attribute): a page that goes
    somewhere when a button is clicked shows its own content until then, so following it
    would take a link for the page; and a target that is the page itself."""
    candidates = [_refresh_url(_header(response, "Refresh"))]
    candidates.extend(_refresh_url(content) for content in response.xpath(
        f"//meta[normalize-space(translate(@http-equiv, '{_UPPER}', '{_LOWER}'))='refresh']"
        "/@content").getall())
    for target in candidates:
        if target is not None:
            resolved = _resolved(response, target)
            if resolved is not None:
                return resolved
    for script in response.xpath("//script[not(@src)]"):
        kind = (script.attrib.get("type") or "").strip().lower()
        if kind not in _JS_TYPES:
            continue
        text = script.xpath("string()").get() or ""
        if len(text) > MAX_SCRIPT_CHARS:
            continue
        for target in script_targets(text):
            resolved = _resolved(response, target)
            if resolved is not None:
                return resolved
    return None


def _header(response: HtmlResponse, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _refresh_url(content: str | None) -> str | None:
    """The URL of a refresh's `content` (HTML's "shared declarative refresh steps") when its
    delay is short enough; None for a reload, a long delay or no number at all."""
    if not content:
        return None
    match = re.match(r"\s*(\d*(?:\.\d*)?)", content)
    if match is None or not match.group(1).strip(".") or float(
            match.group(1).rstrip(".")) > MAX_REFRESH_SECONDS:
        return None
    rest = content[match.end():].lstrip(" \t\n\r\f")
    rest = rest[1:].lstrip() if rest[:1] in (";", ",") else rest
    url_prefix = re.match(r"url\s*=\s*", rest, re.IGNORECASE)
    if url_prefix:
        rest = rest[url_prefix.end():]
    if rest[:1] in ("'", '"'):
        rest = rest[1:].split(rest[0], 1)[0]
    return rest.strip() or None


def _resolved(response: HtmlResponse, target: str) -> str | None:
    target = target.strip()
    if not target or target.lower().startswith(("javascript:", "data:", "mailto:", "about:")):
        return None
    url = response.urljoin(target)
    if not url.startswith(("http://", "https://")):
        return None
    if url.split("#", 1)[0] == response.url.split("#", 1)[0]:
        return None  # the page itself (a reload, a fragment)
    return url


@dataclass
class _Block:
    """A `{...}` block of a script: the code before its `{` and where it opens and closes."""

    opener: str
    start: int
    end: int | None = None


def script_targets(text: str) -> list[str]:
    """The literal URLs an inline script sends the visitor to at once, first first (see
    `redirect_target` for what counts)."""
    matches = [m for m in (*_ASSIGN.finditer(text), *_CALL.finditer(text))
               if not _DECLARED.search(text[max(0, m.start() - 8):m.start()])]
    matches = sorted(matches, key=lambda m: m.start())[:MAX_ASSIGNMENTS]
    if not matches:
        return []
    targets: list[str] = []
    contexts = _contexts(text, [m.start() for m in matches])
    for match, blocks in zip(matches, contexts, strict=True):
        if blocks is None:
            continue  # in a comment or a string
        literal = js_string(text, match.end()) if match.end() < len(text) else None
        if literal is None:
            continue  # a variable or an expression: built at run time
        following = text[literal_end(text, match.end()):][:40].lstrip(" \t\r")
        if following and following[0] not in ";),}\n" and not following.startswith("//"):
            continue  # `"/v/" + id`: built at run time
        if all(_immediate(text, block) for block in blocks):
            targets.append(literal)
    return targets


def _immediate(text: str, block: _Block) -> bool:
    """Whether the code of a block around an assignment runs without the visitor doing
    anything: not a user-event handler, a timer of at most MAX_REFRESH_SECONDS, and a named
    function only when the script calls it (outside itself and outside a handler)."""
    opener = block.opener
    if _HANDLER.search(opener):
        return False
    if _TIMER.search(opener):
        delay = _TIMER_DELAY.match(text, block.end + 1) if block.end is not None else None
        return delay is None or float(delay.group(1)) <= MAX_REFRESH_SECONDS * 1000
    declared = _FUNCTION_DECLARATION.search(opener)
    if declared:
        name = re.escape(declared.group(1))
        end = len(text) if block.end is None else block.end
        outside = text[:max(0, block.start - len(opener))] + "\n" + text[end + 1:]
        uses = re.finditer(rf"(?<![\w$.]){name}\s*\(|[=(,]\s*{name}\s*[;,)\n]", outside)
        return any(not _HANDLER.search(outside[max(0, use.start() - 120):use.start()])
                   for use in uses)
    return True


def _contexts(text: str, positions: list[int]) -> list[list[_Block] | None]:
    """For each position (ascending): the blocks open around it, innermost last, or None
    when it is inside a comment or a literal. One pass over the script."""
    result: list[list[_Block] | None] = []
    stack: list[_Block] = []
    pending = iter(positions)
    position = next(pending, None)
    for index, char in _code_chars(text):
        while position is not None and position < index:
            result.append(None)  # skipped over: not code
            position = next(pending, None)
        if position is not None and position == index:
            result.append(list(stack))
            position = next(pending, None)
        if char == "{":
            stack.append(_Block(opener=_opener(text, index), start=index))
        elif char == "}" and stack:
            stack.pop().end = index
    while position is not None:
        result.append(None)
        position = next(pending, None)
    return result


def _opener(text: str, brace: int) -> str:
    """The code before a `{` that says what the block is: back to the statement's start."""
    window = text[max(0, brace - 200):brace]
    cut = max(window.rfind(";"), window.rfind("}"), window.rfind("{"))
    return window[cut + 1:] if cut >= 0 else window


def _code_chars(text: str) -> Iterator[tuple[int, str]]:
    """(position, character) of the code in `text`: comments, string and template literals
    and regex literals left out (a `{` or a `location` in them is none)."""
    index, length = 0, len(text)
    previous = ""
    while index < length:
        char = text[index]
        if text.startswith("//", index):
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
            continue
        if text.startswith("/*", index):
            close = text.find("*/", index + 2)
            index = length if close < 0 else close + 2
            continue
        if char in "'\"`":
            index = literal_end(text, index)
            previous = "a"
            continue
        if char == "/" and (previous == "" or previous in "(,=:[!&|?{};+-*%<>~^"):
            index = _regex_end(text, index)
            previous = "a"
            continue
        yield index, char
        if not char.isspace():
            previous = char
        index += 1


def _regex_end(text: str, start: int) -> int:
    """The position after the regex literal whose `/` is at `start` (or its line's end)."""
    index, in_class = start + 1, False
    while index < len(text) and text[index] != "\n":
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "/" and not in_class:
            return index + 1
        index += 1
    return index


# --- the picture a viewer is about ----------------------------------------------------------

_WORD = "contains(concat(' ', normalize-space(@class), ' '), ' {} ')"
_CONTAINER_IDS = ("image", "img", "main-image", "mainImage", "image-viewer", "imageViewer",
                  "photo", "full-image", "fullImage", "uImage", "show_image", "image-container",
                  "picture", "viewer")
_CONTAINER_CLASSES = ("image-container", "image-viewer", "main-image", "image-content",
                      "image-wrapper", "photo-container", "picture-container", "img-container",
                      "full-image", "viewer-image", "image-show", "image-holder")
_CONTAINERS = "//main | " + " | ".join(
    [f"//*[@id='{name}']" for name in _CONTAINER_IDS]
    + [f"//*[{_WORD.format(name)}]" for name in _CONTAINER_CLASSES])
_FULL_SIZE_NAME = re.compile(r"full|zoom|large|orig|hi-?res|high|big|max", re.IGNORECASE)
_CARD_META = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image",
              "twitter:image:src")


def main_picture(response: HtmlResponse, media: list[str]) -> str | None:
    """The URL of the one picture the page is about, for a viewer page, or None.

    `media` is the page's media as `crawler.discovery.page_links(response)[0]` gives them
    (absolute); the answer is always one of them. In order: the only `<img>` inside the page's
    picture container (`<main>`, `#image`, `#img`, `.image-container`, `.image-viewer`...;
    or that `<img>` itself); the biggest `<img>` by its declared width × height when it is at
    least MIN_MAIN_AREA and MAIN_DOMINANCE times the next; the social card (`og:image`,
    `twitter:image`); the page's only picture. Of that `<img>`, the full-size form is taken:
    the link around it to a file, a full-size data attribute (`data-full`, `data-zoom`...),
    the largest srcset candidate, then its `src`. None when the page is not about one picture
    (a gallery, a forum thread): then it is no viewer, and nothing of it is taken.

    Why only one: the hop to a viewer on another host is made for the linking site's picture;
    the host's logo, ads and thumbnails of other uploads are not that site's."""
    available = dict.fromkeys(media)
    if not available:
        return None
    for container in response.xpath(_CONTAINERS):
        images = container.xpath("self::img | .//img")
        if len(images) == 1:
            picked = _picture_of(response, images[0], available)
            if picked is not None:
                return picked
    sized: list[tuple[int, Selector]] = []
    for image in response.xpath("//img[@width and @height]"):
        width, height = _dimension(image.attrib["width"]), _dimension(image.attrib["height"])
        if width and height:
            sized.append((width * height, image))
    sized.sort(key=lambda pair: pair[0], reverse=True)
    if sized and sized[0][0] >= MIN_MAIN_AREA and (
            len(sized) == 1 or sized[0][0] >= MAIN_DOMINANCE * sized[1][0]):
        picked = _picture_of(response, sized[0][1], available)
        if picked is not None:
            return picked
    for prop in _CARD_META:
        for content in response.xpath(
                f"//meta[@property='{prop}' or @name='{prop}']/@content").getall():
            url = response.urljoin(content.strip())
            if url in available:
                return url
    pictures = [url for url in available if not url.startswith("data:")]
    return pictures[0] if len(pictures) == 1 else None


def _dimension(value: str) -> int | None:
    match = re.fullmatch(r"\s*(\d{1,5})(?:\.\d+)?\s*(?:px)?\s*", value)
    return int(match.group(1)) if match else None


def _picture_of(response: HtmlResponse, image: Selector, available: dict[str, None]
                ) -> str | None:
    """The full-size URL of one `<img>` among the page's media, or None if it has none."""
    attributes = dict(image.attrib)
    candidates: list[str] = []
    candidates.extend(href for href in image.xpath("ancestor::a[1]/@href").getall()
                      if has_media_extension(href))
    data_names = sorted((name for name in attributes if name.startswith("data-")),
                        key=lambda name: not _FULL_SIZE_NAME.search(name))
    for name in data_names:
        candidates.extend(data_attribute_media(name, attributes[name]))
    for name in ("srcset", "data-srcset"):
        if name in attributes:
            candidates.extend(_largest_first(attributes[name]))
    candidates.append(attributes.get("src", ""))
    resolved = [response.urljoin(c.strip()) if not c.strip().startswith("data:") else c.strip()
                for c in candidates if c.strip()]
    in_media = [url for url in resolved if url in available]
    files = [url for url in in_media if not url.startswith("data:")]
    return (files or in_media or [None])[0]


def _largest_first(srcset: str) -> list[str]:
    """Srcset candidates, the largest (by its `w` or `x` descriptor) first."""
    ranked: list[tuple[float, str]] = []
    for candidate in re.split(r",\s+", srcset.strip()):
        parts = candidate.split()
        if parts:
            match = re.fullmatch(r"(\d+(?:\.\d+)?)[wx]", parts[1]) if len(parts) > 1 else None
            ranked.append((float(match.group(1)) if match else 1.0, parts[0]))
    return [url for _, url in sorted(ranked, key=lambda pair: pair[0], reverse=True)]


# How a forum post or a gallery links to a picture on an image host without showing it: the
# host's name or the link's path speaks of pictures (`ibb.co/abc` aside, most hosts do:
# imgbox, postimg, pixhost, imagebam, fastpic, `i.` and `img.` hosts, `/i/`, `/image/`,
# `/view/`, `/p/`), or the link's words say "full size", "view image", "original" in one of
# the eight notice languages. Other off-site links (ads, share buttons, friends' sites) are
# not followed: a viewer hop is one request each, and a broad crawl cannot pay one per link.
_VIEWER_HOST = re.compile(r"(?:^|[.-])(?:i|img\d*|image\w*|pic\w*|photo\w*|foto\w*|imgs?)"
                          r"(?:[.-]|$)|img|image|pic|photo|foto|snap|upload|host",
                          re.IGNORECASE)
_VIEWER_PATH = re.compile(r"^/(?:i|img|image|images|pic|pics|photo|photos|view|viewer|v|p|"
                          r"show|preview|file|files|media)/[^/?#]+", re.IGNORECASE)
_VIEWER_WORDS = re.compile(
    r"full\s*(?:size|image|resolution)|view\s*(?:image|photo|picture|full)|original|enlarge|"
    r"click\s*(?:to|for)\s*(?:enlarge|full|view)|hi-?res|download|\bimage\b|\bphoto\b|"
    r"원본|크게|사진|이미지|원본보기|原图|大图|查看|图片|原寸|画像|拡大|写真|"
    r"оригинал|полный\s*размер|увелич|фото|картинк|ảnh|xem\s*ảnh|kích\s*thước|"
    r"tamaño\s*completo|imagen|foto|ampliar|vollbild|originalgröße|bild|vergrößern",
    re.IGNORECASE)
MAX_VIEWER_LINKS = 50


def viewer_links(response: HtmlResponse) -> list[str]:
    """Links of the page to other hosts that lead to a picture's viewer page: a link that
    wraps a picture (a thumbnail), or one whose host, path or words speak of pictures (see
    above). Absolute http(s), first seen first, at most MAX_VIEWER_LINKS."""
    own = (urlsplit(response.url).hostname or "").lower()
    found: dict[str, None] = {}
    for link in response.xpath("//a[@href]"):
        url = response.urljoin(link.attrib["href"].strip())
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host or host == own:
            continue
        words = " ".join(link.xpath(".//text() | .//@title | .//@alt | @title").getall())
        if (link.xpath(".//img") or _VIEWER_HOST.search(host.split(".", 1)[0] if
                                                         host.count(".") > 1 else host)
                or _VIEWER_PATH.match(parts.path) or _VIEWER_WORDS.search(words)):
            found.setdefault(url, None)
            if len(found) >= MAX_VIEWER_LINKS:
                break
    return list(found)
