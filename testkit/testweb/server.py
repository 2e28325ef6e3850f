"""Serving the test web over HTTP with aiohttp: one listening socket, one site per address.

The server listens on every local address and tells sites apart by the loopback address a
connection was made to (127.10.0.1 is site 0, and so on); connections from anywhere but
loopback are refused. Run it with `python -m testkit.testweb`, or `start_testweb()` in a test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import gzip
import hashlib
import io
import secrets
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image

from testkit.testweb import apps, streams
from testkit.testweb.forms import AbuseDesk
from testkit.testweb.model import (
    CDN_ADDRESS,
    FORMS_ADDRESS,
    MODERN_MARKUPS,
    PLANTED_FORMATS,
    TITLES,
    VIEWER_MARKUPS,
    SiteSpec,
    TestWeb,
    WebPlan,
    site_address,
    site_index,
    viewer_file,
    viewer_id,
    webp_image,
)

PLACEHOLDER_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


@functools.cache
def decompression_bomb() -> bytes:
    """A small PNG that claims 400 megapixels (all black, 1 bit per pixel)."""
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")
    return buffer.getvalue()


@functools.cache
def gzip_bomb(megabytes: int = 512) -> bytes:
    """`megabytes` of zeros, gzip-compressed to about a thousandth of that."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(megabytes)]
    parts.append(compressor.flush())
    return b"".join(parts)


