"""JSON APIs: the endpoints a page's scripts fetch its gallery from, and reading their answers.

A client-rendered gallery ships an empty `<div id="app">` and a script that fetches
`/api/gallery?page=1` and inserts the `<img>`s; an infinite scroll asks a cursor-paginated feed
for the next batch as the visitor scrolls. Without a browser the pictures are still within
reach: the page names the endpoint (`data-api`, `data-next-url`, `fetch("/api/...")`, a `<link
rel="alternate" type="application/json">`, a `.json` URL in its app state: `api_urls`), and
the answer is JSON whose strings are the pictures, the pages, and the way to the next batch
(`read_api`): a `next` URL, a cursor to put into the request's query, a `Link: rel="next"`
header, or a page number to count up while the API says there is more.

Pure functions: no fetching here. The spider asks for the endpoints within the site's page
budget and trap guard, and a JSON answer's `next` URLs are more endpoints of the same kind.
Every answer is hostile input: its size is capped before decoding (MAX_API_BYTES), the walk
over it is crawler/appdata.py's (bounded strings and depth), and so is the search for `next`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from scrapy.http import HtmlResponse, Response

from crawler.appdata import (
    AppData,
    blobs,
    has_media_extension,
    js_string,
    literal_end,
    path_of,
    strings,
    walk,
)
from crawler.discovery import data_attribute_media, page_links, url_shaped

# A JSON answer larger than this is not decoded (a page of a feed is tens of KB; a dump is
# not a page, and a bomb is not an answer).
MAX_API_BYTES = 8 << 20
# HTML fragments inside an answer (`"html": "<li><img ...>"`, WordPress `content.rendered`)
# read per answer, and their characters in all.
MAX_FRAGMENTS = 200
MAX_FRAGMENT_CHARS = 2_000_000
# Scripts longer than this are not read for endpoints (a bundle, not a page's glue code), and
# calls read per script.
MAX_SCRIPT_CHARS = 1_000_000
MAX_CALLS = 200
# Objects looked at, and how deep, for the next page (`data.user.media.page_info.end_cursor`
# is five deep; the items of a page are lists, which the search does not enter).
MAX_NEXT_OBJECTS = 1_000
MAX_NEXT_DEPTH = 8

# Data attributes that name an endpoint: `data-api`, `data-endpoint`, `data-feed`,
# `data-url`, `data-next-url`, `data-load-more-url`, `data-source`, `data-json`.
_API_NAME = re.compile(
    r"^data-(?:[\w-]*[-_])?(?:url|uri|api|endpoint|feed|json|source|next|more)$",
    re.IGNORECASE)
# A literal URL a script fetches: fetch("..."), axios.get('...'), axios('...'),
# $.getJSON("..."), $.get("..."), $.ajax("...") and jQuery's spellings, new Request("...").
_FETCH_CALL = re.compile(
    r"(?<![\w$.])(?:fetch|axios(?:\s*\.\s*get)?|(?:\$|jQuery)\s*\.\s*(?:getJSON|get|ajax)|"
    r"new\s+Request)\s*\(\s*(?=['\"`])")
_AJAX_OBJECT = re.compile(r"(?:\$|jQuery)\s*\.\s*ajax\s*\(\s*\{")
_AJAX_URL = re.compile(r"\burl\s*:\s*(?=['\"`])")
# XMLHttpRequest: x.open("GET", "...").
_XHR_OPEN = re.compile(r"\.\s*open\s*\(\s*(['\"])GET\1\s*,\s*(?=['\"`])", re.IGNORECASE)
# A request that changes something (a like, a beacon): never asked for.
_WRITE_METHOD = re.compile(r"""\b(?:method|type)\s*:\s*['"`](?:POST|PUT|PATCH|DELETE)""",
                           re.IGNORECASE)
