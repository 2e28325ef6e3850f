"""The script-driven sites of the test web, made as today's sites make them: the HTML and the
JavaScript they serve and the JSON their APIs answer (server.py routes to them).

- spa-gallery: an empty `<div id="app">` and /static/app.js, which builds its API URL from pieces
  ("/api/" + version + "/" + resource + "?" + query), fetch()es it and inserts the `<img>`s.
- infinite-scroll: a first batch of posts in the HTML, more from a cursor-paginated JSON API
  (`{"items": [{"image": {"src": ...}}], "next_cursor": ...}`) when an IntersectionObserver sees
  the end of the list; the planted picture is on the API's third page.
- js-challenge: a Cloudflare-style interstitial: 503 and a page whose inline script computes a
  token from numbers in the page (and the host name, as Cloudflare's did), sets `cf_clearance`
  and reloads after half a second. Each challenge has its own ray id, and the token is checked
  against the values of that ray, so the server keeps no state.
- nuxt: a Nuxt 2 page whose `<client-only>` gallery is empty in the HTML, and whose photos are
  in `window.__NUXT__=(function(a,b,...){return {...}}("\\u002Fr\\u002F...",...))`, rendered by
  /_nuxt/app.js.
- the image host's viewer pages (the CDN address) and the site's short links to them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from html import escape

# --- spa-gallery -------------------------------------------------------------------------

SPA_SCRIPT = r"""/*! gallery-app v2.3.1 */
(function () {
  "use strict";
  var root = document.getElementById("app");
  var version = "v" + 2;

  function endpoint(resource, params) {
    var query = Object.keys(params).map(function (key) {
      return encodeURIComponent(key) + "=" + encodeURIComponent(params[key]);
    }).join("&");
    return ["", "api", version, resource].join("/") + "?" + query;
  }

  function photo(item) {
    var figure = document.createElement("figure");
    figure.className = "photo";
    var img = document.createElement("img");
    img.src = item.urls.regular;
    img.width = item.width;
    img.height = item.height;
    img.alt = item.alt_description || "";
    img.loading = "lazy";
    figure.appendChild(img);
    return figure;
  }

  function render(body) {
    var grid = document.createElement("div");
    grid.className = "grid";
    body.data.forEach(function (item) { grid.appendChild(photo(item)); });
    root.innerHTML = "";
    root.appendChild(grid);
    if (body.meta.next_page) {
      var next = document.createElement("a");
      next.className = "next";
      next.href = "?page=" + body.meta.next_page;
      next.textContent = "Next";
      root.appendChild(next);
    }
  }

  var page = parseInt(new URLSearchParams(location.search).get("page") || "1", 10) || 1;
  root.innerHTML = '<p class="loading">Loading\u2026</p>';
  fetch(endpoint("gallery", {page: page, per_page: 12}), {
    headers: {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"},
    credentials: "same-origin"
  }).then(function (response) {
    if (!response.ok) { throw new Error("HTTP " + response.status); }
    return response.json();
  }).then(render).catch(function (error) {
    root.innerHTML = '<p class="error">Could not load the gallery.</p>';
    console.error(error);
  });
})();
"""


def spa_shell(language: str, title: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title>"
            '<script src="/static/app.js" defer></script></head><body>'
            "<noscript>You need to enable JavaScript to run this app.</noscript>"
            '<div id="app"></div></body></html>')


def spa_api(site: int, page: int, pages: int, per_page: int, planted: str) -> dict:
    """The gallery API's page `page`: unrelated photos, and the planted one on page 1."""
    names = [f"/img/{site}-{500 + (page - 1) * per_page + slot}.jpg" for slot in range(per_page)]
    if page == 1:
        names.insert(1, planted)
    data = [{"id": hashlib.sha256(name.encode()).hexdigest()[:11], "width": 320, "height": 240,
             "alt_description": None, "likes": 3 + slot,
             "urls": {"regular": name, "small": name}}
            for slot, name in enumerate(names if 1 <= page <= pages else [])]
    return {"data": data, "meta": {"page": page, "per_page": per_page,
                                   "total_pages": pages,
                                   "next_page": page + 1 if page < pages else None}}


# --- infinite-scroll ---------------------------------------------------------------------

FEED_SCRIPT = r"""(function () {
  "use strict";
  var list = document.querySelector("ul.feed");
  var sentinel = document.getElementById("feed-sentinel");
  var next = list.getAttribute("data-next-url");
  var loading = false;

  function post(item) {
    var li = document.createElement("li");
    li.className = "feed-item";
    li.setAttribute("data-id", item.id);
    var img = document.createElement("img");
    img.src = item.image.src;
    img.width = item.image.width;
    img.height = item.image.height;
    img.alt = item.caption || "";
    li.appendChild(img);
    return li;
  }

  function more() {
    if (loading || !next) { return; }
    loading = true;
    fetch(next, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (body) {
        body.items.forEach(function (item) { list.appendChild(post(item)); });
        next = body.next_cursor ? "/api/feed?cursor=" + encodeURIComponent(body.next_cursor)
                                : null;
        loading = false;
        observer.unobserve(sentinel);
        if (next) { observer.observe(sentinel); } else { sentinel.remove(); }
      })
      .catch(function () { loading = false; });
  }

  var observer = new IntersectionObserver(function (entries) {
    if (entries.some(function (entry) { return entry.isIntersecting; })) { more(); }
  }, {rootMargin: "0px 0px 200px 0px"});
  observer.observe(sentinel);
})();
"""
# Posts in the HTML, posts per API page, API pages (the planted picture is on the last).
FEED_FIRST, FEED_PER_PAGE, FEED_PAGES = 5, 3, 3


def feed_pages(site: int, planted: str) -> list[list[tuple[int, str]]]:
    """The feed's posts, newest first, as (post id, picture path): the HTML's batch, then each
    API page's."""
    pages, number = [], 0
    post_id = 48_000_000 + site * 1000
    for page in range(FEED_PAGES + 1):
        posts = []
        for _ in range(FEED_FIRST if page == 0 else FEED_PER_PAGE):
            posts.append((post_id, f"/img/{site}-{200 + number}.jpg"))
            post_id -= 7
            number += 1
        if page == FEED_PAGES:
            posts.insert(1, (post_id, planted))
            post_id -= 7
        pages.append(posts)
    return pages


def feed_cursor(before: int) -> str:
    """An opaque cursor, as such APIs make them: base64url JSON without padding."""
    raw = json.dumps({"before": before, "v": 2}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def feed_page_of(cursor: str, pages: list[list[tuple[int, str]]]) -> int | None:
    """The API page (1..FEED_PAGES) a cursor asks for, None for a cursor the API never gave."""
    try:
        before = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["before"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    for page in range(1, len(pages)):
        if pages[page - 1][-1][0] == before:
            return page
    return None


def feed_html(language: str, title: str, pages: list[list[tuple[int, str]]]) -> str:
    items = "".join(f'<li class="feed-item" data-id="{post}"><img src="{src}" width="320" '
                    f'height="240" alt=""></li>' for post, src in pages[0])
    return (f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title><style>.feed{{list-style:none;margin:0;"
            "padding:0;max-width:340px}.feed-item{margin:0 0 24px}.feed-item img{display:block}"
            "#feed-sentinel{height:1px}</style></head><body><header><h1>"
            f"{escape(title)}</h1></header><main>"
            f'<ul class="feed" id="feed" data-next-url="/api/feed?cursor='
            f'{feed_cursor(pages[0][-1][0])}">{items}</ul>'
            '<div id="feed-sentinel" aria-hidden="true"></div></main>'
            '<script src="/static/feed.js" defer></script></body></html>')


def feed_api(host: str, page: int, pages: list[list[tuple[int, str]]]) -> dict:
    items = [{"id": str(post), "type": "photo", "caption": "",
              "created_at": f"2025-11-{1 + post % 28:02d}T{post % 24:02d}:00:00Z",
              "image": {"src": f"http://{host}{src}", "width": 320, "height": 240}}
             for post, src in pages[page]]
    last = page == len(pages) - 1
    return {"items": items, "next_cursor": None if last else feed_cursor(pages[page][-1][0]),
            "has_more": not last}


# --- js-challenge ------------------------------------------------------------------------

CHALLENGE_ROUNDS = 16


def challenge_values(site: int, ray: str) -> tuple[int, int, int, int]:
    """The numbers challenge `ray` of site `site` shows: (a, b, c, m)."""
    digest = hashlib.sha256(f"challenge-{site}-{ray}".encode()).digest()
    a = 1000 + int.from_bytes(digest[0:4], "big") % 40000
    b = 100 + int.from_bytes(digest[4:8], "big") % 9000
    c = 1 + int.from_bytes(digest[8:12], "big") % 99999
    m = (1_000_003, 999_983, 1_048_573)[digest[12] % 3]
    return a, b, c, m


def challenge_answer(values: tuple[int, int, int, int], hostname: str) -> int:
    a, b, c, m = values
    n = c
    for _ in range(CHALLENGE_ROUNDS):
        n = (n * a + b) % m
    return (n + len(hostname)) % m


def challenge_cookie_ok(site: int, cookie: str | None, hostname: str) -> bool:
    """Whether a cf_clearance value answers a challenge this site gave."""
    answer, _, ray = (cookie or "").partition(".")
    if len(ray) != 16 or not all(ch in "0123456789abcdef" for ch in ray):
        return False
    return answer == format(challenge_answer(challenge_values(site, ray), hostname), "x")


def challenge_page(site: int, ray: str, host: str) -> str:
    a, b, c, m = challenge_values(site, ray)
    hostname = host.rsplit(":", 1)[0]
    token = hashlib.sha256(f"tk-{ray}".encode()).hexdigest()[:40]
    return (
        '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
        '<meta http-equiv="X-UA-Compatible" content="IE=Edge">'
        '<meta name="robots" content="noindex,nofollow">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<style>*{box-sizing:border-box;margin:0;padding:0}html{line-height:1.15;"
        "font-family:system-ui,-apple-system,sans-serif;color:#313131}.main-wrapper{display:flex;"
        "flex-direction:column;align-items:center;margin:8rem auto;max-width:60rem}"
        ".h1{font-size:2.5rem;font-weight:500}.h2{font-size:1.5rem;font-weight:500}</style>"
        '</head><body class="no-js"><div class="main-wrapper" role="main">'
        f'<div class="main-content"><h1 class="zone-name-title h1">{escape(hostname)}</h1>'
        '<h2 class="h2" id="challenge-running">Checking if the site connection is secure</h2>'
        '<noscript><div id="challenge-error-title"><div class="h2">Enable JavaScript and '
        "cookies to continue</div></div></noscript>"
        f'<div id="challenge-body-text" class="core-msg spacer">{escape(hostname)} needs to '
        "review the security of your connection before proceeding.</div>"
        f'<form id="challenge-form" action="/?__cf_chl_f_tk={token}" method="POST" '
        'enctype="application/x-www-form-urlencoded">'
        f'<input type="hidden" name="md" value="{token[::-1]}"></form></div></div>'
        "<script>(function(){"
        f'window._cf_chl_opt={{cvId:"2",cZone:"{hostname}",cType:"non-interactive",'
        f'cNounce:"{c % 100000}",cRay:"{ray}",cHash:"{token[:15]}",cFPWv:"b"}};'
        f"var a={a},b={b},c={c},m={m};"
        f"var n=c;for(var i=0;i<{CHALLENGE_ROUNDS};i++){{n=(n*a+b)%m;}}"
        "n=(n+location.hostname.length)%m;"
        'document.cookie="cf_clearance="+n.toString(16)+"."+window._cf_chl_opt.cRay+'
        '"; path=/; max-age=1800; SameSite=Lax";'
        "setTimeout(function(){location.reload();},500);"
        "})();</script>"
        '<div class="footer" role="contentinfo"><div class="footer-inner">'
        f'<div class="text-center">Ray ID: <code>{ray}</code></div>'
        '<div class="text-center">Performance &amp; security by Cloudflare</div>'
        "</div></div></body></html>")


# --- nuxt ----------------------------------------------------------------------------------

NUXT_SCRIPT = r"""(window.webpackJsonp = window.webpackJsonp || []).push([[1], {}]);
(function () {
  "use strict";
  var nuxt = window.__NUXT__ || {};
  var page = (nuxt.data || [])[0] || {};
  var grid = document.querySelector("#__layout .gallery-grid");
  if (!grid) { return; }
  grid.innerHTML = "";
  (page.photos || []).forEach(function (photo) {
    var card = document.createElement("div");
    card.className = "photo-card";
    card.setAttribute("data-id", photo.id);
    var img = document.createElement("img");
    img.src = photo.src;
    img.width = photo.width;
    img.height = photo.height;
    img.alt = photo.title;
    card.appendChild(img);
    grid.appendChild(card);
  });
})();
"""


def _devalue(value: object) -> str:
    """A value as Nuxt's devalue writes it into the payload: `<`, `>` and `/` escaped."""
    return (json.dumps(value).replace("/", "\\u002F").replace("<", "\\u003C")
            .replace(">", "\\u003E"))


def nuxt_html(site: int, language: str, title: str, planted: str) -> str:
    """A Nuxt 2 page: the gallery a client-only component (an empty comment in the HTML), its
    photos in the payload, whose strings are arguments of the IIFE, as Nuxt writes repeated and
    long values."""
    other = f"/r/{site}-501"
    arguments = [planted, other, 8800 + site * 3, 8801 + site * 3, "", 320, 240, False, None]
    payload = (
        "window.__NUXT__=(function(a,b,c,d,e,f,g,h,i){return {layout:\"default\","
        "data:[{photos:[{id:d,src:b,width:f,height:g,title:e,nsfw:h},"
        "{id:c,src:a,width:f,height:g,title:e,nsfw:h}],total:2,next:i}],fetch:{},error:i,"
        "state:{auth:{loggedIn:h,user:i}},serverRendered:true,routePath:\"\\u002F\","
        "config:{_app:{basePath:\"\\u002F\",assetsPath:\"\\u002F_nuxt\\u002F\",cdnURL:i}}}}("
        + ",".join(_devalue(v) for v in arguments) + "));")
    return (
        f'<!doctype html>\n<html data-n-head-ssr lang="{language}" data-n-head="%7B%22lang%22:'
        f'%7B%22ssr%22:%22{language}%22%7D%7D"><head><title>{escape(title)}</title>'
        '<meta data-n-head="ssr" charset="utf-8"><meta data-n-head="ssr" name="viewport" '
        'content="width=device-width, initial-scale=1">'
        '<link rel="preload" href="/_nuxt/app.js" as="script"></head><body>'
        '<div data-server-rendered="true" id="__nuxt"><div id="__layout"><main class="gallery">'
        f'<h1 class="title">{escape(title)}</h1><div class="gallery-grid"><!----></div></main>'
        f"</div></div><script>{payload}</script>"
        '<script src="/_nuxt/app.js" defer></script></body></html>')


# --- nuxt 3 --------------------------------------------------------------------------------

# Nuxt 3's entry module (the test web's stand-in): it revives the devalue payload of
# __NUXT_DATA__ (a flat array whose objects name their values by index) and mounts the gallery.
NUXT3_ENTRY = r"""const payload = JSON.parse(document.getElementById("__NUXT_DATA__").textContent);
const seen = new Map();
function revive(index) {
  if (typeof index !== "number" || index < 0) { return undefined; }
  if (seen.has(index)) { return seen.get(index); }
  const value = payload[index];
  if (Array.isArray(value)) {
    const wrapper = /^(ShallowReactive|Reactive|Ref|ShallowRef)$/;
    if (typeof value[0] === "string" && wrapper.test(value[0])) {
      return revive(value[1]);
    }
    const out = []; seen.set(index, out);
    value.forEach((item) => out.push(revive(item)));
    return out;
  }
  if (value && typeof value === "object") {
    const out = {}; seen.set(index, out);
    for (const [key, item] of Object.entries(value)) { out[key] = revive(item); }
    return out;
  }
  return value;
}
const nuxt = revive(0);
const photos = (nuxt.data && nuxt.data["gallery"] && nuxt.data["gallery"].photos) || [];
const grid = document.querySelector("#__nuxt .gallery-grid");
for (const photo of photos) {
  const img = document.createElement("img");
  img.src = photo.src; img.width = photo.width; img.height = photo.height; img.alt = photo.alt;
  grid.appendChild(img);
}
"""


def nuxt3_html(site: int, language: str, title: str, planted: str) -> str:
    """A Nuxt 3 page: the gallery a client-only component (an empty comment in the HTML), its
    photos in __NUXT_DATA__ as devalue writes them: one flat JSON array in which every object
    names its values by their index, so the picture's address is a bare string with no key
    beside it, and extension-less (an image service's URL)."""
    other = f"/r/{site}-502"
    payload = [
        ["ShallowReactive", 1], {"data": 2, "state": 9, "once": 10, "_errors": 11,
                                 "serverRendered": 12, "path": 13},
        ["ShallowReactive", 3], {"gallery": 4}, {"photos": 5, "total": 14},
        [6, 8], {"id": 15, "src": 16, "width": 17, "height": 18, "alt": 19},
        None, {"id": 20, "src": 21, "width": 17, "height": 18, "alt": 19},
        ["Reactive", 22], ["Set"], ["ShallowReactive", 23], True, "/gallery", 2,
        8800 + site * 3, other, 320, 240, "", 8801 + site * 3, planted, {}, {},
    ]
    return (
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8">'
        f'<title>{escape(title)}</title>'
        '<link rel="modulepreload" as="script" crossorigin href="/_nuxt/entry.B1x9Qm.js">'
        '<script type="module" src="/_nuxt/entry.B1x9Qm.js" crossorigin></script></head><body>'
        '<div id="__nuxt"><!--[--><main class="gallery"><h1 class="title">'
        f'{escape(title)}</h1><div class="gallery-grid"><!----></div></main><!--]--></div>'
        '<div id="teleports"></div>'
        '<script type="application/json" data-nuxt-data="nuxt-app" data-ssr="true" '
        f'id="__NUXT_DATA__">{_devalue(payload)}</script>'
        '<script>window.__NUXT__={};window.__NUXT__.config={public:{},app:{baseURL:"/",'
        'buildId:"3f9b2c1e",buildAssetsDir:"/_nuxt/",cdnURL:""}}</script></body></html>')


# --- lightbox ------------------------------------------------------------------------------

PHOTOSWIPE_LIGHTBOX = r"""/*! PhotoSwipe Lightbox (the test web's small stand-in) */
export default class PhotoSwipeLightbox {
  constructor(options) { this.options = options; }
  init() {
    const gallery = document.querySelector(this.options.gallery);
    if (!gallery) { return; }
    gallery.addEventListener("click", (event) => {
      const link = event.target.closest(this.options.children);
      if (!link) { return; }
      event.preventDefault();
      this.options.pswpModule().then(({default: PhotoSwipe}) => new PhotoSwipe({
        src: link.dataset.pswpSrc, width: +link.dataset.pswpWidth,
        height: +link.dataset.pswpHeight}).init());
    });
  }
}
"""
PHOTOSWIPE = r"""/*! PhotoSwipe (the test web's small stand-in) */
export default class PhotoSwipe {
  constructor(slide) { this.slide = slide; }
  init() {
    const root = document.createElement("div");
    root.className = "pswp pswp--open";
    const img = document.createElement("img");
    img.className = "pswp__img";
    img.src = this.slide.src;
    img.width = this.slide.width;
    img.height = this.slide.height;
    root.appendChild(img);
    document.body.appendChild(root);
  }
}
"""

# --- the image host ------------------------------------------------------------------------

# Other uploads of the site shown as "more images" on a viewer page, and its banners.
VIEWER_MORE = (801, 802, 803)
VIEWER_ADS = (851, 852)


def short_link_page(kind: str, target: str) -> str:
    """The site's short link to a viewer page: a 200 page that moves the browser on."""
    if kind == "viewer-meta-refresh":
        return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
                '<meta name="robots" content="noindex, nofollow">'
                '<meta name="referrer" content="no-referrer-when-downgrade">'
                f'<meta http-equiv="refresh" content="0;url={escape(target)}">'
                "<title>Redirecting...</title></head><body></body></html>")
    return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
            '<meta name="robots" content="noindex, nofollow"><title>Redirecting...</title>'
            "</head><body><p>Please wait, you are being redirected...</p>"
            f"<script>window.location.href = {json.dumps(target)};</script></body></html>")


def viewer_page(origin: str, site: int, file: str, more: list[tuple[str, str]],
                ads: list[str]) -> str:
    """An image host's viewer page: one big picture, banners, other uploads' thumbnails.
    `more` is (viewer page, thumbnail) of the other uploads."""
    banners = [f'<div class="ad"><a href="{origin}/ad/click?z={site}" '
               f'rel="nofollow sponsored" target="_blank"><img src="{origin}{ad}" '
               'width="300" height="250" alt=""></a></div>' for ad in ads]
    thumbs = "".join(f'<a href="{origin}{page}"><img src="{origin}{thumb}" width="150" '
                     'height="113" alt=""></a>' for page, thumb in more)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(file)} - PixHost</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>'
        '<header class="top"><a href="/" class="logo">PixHost</a><nav><a href="/">Upload</a>'
        '<a href="/gallery">Galleries</a></nav></header>'
        f'<div class="ads-top">{"".join(banners[:1])}</div>'
        f'<div id="image-container"><a href="{origin}/images/{site}/{escape(file)}" '
        f'target="_blank"><img id="image" class="image-img" '
        f'src="{origin}/images/{site}/{escape(file)}" alt="{escape(file)}"></a></div>'
        f'<div class="image-info"><h1>{escape(file)}</h1></div>'
        f'<div class="more"><h3>More images</h3>{thumbs}</div>'
        f'<div class="ads-side">{"".join(banners[1:])}</div>'
        '<footer><a href="/tos">Terms</a> <a href="/abuse">Report abuse</a></footer>'
        "</body></html>")