# How each markup shows a picture: (head HTML, body HTML) templates. Fields: url (site-relative
# path), absolute, extra (another picture of the site), extra_webp (the same as WebP), name (file
# stem), host, cdn, site, css, data_uri, download (a HEIC's file name), link (the short link to
# the image host's viewer page), thumb (the image host's thumbnail, of another picture).
_MARKUP: dict[str, tuple[str, str]] = {
    "img": ("", '<img src="{url}" alt="">'),
    "srcset": ("", '<img src="{extra}" srcset="{url} 2x" alt="">'),
    "lazy": ("", '<img class="lazy" src="' + PLACEHOLDER_GIF + '" data-src="{url}" alt="">'),
    "picture": ("", '<picture><source srcset="{url}" type="image/jpeg">'
                    '<img src="{extra}" alt=""></picture>'),
    "inline-css": ("", "<div class=\"tile\" style=\"background-image: url('{url}')\"></div>"),
    "style-block": ('<style>.{css} {{ background: #000 url("{url}") no-repeat; }}</style>',
                    '<div class="{css}"></div>'),
    "og-image": ('<meta property="og:image" content="{absolute}">', ""),
    "twitter-image": ('<meta name="twitter:image" content="{absolute}">', ""),
    "link": ("", '<a href="{url}"><img src="{extra}" alt="thumbnail"></a>'),
    "video-poster": ("", '<video controls poster="{url}"></video>'),
    "video": ("", '<video controls><source src="{url}" type="video/mp4"></video>'),
    "script-json": ("", '<script>var gallery = {{"items": ["{escaped}"]}};</script>'),
    "data-bg": ("", '<div class="hero" data-bg="{url}"></div>'),
    "base-href": ('<base href="/gallery/">', '<img src="img/{name}.jpg" alt="">'),
    "protocol-relative": ("", '<img src="//{host}{url}" alt="">'),
    "redirect": ("", '<img src="/r/{name}" alt="">'),
    "no-extension": ("", '<img src="/media?id={name}" alt="">'),
    "cdn": ("", '<img src="http://{cdn}/cdn/{site}/{name}.jpg" alt="">'),
    "next-data": ("", '<div id="__next"></div><script id="__NEXT_DATA__" type="application/json">'
                      '{{"props":{{"pageProps":{{"photos":[{{"id":7,"thumbnailUrl":'
                      '"{relative_u002f}","w":320}}]}}}},"page":"/gallery"}}</script>'),
    "app-state": ("", '<div id="app"></div><script>window.__INITIAL_STATE__ = {{"gallery":'
                      '{{"items":[{{"id":"{name}","full":"\\/r\\/{name}"}}]}}}};'
                      "window.render && render();</script>"),
    "json-ld": ('<script type="application/ld+json">{{"@context":"https://schema.org",'
                '"@type":"ImageObject","contentUrl":"http://{host}/r/{name}",'
                '"url":"http://{host}/gallery"}}</script>', ""),
    # The players of tube sites: video.js loading an HLS master, dash.js an MPD.
    "hls": ("", '<video id="player" class="video-js vjs-default-skin" controls preload="none" '
                'poster="{extra}"></video><script src="/static/video.min.js"></script>'
                '<script>var player = videojs("player", {{"fluid": true}});'
                'player.src({{"src": "/stream/{site}/master.m3u8", '
                '"type": "application/x-mpegURL"}});</script>'),
    "hls-aes": ("", '<div class="player" data-config=\'{{"playlist": [{{"file": '
                    '"/stream-aes/{site}/master.m3u8", "image": "{extra}"}}]}}\'></div>'
                    '<script src="/static/jwplayer.js"></script>'),
    "dash": ("", '<video id="v" controls></video><script src="/static/dash.all.min.js">'
                 '</script><script>var url = "/dash/{site}/manifest.mpd";'
                 'var p = dashjs.MediaPlayer().create();'
                 'p.initialize(document.querySelector("#v"), url, true);</script>'),
    # Nothing on the pages a link leads to: only the sitemap lists the picture's page.
    "sitemap-only": ("", ""),
    # The gallery itself is behind the gate (site_response); once through, a plain picture.
    "age-gate": ("", '<img src="{url}" alt="">'),
    "data-uri": ("", '<img src="{data_uri}" alt="" width="320" height="240">'),
    # Whole pages of their own (apps.py) where the gallery would be; these are their widgets.
    "spa-gallery": ("", '<div id="app"></div><script src="/static/app.js" defer></script>'),
    "infinite-scroll": ("", ""),
    "nuxt": ("", ""),
    "nuxt3": ("", ""),
    # Behind the challenge (site_response), a plain picture.
    "js-challenge": ("", '<img src="{url}" alt="">'),
    # A forum post's thumbnail, linked to the image host through the site's short link.
    "viewer-meta-refresh": ("", '<a href="{link}" target="_blank" rel="noopener">'
                                '<img src="{thumb}" alt="" width="150" height="113"></a>'),
    "viewer-js-location": ("", '<a href="{link}" target="_blank" rel="noopener">'
                               '<img src="{thumb}" alt="" width="150" height="113"></a>'),
    "viewer-text-link": ("", '<div class="postbody">Uploaded it here: <a href="{viewer}" '
                             'class="postlink" rel="nofollow noopener">{viewer}</a></div>'),
    # PhotoSwipe 5: the full-size picture only in data-pswp-src, the link itself goes nowhere.
    "lightbox": ("", '<div class="pswp-gallery" id="gallery-{site}"><a href="#" '
                     'data-pswp-src="{url}" data-pswp-width="640" data-pswp-height="480" '
                     'data-cropped="true" target="_blank"><img src="{extra}" width="160" '
                     'height="120" alt=""></a></div><script type="module">import '
                     'PhotoSwipeLightbox from "/static/photoswipe-lightbox.esm.min.js";'
                     'const lightbox = new PhotoSwipeLightbox({{gallery: "#gallery-{site}", '
                     'children: "a", pswpModule: () => import("/static/photoswipe.esm.min.js")'
                     '}});lightbox.init();</script>'),
    "picture-avif": ("", '<picture><source type="image/avif" srcset="{url}"><source '
                         'type="image/webp" srcset="{extra_webp}"><img src="{extra}" alt="" '
                         'width="320" height="240" loading="lazy" decoding="async"></picture>'),
    "webp-animated": ("", '<img src="{url}" alt="" width="320" height="240">'),
    "gif-animated": ("", '<img class="gif" src="{url}" alt="" width="320" height="240">'),
    "apng": ("", '<img src="{url}" alt="" width="320" height="240">'),
    "avif": ("", '<img src="{url}" alt="" loading="lazy" decoding="async">'),
    # A phone's photo attached to a post: a download link, not an <img>.
    "heic": ("", '<div class="attachment"><a href="{url}" download="{download}">{download}</a>'
                 ' <span class="meta">HEIC image</span></div>'),
}
# The Content-Type of each planted file format.
FORMAT_TYPES = {"avif": "image/avif", "heic": "image/heic", "webp": "image/webp",
                "gif": "image/gif", "png": "image/png"}