# Paths of JSON endpoints in app state: a `.json` file, `/api/...`, WordPress `/wp-json/`,
# `/graphql`.
_API_PATH = re.compile(r"\.json$|/api/|/wp-json/|/graphql\b", re.IGNORECASE)
# A run-time value put into the query (`"?page=" + n`, `` `?cursor=${c}` ``): the first page.
_FIRST_VALUE = {"page": "1", "p": "1", "pg": "1", "offset": "0", "start": "0", "skip": "0"}
_TRAILING_PARAM = re.compile(r"[?&]([\w.\[\]-]+)=$")
_TEMPLATE_VALUE = re.compile(r"([?&][\w.\[\]-]+=)\$\{[^{}`]*\}")
# Prefixes some APIs put before their JSON so no page can run it as a script.
_XSSI_PREFIXES = (b")]}'", b"for(;;);", b"while(1);", b"while (1);", b"&&&START&&&")
_JSONP = re.compile(rb"^\s*(?:/\*\*/\s*)?[A-Za-z_$][\w$.]*\s*\(\s*(?P<body>[\[{].*[\]}])\s*\)"
                    rb"\s*;?\s*$", re.DOTALL)
_JSON_TYPES = re.compile(r"[/+]json\b|^text/json", re.IGNORECASE)

# Keys of the next page's URL, with `_`/`-` removed and lower-cased.
_NEXT_URL_KEYS = {"next", "nexturl", "nextpage", "nextpageurl", "nextlink", "nexthref",
                  "nextpagelink", "loadmoreurl", "moreurl"}
# Keys of a cursor to the next page, likewise.
_CURSOR_KEYS = {"cursor", "nextcursor", "after", "continuation", "endcursor", "nexttoken",
                "nextpagetoken", "continuationtoken", "nextmaxid", "nextoffset"}
# Keys that say whether there is more (False: this object names no next page).
_MORE_KEYS = {"hasmore", "hasnextpage", "hasnext", "moreavailable", "more", "hasmoreitems",
              "hasmoreresults", "moreresults"}
_TOTAL_PAGE_KEYS = {"totalpages", "lastpage", "pagecount", "numpages", "pages"}
# Query parameters a cursor replaces, in order; a cursor is added as `cursor=` when none is.
_CURSOR_PARAMS = ("cursor", "after", "page")
# Cursor keys whose own name is the parameter the API reads (Reddit's `after`).
_NAMED_CURSOR_PARAMS = {"after": "after", "continuation": "continuation",
                        "cursor": "cursor"}
_PAGE_PARAMS = ("page",)
_PER_PAGE_PARAMS = ("per_page", "perpage", "page_size", "pagesize", "limit", "count")


class ApiError(ValueError):
    """An answer that cannot be read as a JSON API's page (too large, not JSON, not an object
    or an array); says why."""


@dataclass
class ApiPage:
    """What one JSON answer holds: absolute media and page URLs, and the next page's URLs
    (more of the same endpoint: ask for them with the same callback)."""

    media: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    next: list[str] = field(default_factory=list)


# --- is it JSON -----------------------------------------------------------------------------

def is_json(response: Response) -> bool:
    """Whether a response is a JSON answer rather than a page: its first non-blank byte is
    `{` or `[` (or an anti-XSSI prefix), whatever the Content-Type says (APIs are often served
    as text/html); or its Content-Type says JSON and the body does not start like markup; or
    it is served as JavaScript and is wholly one JSONP call (`callback({...});`).

    A body that starts with `<` is a page (an error page or a login wall sent as
    application/json is no API answer)."""
    head = response.body[:2048].lstrip(b"\xef\xbb\xbf").lstrip()
    if head[:1] == b"<":
        return False
    if head[:1] in (b"{", b"[") or head.startswith(_XSSI_PREFIXES):
        return True
    kind = (response.headers.get("Content-Type") or b"").decode("latin-1")
    kind = kind.split(";", 1)[0].strip().lower()
    if "javascript" in kind:  # JSONP, not a script (an AMD `define([...], f)` is one)
        if len(response.body) > MAX_API_BYTES:
            return False
        padded = _JSONP.match(response.body.lstrip(b"\xef\xbb\xbf"))
        try:
            return padded is not None and json.loads(padded.group("body")) is not None
        except (ValueError, RecursionError):
            return False
    return bool(head) and bool(_JSON_TYPES.search(kind))


