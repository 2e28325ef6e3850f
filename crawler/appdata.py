"""Media and page URLs in the data a page's scripts carry: app state, JSON-LD, JSON blocks.

Sites built with React, Next.js, Nuxt or a plain bundle ship their gallery as data and let a
script build the markup: `<script id="__NEXT_DATA__" type="application/json">`, `window.
__INITIAL_STATE__ = {...}`, `window.__NUXT__=...`, `JSON.parse("...")`, JSON-LD `ImageObject`s.
The URLs in it are escaped (`\\/`, `\\u002F`) and often relative (`uploads/a.jpg`), so a regex
over the script text misses most of them. Here every such blob is decoded as JSON (the
decoder undoes every escape) and walked; a string counts as a media URL when its path ends in
a media extension or its key names a picture or a video, and as a page URL when its key names
a link. Everything is bounded: a hostile page cannot make the walk slow or large.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Larger script bodies are not decoded (no gallery's state is this big; a bomb is).
MAX_BLOB_CHARS = 4_000_000
# Strings looked at per page, and nesting followed: far past any real app state.
MAX_STRINGS = 50_000
MAX_DEPTH = 64
# Assignments of app state in inline scripts: `window.__X__ = {`, `var state = [`, `self.x={`.
_ASSIGNMENT = re.compile(r"""(?:^|[;\s,(])(?:window|self|globalThis)?\.?[A-Za-z_$][\w$.]*\s*=\s*
                             (?=[{\[])""", re.VERBOSE)
_JSON_PARSE = re.compile(r"""JSON\.parse\(\s*(?P<q>['"])""")
# Keys whose string values are pictures or videos, whatever their extension (or none):
# `image`, `thumbnailUrl`, `poster_src`, `contentUrl`, `hls`, `fullSize`...
_MEDIA_KEYS = re.compile(
    r"image|img|thumb|photo|picture|poster|video|contenturl|mp4|webm|hls|dash|manifest|"
    r"original|full|large|preview|cover|avatar", re.IGNORECASE)
# Keys too general to say what they hold (a JSON-LD `url` is a page, an ImageObject's a
# picture): their value is media when its path says so, else a page to look at.
_GENERIC_KEYS = re.compile(r"^(?:src|url|uri|href|link|permalink|canonical|file|source|media|"
                           r"stream|path|next|nexturl|nextpage|next_page|page|asurl|as)$",
                           re.IGNORECASE)
# The one list of file extensions that mark a URL as media to fetch rather than a page to read
# (crawler/discovery.py and every JSON walk derive from it). What a URL really holds is decided
# later from its bytes, so a wrong guess costs a request, never a false case; a missed
# extension costs a victim's picture. Pictures (HEIC from phones, AVIF and JPEG XL from CDNs,
# APNG), videos, and streaming manifests and segments (HLS .m3u8 and MPEG-TS .ts, DASH .mpd and
# fMP4 .m4s), which crawler/streaming.py reads.
MEDIA_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".bmp", ".tif", ".tiff",
    ".avif", ".heic", ".heif", ".jxl",
    ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".flv", ".ogv", ".3gp",
    ".m3u8", ".mpd", ".ts", ".m4s",
)
# The same list as a regex over a URL's path (longest first, so `.jpeg` is not read as `.jpe`).
MEDIA_EXTENSION_PATTERN = "|".join(
    re.escape(extension[1:]) for extension in sorted(MEDIA_EXTENSIONS, key=len, reverse=True))
MEDIA_SUFFIX = re.compile(rf"\.(?:{MEDIA_EXTENSION_PATTERN})$", re.IGNORECASE)
_URLISH = re.compile(r"^(?:https?:)?//|^/(?!/)|^\.{0,2}/?[\w.~%-]+(?:/[\w.~%@+-]+)+"
                     r"|^[\w.~%-]+\.[a-z0-9]{2,5}$", re.IGNORECASE)

# Strings shaped like relative paths that are none: a MIME type (`image/jpeg`, under an
# `image_type` key) or a ratio or a date (`4/3`, `05/2024`).
_NOT_A_PATH = re.compile(r"^(?:image|video|audio|application|text|font|model)/[\w.+-]+$|"
                         r"^[\d/.:-]+$", re.IGNORECASE)


@dataclass
class AppData:
    """What a page's script data points at, first seen first."""

    media: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)


def blobs(scripts: list[tuple[str, str]]) -> Iterator[Any]:
    """Every JSON value in `(type attribute, text)` of a page's inline scripts."""
    for kind, text in scripts:
        if not text or len(text) > MAX_BLOB_CHARS:
            continue
        kind = kind.strip().lower()
        if "json" in kind:  # application/json, application/ld+json, importmap aside
            value = _json_or_none(text)
            if value is not None:
                yield value
            continue
        if kind and "javascript" not in kind and kind != "module":
            continue
        yield from _assigned_values(text)


def _assigned_values(text: str) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    for match in _ASSIGNMENT.finditer(text):
        try:
            value = decoder.raw_decode(text, match.end())[0]
        except (ValueError, RecursionError):  # JS, not JSON (unquoted keys, functions)
            continue
        yield value
    for match in _JSON_PARSE.finditer(text):
        literal = js_string(text, match.end() - 1)
        value = None if literal is None else _json_or_none(literal)
        if value is not None:
            yield value


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested a million deep by a hostile page
        return None


def js_string(text: str, start: int) -> str | None:
    """The value of the JS string literal (`'...'`, `"..."` or a template literal without
    `${}`) whose quote is at `start`, its escapes undone as JSON's; None if it is not one."""
    quote = text[start]
    if quote not in "'\"`":
        return None
    end = start + 1
    while end < len(text) and end - start < MAX_BLOB_CHARS:
        if text[end] == "\\":
            end += 2
            continue
        if text[end] == quote:
            body = text[start + 1:end]
            if quote == "`" and "${" in body:
                return None  # built at run time
            if quote != '"':
                body = re.sub(r'(?<!\\)"', '\\"', body.replace("\\" + quote, quote))
            try:
                return json.loads(f'"{body}"')
            except ValueError:
                return None
        end += 1
    return None


def strings(value: Any) -> Iterator[tuple[str, str]]:
    """(key, string) for every string under `value`, the key being its nearest object key.

    Bounded (MAX_STRINGS strings, MAX_DEPTH levels) and iterative: a hostile blob can make the
    walk neither slow nor blow the stack."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    seen = 0
    while stack and seen < MAX_STRINGS:
        key, item, depth = stack.pop()
        if isinstance(item, str):
            seen += 1
            yield key, item
        elif depth < MAX_DEPTH and isinstance(item, dict):
            stack.extend((str(k), v, depth + 1) for k, v in reversed(list(item.items())))
        elif depth < MAX_DEPTH and isinstance(item, list):
            stack.extend((key, v, depth + 1) for v in reversed(item))


def path_of(url: str) -> str:
    """The URL without its query and fragment: what an extension is read from."""
    return url.split("#", 1)[0].split("?", 1)[0]


def has_media_extension(url: str) -> bool:
    """Whether the URL's path ends in one of MEDIA_EXTENSIONS (any case)."""
    return MEDIA_SUFFIX.search(path_of(url.strip())) is not None


def walk(value: Any, found: AppData | None = None) -> AppData:
    """The media and page URLs (as written, to be resolved by the caller) in one decoded JSON
    value: a page's app state or a JSON API's answer (crawler/apis.py) alike.

    A string is a media URL when its path ends in a media extension or its key names a picture
    or a video, and a page URL when its key names a link; words, names, ratios and other text
    are neither."""
    found = AppData() if found is None else found
    for key, text in strings(value):
        text = text.strip()
        if not text or len(text) > 2048 or any(c.isspace() for c in text):
            continue
        if text.startswith("data:image/") or text.startswith("data:video/"):
            found.media.append(text)
            continue
        if not _URLISH.match(text) or _NOT_A_PATH.match(text):
            continue
        if MEDIA_SUFFIX.search(path_of(text)) or (
                _MEDIA_KEYS.search(key) and "/" in text):
            found.media.append(text)
        elif _GENERIC_KEYS.match(key) and "/" in text:
            found.pages.append(text)
    return found


def app_data(scripts: list[tuple[str, str]]) -> AppData:
    """The media and page URLs (as written, to be resolved against the page) in `scripts`."""
    found = AppData()
    for blob in blobs(scripts):
        walk(blob, found)
    return found


def literal_end(text: str, start: int) -> int:
    """The position after the JavaScript string literal whose quote is at `start` (the end
    of `text` when it is not closed): what follows a literal says whether it is the whole
    value or a piece of one built at run time."""
    quote, end = text[start], start + 1
    while end < len(text):
        if text[end] == "\\":
            end += 2
            continue
        if text[end] == quote:
            return end + 1
        end += 1
    return end