# The scripts the script-driven sites serve: (markup, path) -> (content type, text).
SCRIPTS = {
    ("spa-gallery", "/static/app.js"): ("application/javascript", apps.SPA_SCRIPT),
    ("infinite-scroll", "/static/feed.js"): ("application/javascript", apps.FEED_SCRIPT),
    ("nuxt", "/_nuxt/app.js"): ("application/javascript", apps.NUXT_SCRIPT),
    ("nuxt3", "/_nuxt/entry.B1x9Qm.js"): ("application/javascript", apps.NUXT3_ENTRY),
    ("lightbox", "/static/photoswipe-lightbox.esm.min.js"): ("text/javascript",
                                                             apps.PHOTOSWIPE_LIGHTBOX),
    ("lightbox", "/static/photoswipe.esm.min.js"): ("text/javascript", apps.PHOTOSWIPE),
}


def download_name(site: int) -> str:
    """The file name of a site's HEIC attachment, as a phone names its photos."""
    return f"IMG_{4000 + site}.HEIC"


def media_markup(markup: str, **fields: str) -> tuple[str, str]:
    """(head, body) HTML showing one picture in the style `markup`."""
    fields["escaped"] = fields.get("url", "").replace("/", "\\/")
    fields["relative_u002f"] = fields.get("url", "").lstrip("/").replace("/", "\\u002F")
    fields["css"] = "t" + hashlib.sha256(fields.get("url", "").encode()).hexdigest()[:8]
    head, body = _MARKUP[markup]
    return head.format(**fields), body.format(**fields)


async def off_loop(build: Callable[..., bytes], *args: Any) -> bytes:
    """Build a body in a thread: a picture, a video or a bomb takes from milliseconds to
    seconds to make the first time (then it is cached), and made inside the event loop it
    would stall every other site's answers for that long, so a loaded machine saw timeouts
    that no real site would have caused."""
    return await asyncio.to_thread(build, *args)