# --- endpoints a page names -----------------------------------------------------------------

def api_urls(response: HtmlResponse) -> list[str]:
    """Absolute http(s) URLs of the JSON endpoints the page points at, first seen first, each
    once: data attributes that name an endpoint (`data-api`, `data-endpoint`, `data-feed`,
    `data-*-url`, `data-next-url`) holding a URL or a path; literal URLs that inline scripts
    fetch (`fetch`, `axios.get`, `$.getJSON`, `$.ajax`, `XMLHttpRequest.open("GET", ...)`),
    writes (POST...) left out; `<link rel="alternate" type="application/json">`; and URLs in
    the page's inline JSON ending in `.json` or under `/api/` (`/wp-json/`, `/graphql`).

    What an endpoint answers is known only once fetched: a `data-next-url` may well be the
    next HTML page. So these are not media, whatever they are (a data attribute's picture is
    discovery's, and left out here); the spider reads each as JSON when `is_json` says so and
    as a page otherwise."""
    found: list[str] = []
    for element in response.xpath("//*[@*[starts-with(name(), 'data-')]]"):
        for name, value in element.attrib.items():
            value = value.strip()
            if (_API_NAME.match(name) and url_shaped(value) and not has_media_extension(value)
                    and not data_attribute_media(name, value)):
                found.append(value)
    scripts = [(script.attrib.get("type", ""), script.xpath("string()").get() or "")
               for script in response.xpath("//script[not(@src)]")]
    for kind, text in scripts:
        if "json" not in kind.lower() and len(text) <= MAX_SCRIPT_CHARS:
            found.extend(script_endpoints(text))
    found.extend(response.xpath(
        "//link[contains(concat(' ', normalize-space(@rel), ' '), ' alternate ')]"
        "[contains(@type, 'json')]/@href").getall())
    for blob in blobs(scripts):
        found.extend(text for _, text in strings(blob)
                     if url_shaped(text) and "/" in text and _API_PATH.search(path_of(text)))
    return _absolute(found, response.urljoin)


def script_endpoints(text: str) -> Iterator[str]:
    """Literal GET endpoints an inline script fetches (as written), first first, from at most
    MAX_CALLS calls of each kind. A literal
    that ends in a query parameter the script fills in at run time (`"/api/feed?page=" + n`,
    `` `/api/feed?cursor=${c}` ``) is the first page: `page=1`, `offset=0`, else empty."""
    for match in islice(_FETCH_CALL.finditer(text), MAX_CALLS):
        # The call's arguments: fetch(url, {method: "POST"}) writes.
        if _WRITE_METHOD.search(_span(text[match.end():match.end() + 600], depth=1)):
            continue
        url = _literal_url(text, match.end())
        if url is not None:
            yield url
    for match in islice(_AJAX_OBJECT.finditer(text), MAX_CALLS):
        options = _span(text[match.end():match.end() + 1000], depth=1)
        url_key = _AJAX_URL.search(options)
        if url_key is None or _WRITE_METHOD.search(options):
            continue
        url = _literal_url(options, url_key.end())
        if url is not None:
            yield url
    for match in islice(_XHR_OPEN.finditer(text), MAX_CALLS):
        url = _literal_url(text, match.end())
        if url is not None:
            yield url


def _span(text: str, depth: int) -> str:
    """The text up to where the bracket open `depth` levels around its start closes (at
    most the text given): the arguments of one call, the body of one object."""
    for index, char in enumerate(text):
        if char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
            if depth == 0:
                return text[:index]
    return text


def _literal_url(text: str, start: int) -> str | None:
    """The URL a string literal at `start` gives, with a run-time query value at its end taken
    as the first page; None for anything else built at run time."""
    value: str | None
    if text[start] == "`":
        end = text.find("`", start + 1, start + 2048)
        if end < 0:
            return None
        # `?cursor=${c}`: a run-time query value, the first page's.
        value = _TEMPLATE_VALUE.sub(lambda m: m.group(1) + _FIRST_VALUE.get(
            m.group(1)[1:-1].lower(), ""), text[start + 1:end])
        if "${" in value:
            return None  # a run-time path
        following = text[end + 1:end + 80]
    else:
        value = js_string(text, start)
        following = text[literal_end(text, start):][:80]
    if not value or not url_shaped(value):
        return None
    if following.lstrip().startswith("+"):
        trailing = _TRAILING_PARAM.search(value)
        if trailing is None:
            return None  # "/api/items/" + id: a run-time path
        value += _FIRST_VALUE.get(trailing.group(1).lower(), "")
    return value


def _absolute(urls: list[str], join: Any) -> list[str]:
    result: dict[str, None] = {}
    for url in urls:
        url = url.strip()
        if not url or url.startswith(("#", "javascript:", "mailto:")):
            continue
        absolute = join(url)
        if absolute.startswith(("http://", "https://")):
            result[absolute.split("#", 1)[0]] = None
    return list(result)


# --- reading an answer ----------------------------------------------------------------------

def read_api(body: bytes, url: str, *, base: str | None = None,
             headers: Mapping[Any, Any] | None = None) -> ApiPage:
    """The media, pages and next pages of one JSON answer fetched from `url`.

    Decoded within MAX_API_BYTES (JSONP and anti-XSSI prefixes undone); its strings walked
    as app state is (crawler/appdata.py: bounded, words and names aside) and HTML fragments
    in it read as a page would be. URLs resolve against `base` (the page that called the API:
    a script inserts them into that page) or else `url`. `headers` (the response's) may give a
    `Link: <...>; rel="next"`. The next page is found by `next_urls`; its URLs are not pages.

    Raises ApiError for an answer over the size limit, not JSON, or JSON that is neither an
    object nor an array (a bare string or number is no page of anything)."""
    value = decode_json(body)
    found = walk(value, AppData())
    join_base = base or url
    media = _resolved(found.media, join_base)
    pages = _resolved(found.pages, join_base)
    fragment_media, fragment_pages = _fragments(value, join_base)
    following = next_urls(value, url, headers)
    media = list(dict.fromkeys(media + fragment_media))
    skip = set(following) | set(media) | {url}
    pages = [page for page in dict.fromkeys(pages + fragment_pages) if page not in skip]
    return ApiPage(media=media, pages=pages, next=following)


def decode_json(body: bytes) -> dict[str, Any] | list[Any]:
    """The JSON object or array in `body`, or ApiError saying why there is none."""
    if len(body) > MAX_API_BYTES:
        raise ApiError(f"a JSON answer of {len(body)} bytes, over the {MAX_API_BYTES} limit")
    data = body.lstrip(b"\xef\xbb\xbf").lstrip()
    for prefix in _XSSI_PREFIXES:
        if data.startswith(prefix):
            data = data[len(prefix):].lstrip()
            break
    if data[:1] not in (b"{", b"["):
        padded = _JSONP.match(data[:MAX_API_BYTES])
        if padded is not None:
            data = padded.group("body")
    try:
        value = json.loads(data)
    except RecursionError as exc:
        raise ApiError("JSON nested too deep to read") from exc
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError alike
        raise ApiError(f"not JSON ({str(exc)[:120]})") from exc
    if not isinstance(value, dict | list):
        raise ApiError(f"JSON that is a {type(value).__name__}, not an object or an array")
    return value