class TestWebServer:
    """The aiohttp application serving a TestWeb."""

    def __init__(self, web_: TestWeb, served_log: Path | None = None) -> None:
        self.web = web_
        self.served_log = served_log.open("a", buffering=1) if served_log else None
        self.desk = AbuseDesk()

    def log_served(self, url: str) -> None:
        if self.served_log:
            self.served_log.write(f"{time.time():.6f}\t{url}\n")

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_route("GET", "/{tail:.*}", self.handle)
        application.router.add_route("POST", "/{tail:.*}", self.handle)
        return application

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        local = request.transport.get_extra_info("sockname") if request.transport else None
        if not peer or not str(peer[0]).startswith("127."):
            raise web.HTTPForbidden(text="the test web serves loopback only")
        address = local[0]
        if address == CDN_ADDRESS:
            return await self.cdn(request)
        if address == FORMS_ADDRESS:
            return await self.desk.handle(request)
        index = site_index(address)
        if index is None or index >= self.web.plan.sites:
            raise web.HTTPNotFound(text="no test site at this address")
        return await self.site_response(request, self.web.site(index))

    async def cdn(self, request: web.Request) -> web.Response:
        parts = request.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] in ("show", "images", "thumbs", "ads"):
            return await self.image_host(request, parts[0], parts[1], parts[2])
        if len(parts) != 3 or parts[0] != "cdn":
            raise web.HTTPNotFound()
        site = self.web.site(int(parts[1]))
        return await self.image_response(request, site, parts[2].removesuffix(".jpg"))

    async def image_host(self, request: web.Request, kind: str, site_part: str, file: str
                         ) -> web.Response:
        """The image host on the CDN address that the viewer sites link to (pixhost-style):
        /show/<site>/<id>_<name>.jpg a viewer page, /images/... the file, /thumbs/... a
        thumbnail, /ads/<site>/<n>.jpg a banner. Only the viewer sites have uploads there."""
        index = int(site_part) if site_part.isdigit() else -1
        if not 0 <= index < self.web.plan.sites:
            raise web.HTTPNotFound()
        site = self.web.site(index)
        if site.planted is None or site.markup not in VIEWER_MARKUPS:
            raise web.HTTPNotFound()
        if kind == "ads":
            number = file.removesuffix(".jpg")
            if not number.isdigit() or int(number) not in apps.VIEWER_ADS:
                raise web.HTTPNotFound()
            return await self.image_response(request, site, f"{index}-{number}")
        uploads = {viewer_file(index, n): n for n in ("p", *map(str, apps.VIEWER_MORE))}
        if file not in uploads:
            raise web.HTTPNotFound()
        number = uploads[file]
        if kind == "images":
            return await self.image_response(request, site, f"{index}-{number}", hosted=True)
        if kind == "thumbs":
            # The planted upload's thumbnail is of another picture, so that only the viewer
            # page leads to the planted one.
            return await self.image_response(
                request, site, f"{index}-{'777' if number == 'p' else number}")
        origin = f"http://{request.host}"
        more = [(f"/show/{index}/{viewer_file(index, str(n))}",
                 f"/thumbs/{index}/{viewer_file(index, str(n))}")
                for n in apps.VIEWER_MORE if str(n) != number]
        ads = [f"/ads/{index}/{n}.jpg" for n in apps.VIEWER_ADS]
        return web.Response(text=apps.viewer_page(origin, index, file, more, ads),
                            content_type="text/html")

    async def image_response(self, request: web.Request, site: SiteSpec, name: str,
                             content_type: str = "image/jpeg", hosted: bool = False
                             ) -> web.Response:
        """A site's picture `name` ("<site>-<number>", "<site>-p" the planted one) as JPEG.
        The planted picture of a site whose planted file is another format, or is on the image
        host (`hosted`: this is the image host answering), is no JPEG of the site's."""
        number = name.split("-", 1)[1] if "-" in name else ""
        elsewhere = site.markup in PLANTED_FORMATS or (site.markup in VIEWER_MARKUPS
                                                        and not hosted)
        if number == "p" and site.planted is not None and not elsewhere:
            body = await off_loop(self.web.planted_image, site.planted)
            self.log_served(str(request.url))
        elif number.isdigit():
            body = await off_loop(self.web.unrelated_image, site.index, int(number))
        else:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type=content_type)

    async def site_response(self, request: web.Request, site: SiteSpec) -> web.StreamResponse:
        path = request.path
        if site.slow:
            await asyncio.sleep(site.slow)
        if path == "/.well-known/security.txt" and site.security_txt:
            return web.Response(text=(
                f"Contact: mailto:abuse@site{site.index}.example\n"
                f"Contact: https://site{site.index}.example/report\n"
                f"Preferred-Languages: {site.language}, en\n"
                "Expires: 2030-01-01T00:00:00.000Z\n"), content_type="text/plain")
        if site.markup in MODERN_MARKUPS and site.planted is not None:
            modern = await self.modern(request, site)
            if modern is not None:
                return modern
        if path.startswith(("/img/", "/gallery/img/", "/cdn/")):
            return await self.image_response(request, site,
                                             path.rsplit("/", 1)[1].removesuffix(".jpg"))
        if path.startswith("/r/"):
            raise web.HTTPFound(f"/img/{path[3:]}.jpg")
        if path == "/media":
            # A picture behind a script URL, labelled as a web page.
            return await self.image_response(request, site, request.query.get("id", ""),
                                             "text/html")
        if path.startswith("/video/") and site.planted and site.planted.markup == "video":
            self.log_served(str(request.url))
            return web.Response(body=await off_loop(self.web.planted_video, site.planted),
                                content_type="video/mp4")
        if path.startswith("/hostile/"):
            return await self.hostile(request, path.removeprefix("/hostile/"))
        if request.method != "GET":
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        if path in ("/", "/gallery", "/list", "/calendar") or path.startswith(
                ("/more/", "/gallery;")):
            return self.page(request, site)
        raise web.HTTPNotFound()

    async def modern(self, request: web.Request, site: SiteSpec) -> web.StreamResponse | None:
        """The answers of the ways today's sites deliver media (MODERN_MARKUPS); None where
        the site answers as any other."""
        planted, path, host = site.planted, request.path, request.host
        assert planted is not None
        markup = planted.markup
        if markup == "age-gate":
            return await self.age_gate(request, site)
        if markup == "js-challenge":
            return self.js_challenge(request, site)
        if (markup, path) in SCRIPTS:
            content_type, text = SCRIPTS[markup, path]
            return web.Response(text=text, content_type=content_type,
                                headers={"Cache-Control": "public, max-age=31536000"})
        if markup in PLANTED_FORMATS or markup in VIEWER_MARKUPS:
            return await self.planted_file(request, site)
        gallery = request.method == "GET" and (path in ("/", "/gallery")
                                               or path.startswith("/gallery;"))
        if markup in ("spa-gallery", "infinite-scroll", "nuxt", "nuxt3"):
            return self.app_page(request, site, gallery)
        if markup == "sitemap-only":
            if path == "/robots.txt":
                return web.Response(text=f"User-agent: *\nDisallow: /admin/\n\n"
                                         f"Sitemap: http://{host}/sitemap_index.xml\n")
            if path == "/sitemap_index.xml":
                return web.Response(content_type="application/xml", text=(
                    '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.'
                    'sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>'
                    f"http://{host}/sitemaps/posts-1.xml.gz</loc></sitemap></sitemapindex>"))
            if path == "/sitemaps/posts-1.xml.gz":
                page = f"http://{host}/p/{site.index}-p"
                return web.Response(content_type="application/gzip", body=gzip.compress((
                    '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.'
                    'org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/'
                    f'sitemap-image/1.1"><url><loc>{page}</loc><image:image><image:loc>'
                    f"http://{host}/img/{site.index}-p.jpg</image:loc></image:image></url>"
                    "</urlset>").encode()))
            if path == f"/p/{site.index}-p":
                return web.Response(content_type="text/html", text=(
                    f'<html><body><img src="/img/{site.index}-p.jpg" alt=""></body></html>'))
            return None
        if markup in ("hls", "hls-aes") and path.startswith(("/stream/", "/stream-aes/")):
            return await self.hls(request, site, encrypted=markup == "hls-aes")
        if markup == "dash" and path.startswith("/dash/"):
            return await self.dash(request, site)
        return None

    def js_challenge(self, request: web.Request, site: SiteSpec) -> web.Response | None:
        """A Cloudflare-style challenge in front of every page and file of the site (not
        robots.txt): 503 and a script that computes cf_clearance, until the cookie is right."""
        hostname = request.host.rsplit(":", 1)[0]
        if request.path == "/robots.txt" or apps.challenge_cookie_ok(
                site.index, request.cookies.get("cf_clearance"), hostname):
            return None
        ray = secrets.token_hex(8)
        return web.Response(
            status=503, text=apps.challenge_page(site.index, ray, request.host),
            content_type="text/html", charset="utf-8",
            headers={"Server": "cloudflare", "CF-RAY": f"{ray}-ICN", "cf-mitigated": "challenge",
                     "Cache-Control": "private, max-age=0, no-store, no-cache, "
                                      "must-revalidate, post-check=0, pre-check=0",
                     "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "same-origin"})

    async def planted_file(self, request: web.Request, site: SiteSpec
                           ) -> web.StreamResponse | None:
        """A planted picture that is not a JPEG on the site (PLANTED_FORMATS) or is on the
        image host (VIEWER_MARKUPS), the site's short links to the host, and a <picture>'s
        WebP fallback."""
        planted, path = site.planted, request.path
        assert planted is not None
        if path.startswith(f"/img/{site.index}-p.") and path != planted.path:
            raise web.HTTPNotFound()  # the planted picture exists only in its own format
        if planted.markup in VIEWER_MARKUPS:
            if path != f"/go/{viewer_id(site.index, 'p')}":
                return None
            target = f"http://{CDN_ADDRESS}:{self.web.port}/show/{site.index}/" + viewer_file(
                site.index, "p")
            return web.Response(text=apps.short_link_page(planted.markup, target),
                                content_type="text/html")
        if path == planted.path:
            fmt = PLANTED_FORMATS[planted.markup]
            body = await off_loop(self.web.planted_file, planted)
            self.log_served(str(request.url))
            headers = {"Content-Type": FORMAT_TYPES[fmt]}
            if fmt == "heic":
                headers["Content-Disposition"] = (
                    f'attachment; filename="{download_name(site.index)}"')
            return web.Response(body=body, headers=headers)
        stem = path.removeprefix(f"/img/{site.index}-").removesuffix(".webp")
        if path.startswith("/img/") and path.endswith(".webp") and stem.isdigit():
            body = await off_loop(webp_image, self.web.plan.seed, site.index, int(stem))
            return web.Response(body=body, content_type="image/webp")
        return None

    def app_page(self, request: web.Request, site: SiteSpec, gallery: bool
                 ) -> web.Response | None:
        """The pages and APIs of the script-driven sites (apps.py)."""
        planted, path = site.planted, request.path
        assert planted is not None
        title = TITLES[site.language]
        markup = planted.markup
        if markup == "spa-gallery":
            if gallery:
                return self.html(apps.spa_shell(site.language, title))
            if path == "/api/v2/gallery":
                page = request.query.get("page", "1")
                if not page.isdigit():
                    return web.json_response({"error": "page must be a number"}, status=400)
                return web.json_response(apps.spa_api(
                    site.index, int(page), self.web.plan.pages, self.web.plan.images_per_page,
                    planted.path))
            return None
        if markup == "infinite-scroll":
            pages = apps.feed_pages(site.index, planted.path)
            if gallery:
                return self.html(apps.feed_html(site.language, title, pages))
            if path == "/api/feed":
                number = apps.feed_page_of(request.query.get("cursor", ""), pages)
                if number is None:
                    return web.json_response({"error": "invalid cursor"}, status=400)
                return web.json_response(apps.feed_api(request.host, number, pages))
            return None
        if gallery:  # nuxt, nuxt3
            page = apps.nuxt3_html if markup == "nuxt3" else apps.nuxt_html
            return self.html(page(site.index, site.language, title, f"/r/{site.index}-p"))
        return None

    @staticmethod
    def html(text: str) -> web.Response:
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    async def age_gate(self, request: web.Request, site: SiteSpec
                       ) -> web.StreamResponse | None:
        """Pages behind a form that sets a cookie; pictures ungated, as on most such sites."""
        if request.path == "/age":
            if request.method == "POST":
                form = await request.post()
                if form.get("choice") != "enter" or form.get("confirm") != "1":
                    raise web.HTTPFound("https://www.example.org/")
                target = str(form.get("next") or "/")
                passed = web.HTTPFound(target if target.startswith("/") else "/")
                passed.set_cookie("age_ok", "1", path="/", httponly=True)
                raise passed
            target = escape(request.query.get("next", "/"))
            return web.Response(content_type="text/html", text=(
                f"<html lang=\"{site.language}\"><head><title>Age verification</title></head>"
                "<body><h2>This website contains adult content</h2><p>You must be 18 years or "
                f'older to enter.</p><form method="post" action="/age"><input type="hidden" '
                f'name="next" value="{target}"><label><input type="checkbox" name="confirm" '
                'value="1"> I confirm</label><button type="submit" name="choice" '
                'value="leave">Leave</button><button type="submit" name="choice" '
                'value="enter">I am 18 or older - Enter</button></form></body></html>'))
        page = request.path in ("/", "/gallery") or request.path.startswith("/gallery;")
        if page and request.cookies.get("age_ok") != "1":
            raise web.HTTPFound(f"/age?next={request.path_qs}")
        return None

    async def hls(self, request: web.Request, site: SiteSpec, encrypted: bool
                  ) -> web.Response:
        planted = site.planted
        assert planted is not None
        parts = request.path.strip("/").split("/")  # stream, site, [variant], file
        if len(parts) == 3 and parts[2] == "master.m3u8":
            return web.Response(text=streams.hls_master(f"/{parts[0]}/{parts[1]}"),
                                content_type="application/vnd.apple.mpegurl")
        if len(parts) == 3 and parts[2] == "key.bin" and encrypted:
            return web.Response(body=stream_key(site.index),
                                content_type="application/octet-stream")
        if len(parts) != 4 or parts[2] not in streams.VARIANT_NAMES:
            raise web.HTTPNotFound()
        package = await off_loop(self.web.planted_stream, planted, "hls", parts[2])
        if parts[3] == "index.m3u8":
            key = f"/{parts[0]}/{parts[1]}/key.bin" if encrypted else None
            return web.Response(text=streams.hls_media(len(package.segments), key),
                                content_type="application/vnd.apple.mpegurl")
        number = _segment_number(parts[3], "seg-", ".ts")
        if number is None or number >= len(package.segments):
            raise web.HTTPNotFound()
        body = package.segments[number]
        if encrypted:
            body = streams.encrypt_segment(body, stream_key(site.index), number)
        return web.Response(body=body, content_type="video/mp2t")

    async def dash(self, request: web.Request, site: SiteSpec) -> web.Response:
        planted = site.planted
        assert planted is not None
        parts = request.path.strip("/").split("/")  # dash, site, [variant], file
        if len(parts) == 3 and parts[2] == "manifest.mpd":
            count = streams.SEGMENTS
            return web.Response(text=streams.dash_mpd(f"/dash/{parts[1]}", count),
                                content_type="application/dash+xml")
        if len(parts) != 4 or parts[2] not in streams.VARIANT_NAMES:
            raise web.HTTPNotFound()
        package = await off_loop(self.web.planted_stream, planted, "dash", parts[2])
        if parts[3] == "init.mp4":
            return web.Response(body=package.init, content_type="video/mp4")
        number = _segment_number(parts[3], "chunk-", ".m4s")
        if number is None or not 1 <= number <= len(package.segments):
            raise web.HTTPNotFound()
        return web.Response(body=package.segments[number - 1], content_type="video/iso.segment")

    async def hostile(self, request: web.Request, name: str) -> web.StreamResponse:
        if name == "bomb.png":
            return web.Response(body=await off_loop(decompression_bomb),
                                content_type="image/png")
        if name == "truncated.jpg":
            body = await off_loop(self.web.unrelated_image, 0, 999)
            return web.Response(body=body[: len(body) // 2], content_type="image/jpeg")
        if name == "fake.jpg":
            return web.Response(text="<!doctype html><html><body>Not found</body></html>",
                                content_type="image/jpeg")
        if name == "error.jpg":
            raise web.HTTPInternalServerError()
        if name == "slow.jpg":
            response = web.StreamResponse(headers={"Content-Length": "10000000",
                                                   "Content-Type": "image/jpeg"})
            await response.prepare(request)
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await response.write(b"\xff\xd8\xff")
                for _ in range(3600):
                    await asyncio.sleep(1)
                    await response.write(b"\x00")
            return response
        if name == "reset.jpg":
            response = web.StreamResponse(headers={"Content-Length": "100000",
                                                   "Content-Type": "image/jpeg"})
            await response.prepare(request)
            await response.write(b"\xff\xd8\xff\xe0" + bytes(1000))
            if request.transport:
                request.transport.abort()
            return response
        if name == "gzip.jpg":
            return web.Response(body=await off_loop(gzip_bomb), headers={"Content-Encoding": "gzip",
                                                           "Content-Type": "image/jpeg"})
        if name == "huge.mp4":
            response = web.StreamResponse(headers={"Content-Length": str(4 << 30),
                                                   "Content-Type": "video/mp4"})
            await response.prepare(request)
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                for _ in range(4096):
                    await response.write(bytes(1 << 20))
            return response
        raise web.HTTPNotFound()

    def page(self, request: web.Request, site: SiteSpec) -> web.Response:
        plan = self.web.plan
        page = int(request.query.get("page", "1")) if request.query.get(
            "page", "1").isdigit() else 1
        if request.path != "/" and request.path != "/gallery" and not request.path.startswith(
                "/gallery;"):
            page = plan.pages + 1  # trap pages show no pictures
        head, body = [], []
        base = f"http://{site_address(site.index)}:{self.web.port}"
        last = page == plan.pages
        for slot in range(plan.images_per_page if page <= plan.pages else 0):
            number = (page - 1) * plan.images_per_page + slot
            name = f"{site.index}-{number}"
            h, b = media_markup("img", url=f"/img/{name}.jpg")
            head.append(h)
            body.append(b)
        if site.planted and last:
            h, b = self.planted_markup(site, base)
            head.append(h)
            body.append(b)
        if page < plan.pages:
            body.append(f'<a class="next" href="/gallery?page={page + 1}">next</a>')
        body.extend(self.trap_links(site, request))
        if page == 1:
            body.extend(self.hostile_links(site))
        title = TITLES[site.language]
        meta_charset = f'<meta charset="{site.charset}">' if site.index % 2 else (
            f'<meta http-equiv="Content-Type" content="text/html; charset={site.charset}">')
        html = (f'<!DOCTYPE html>\n<html lang="{site.language}"><head>{meta_charset}'
                f"<title>{escape(title)}</title>{''.join(head)}</head><body>"
                f"<h1>{escape(title)}</h1>{''.join(body)}</body></html>")
        headers = {"Content-Type": "text/html"
                   + (f"; charset={site.charset}" if site.index % 3 == 0 else "")}
        if site.index % 4 == 3:
            headers["Content-Language"] = site.language
        return web.Response(body=html.encode(site.charset, "xmlcharrefreplace"),
                            headers=headers)

    def planted_markup(self, site: SiteSpec, base: str) -> tuple[str, str]:
        planted = site.planted
        assert planted is not None
        url = (planted.path if planted.markup == "video" or planted.markup in PLANTED_FORMATS
               else f"/img/{site.index}-p.jpg")
        inline = ""
        if planted.markup == "data-uri":
            encoded = base64.b64encode(self.web.planted_image(planted)).decode()
            inline = f"data:image/jpeg;base64,{encoded}"
        return media_markup(
            planted.markup, url=url, absolute=base + url, extra=f"/img/{site.index}-777.jpg",
            name=f"{site.index}-p", host=f"{site_address(site.index)}:{self.web.port}",
            cdn=f"{CDN_ADDRESS}:{self.web.port}", site=str(site.index), data_uri=inline,
            extra_webp=f"/img/{site.index}-777.webp", download=download_name(site.index),
            link=f"/go/{viewer_id(site.index, 'p')}",
            viewer=f"http://{CDN_ADDRESS}:{self.web.port}/show/{site.index}/"
                   + viewer_file(site.index, "p"),
            thumb=f"http://{CDN_ADDRESS}:{self.web.port}/thumbs/{site.index}/"
                  + viewer_file(site.index, "p"))

    def trap_links(self, site: SiteSpec, request: web.Request) -> Iterator[str]:
        token = secrets.token_urlsafe(8)
        for trap in site.traps:
            if trap == "calendar":
                month = request.query.get("month", "2026-11")
                year, number = (int(x) for x in month.split("-"))
                year, number = (year + 1, 1) if number == 12 else (year, number + 1)
                yield f'<a href="/calendar?month={year}-{number:02d}">next month</a>'
            elif trap == "repeating-path":
                yield '<a href="more/">more</a>'
            elif trap == "endless-parameters":
                page = int(request.query.get("page", "1")) if request.path == "/list" else 1
                yield f'<a href="/list?page={page + 1}&amp;filter={token}">more</a>'
            elif trap == "session-ids":
                yield f'<a href="/?sid={token}">home</a>'
                yield f'<a href="/gallery;jsessionid={token}?page=2">page 2</a>'

    def hostile_links(self, site: SiteSpec) -> Iterator[str]:
        files = {"bomb": "bomb.png", "truncated": "truncated.jpg", "html-as-image": "fake.jpg",
                 "slow": "slow.jpg", "error-500": "error.jpg", "reset": "reset.jpg",
                 "gzip-bomb": "gzip.jpg", "huge": "huge.mp4"}
        for kind in site.hostile:
            yield f'<img src="/hostile/{files[kind]}" alt="">'


def stream_key(site: int) -> bytes:
    """The AES-128 key of a site's encrypted HLS stream (fetchable, as players need it)."""
    return hashlib.sha256(f"haechi-test-key-{site}".encode()).digest()[:16]


def _segment_number(name: str, prefix: str, suffix: str) -> int | None:
    digits = name.removeprefix(prefix).removesuffix(suffix)
    if not (name.startswith(prefix) and name.endswith(suffix) and digits.isdigit()):
        return None
    return int(digits)


def serve(plan: WebPlan, port: int, served_log: Path | None = None) -> None:
    """Run the test web in this process until it is killed."""
    server = TestWebServer(TestWeb(plan, port), served_log)
    web.run_app(server.app(), host="0.0.0.0", port=port, print=None, access_log=None,
                backlog=1024, handle_signals=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


@dataclass
class RunningWeb:
    web: TestWeb
    process: subprocess.Popen
    served_log: Path | None

    @property
    def port(self) -> int:
        return self.web.port

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_testweb(plan: WebPlan, served_log: Path | None = None,
                  timeout: float = 60.0) -> RunningWeb:
    """Start the test web in a child process and wait until it answers."""
    port = free_port()
    args = [sys.executable, "-m", "testkit.testweb", "--port", str(port)]
    for key, value in asdict(plan).items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args += [] if value else [f"--no-{key.replace('_', '-')}"]
        else:
            args += [flag, str(value)]
    if served_log:
        args += ["--served-log", str(served_log)]
    process = subprocess.Popen(args)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the test web exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(
                (site_address(0), port), timeout=1):
            return RunningWeb(TestWeb(plan, port), process, served_log)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the test web did not start listening in time")