def _resolved(urls: list[str], base: str) -> list[str]:
    result: dict[str, None] = {}
    for url in urls:
        if url.startswith(("data:image/", "data:video/")):
            result[url] = None
            continue
        absolute = urljoin(base, url.strip())
        if absolute.startswith(("http://", "https://")):
            result[absolute] = None
    return list(result)


def _fragments(value: Any, base: str) -> tuple[list[str], list[str]]:
    """Media and pages of the HTML fragments among an answer's strings (infinite scrolls
    that answer `{"html": "<li><img ...>"}`, WordPress's `content.rendered`)."""
    media: list[str] = []
    pages: list[str] = []
    count = chars = 0
    for _, text in strings(value):
        if "<" not in text or not re.search(r"<(?:img|a|video|source|picture|div|figure)\b",
                                            text, re.IGNORECASE):
            continue
        count += 1
        chars += len(text)
        if count > MAX_FRAGMENTS or chars > MAX_FRAGMENT_CHARS:
            break
        fragment = HtmlResponse(base, body=text.encode("utf-8"), encoding="utf-8")
        found_media, found_pages = page_links(fragment)
        media.extend(found_media)
        pages.extend(found_pages)
    return media, pages


# --- the next page --------------------------------------------------------------------------

def next_urls(value: Any, url: str, headers: Mapping[Any, Any] | None = None) -> list[str]:
    """The URLs of the page after this one of the API at `url`, first the surest, each once,
    never `url` itself.

    From a `Link: <...>; rel="next"` header (WordPress, GitHub); from the answer's objects
    (the top one and those under it, lists aside): a `next`/`next_url`/`nextPage`/
    `links.next`/`paging.next`/HAL `_links.next.href` URL; a cursor (`cursor`, `next_cursor`,
    `nextCursor`, `after`, `continuation`, `page_info.end_cursor`, `next_token`...) put into
    `url`'s query: it replaces a `cursor`, `after` or `page` parameter the URL has, else it is
    added as `cursor=` (as `after=`/`continuation=` for keys of that name, which is what the
    APIs that use them read: Reddit's `after`); a `nextPage` number as the `page`. Failing
    those, the `page` parameter counted up when the answer says there is more (`has_more`,
    `hasNextPage`...), when it gives a page count (`total_pages`, `last_page`) above this
    page, or when it is a full bare array (WordPress REST: `[...]` until a page past the end).
    An object whose `has_more`/`hasNextPage` is false names no next page."""
    found: list[str] = []
    link = _header(headers, "link") if headers is not None else None
    if link:
        for match in re.finditer(r"<([^>]+)>\s*((?:;[^,<]*)*)", link):
            if re.search(r"""rel\s*=\s*["']?(?:[^"';,]*\s)?next\b""", match.group(2),
                         re.IGNORECASE):
                found.append(urljoin(url, match.group(1).strip()))
    more_said: bool | None = None
    total_pages: int | None = None
    for obj in _objects(value):
        more = _more_flag(obj)
        if more is not None:
            more_said = more if more_said is None else (more_said or more)
        for key, item in obj.items():
            name = re.sub(r"[-_\s]", "", str(key)).lower()
            if name in _TOTAL_PAGE_KEYS and isinstance(item, int) and not isinstance(
                    item, bool):
                total_pages = item if total_pages is None else total_pages
            if more is False:
                continue
            if name in _NEXT_URL_KEYS:
                found.extend(_next_from(item, url))
            elif name in _CURSOR_KEYS and _is_cursor(item):
                found.append(with_cursor(url, str(item), name))
    if not found:
        page = _page_number(url)
        if page is not None and (
                more_said is True
                or (total_pages is not None and page < total_pages)
                or (isinstance(value, list) and value and _full_page(value, url))):
            found.append(with_param(url, _page_param(url) or "page", str(page + 1)))
    current = url.split("#", 1)[0]
    return [u for u in dict.fromkeys(u.split("#", 1)[0] for u in found)
            if u != current and u.startswith(("http://", "https://"))]


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """The answer's objects an API keeps its paging in: the top one (or a top array's
    objects are not: they are items) and the objects under it, breadth first, lists aside."""
    queue: list[tuple[dict[str, Any], int]] = [(value, 0)] if isinstance(value, dict) else []
    seen = 0
    while queue and seen < MAX_NEXT_OBJECTS:
        obj, depth = queue.pop(0)
        seen += 1
        yield obj
        if depth < MAX_NEXT_DEPTH:
            queue.extend((child, depth + 1) for child in obj.values()
                         if isinstance(child, dict))


def _more_flag(obj: dict[str, Any]) -> bool | None:
    for key, item in obj.items():
        if re.sub(r"[-_\s]", "", str(key)).lower() in _MORE_KEYS and isinstance(item, bool):
            return item
    return None


def _is_cursor(item: Any) -> bool:
    if isinstance(item, bool) or item is None:
        return False
    if isinstance(item, int):
        return item > 0
    return isinstance(item, str) and 0 < len(item.strip()) <= 1024 and not any(
        c.isspace() for c in item.strip())


def _next_from(item: Any, url: str) -> list[str]:
    """The next page's URL from a `next`-named value: a URL or path, a HAL/JSON:API object
    (`{"href": ...}`), a page number, or a bare token (a cursor)."""
    if isinstance(item, dict):
        for key in ("href", "url", "uri", "link"):
            if isinstance(item.get(key), str):
                return _next_from(item[key], url)
        return []
    if isinstance(item, int) and not isinstance(item, bool):
        return [with_param(url, _page_param(url) or "page", str(item))] if item > 0 else []
    if not isinstance(item, str) or not _is_cursor(item):
        return []
    text = item.strip()
    if text.startswith(("http://", "https://", "//", "/", "?", "./", "../")):
        return [urljoin(url, text)]
    if re.fullmatch(r"\d+", text):
        return [with_param(url, _page_param(url) or "page", text)]
    return [with_cursor(url, text, "cursor")]


def with_cursor(url: str, cursor: str, key: str = "cursor") -> str:
    """`url` asking for the page after `cursor`: the URL's `cursor`, `after` or `page`
    parameter (its parameter named like `key` first) set to it, else a new parameter
    (`cursor=`, or `after=`/`continuation=` for those keys)."""
    names = [name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    own = _NAMED_CURSOR_PARAMS.get(key)
    for param in ((own,) if own else ()) + _CURSOR_PARAMS:
        if param in names:
            return with_param(url, param, cursor)
    return with_param(url, own or "cursor", cursor)


def with_param(url: str, name: str, value: str) -> str:
    """`url` with query parameter `name` set to `value` (the first of that name replaced in
    place, the others dropped; else added at the end); the fragment dropped."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    result: list[tuple[str, str]] = []
    placed = False
    for key, old in pairs:
        if key == name:
            if not placed:
                result.append((key, value))
                placed = True
            continue
        result.append((key, old))
    if not placed:
        result.append((name, value))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(result), ""))


def _page_param(url: str) -> str | None:
    names = {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    return next((name for name in _PAGE_PARAMS if name in names), None)


def _page_number(url: str) -> int | None:
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    for name in _PAGE_PARAMS:
        if re.fullmatch(r"\d{1,6}", params.get(name, "")):
            return int(params[name])
    return None


def _full_page(items: list[Any], url: str) -> bool:
    """Whether a bare array is a full page: as long as the page size asked for, or (none
    asked for) not empty."""
    params = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    for name in _PER_PAGE_PARAMS:
        if re.fullmatch(r"\d{1,5}", params.get(name, "")):
            return len(items) >= int(params[name])
    return True


def _header(headers: Mapping[Any, Any], name: str) -> str | None:
    """A header's value (all its lines joined) from Scrapy's Headers or a plain mapping."""
    for key, value in headers.items():
        key_text = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if key_text.lower() != name:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        return ", ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v)
                         for v in values)
    return None
