"""The held-out web's HTTP server: aiohttp, one listener per loopback address.

Why per-address listeners: real sites are different hosts, and a crawler decides what is
"the site" (and what a CDN or image host is) by host, so each site gets its own address in
127.10.0.0/16 and each CDN or image host one in 127.11.0.0/16, all on one port.

What the server adds to the static routes, because real sites do it:
- hotlink protection: on about half of the sites, media answer 403 unless the Referer names
  one of the site's hosts;
- gates: an age gate (302 to a confirm page; a form POST or a link sets a cookie) and a
  Cloudflare-style challenge (503 and a script that computes the clearance cookie);
- delays from the seed (most responses within 0.2 s, a few a second later) and 404s for
  everything not routed (dead banners, deleted posts, Members and Tags links).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
from http.cookies import SimpleCookie
from urllib.parse import quote, urlsplit

from aiohttp import web

from .sites import Res, Site, Web, norm_key

NOT_FOUND = (b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>"
             b"<h1>Not Found</h1><p>The requested URL was not found on this server.</p>"
             b"</body></html>")


class Server:
    """Serves a Web: look-up by (host, normalised path and query), then the site's rules."""

    def __init__(self, hw: Web) -> None:
        self.web = hw
        self.by_host: dict[str, Site] = {}
        for site in hw.sites:
            for h in (site.host, *site.extra_hosts):
                self.by_host[h] = site
        self.requests = 0

    def delay(self, host: str, key: str) -> float:
        """A deterministic delay for this resource."""
        d = hashlib.sha256(f"{self.web.seed}|{host}|{key}".encode()).digest()
        extra = 1.0 if d[1] < 6 else 0.0
        return d[0] / 255 * 0.2 + extra

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request as the site at the request's host would."""
        self.requests += 1
        host = (request.host or "").rsplit(":", 1)[0].strip("[]")
        if host not in self.by_host:
            sock = request.transport.get_extra_info("sockname") if request.transport else None
            host = sock[0] if sock else host
        key = norm_key(request.path, request.query_string)
        await asyncio.sleep(self.delay(host, key))
        site = self.by_host.get(host)
        # a backend ignores parameters it does not know: fall back to the bare path
        entry = self.web.routes.get((host, key)) or self.web.routes.get((host, request.path))
        if site is None:
            return web.Response(status=404, body=NOT_FOUND, content_type="text/html")
        res = entry[1] if entry else None
        if res is not None and res.handler in ("age-confirm", "age-accept"):
            return await self.age(request, site, res)
        gated = res is None or res.page
        if site.gate and host == site.host and gated and not self.cleared(request, site):
            if site.gate == "challenge":
                page = self.web.routes[(site.host, "/__challenge")][1]
                return self.respond(page)
            target = "/age-verification?return=" + quote(request.path_qs, safe="")
            return web.Response(status=302, headers={"Location": target})
        if res is None or res.handler == "challenge-page":
            return web.Response(status=404, body=NOT_FOUND, content_type="text/html")
        if res.media and site.hotlink and not self.referer_ok(request, site):
            return web.Response(status=403, text="403 Forbidden: hotlinking is not allowed",
                                content_type="text/plain")
        return self.respond(res)

    @staticmethod
    def respond(res: Res) -> web.Response:
        """The stored resource as a response."""
        headers = {"Content-Type": res.ctype, **res.headers}
        return web.Response(status=res.status, body=res.body, headers=headers)

    @staticmethod
    def cleared(request: web.Request, site: Site) -> bool:
        """Whether the request carries the gate's cookie with its value."""
        if site.cookie is None:
            return True
        name, value = site.cookie
        return request.cookies.get(name) == value

    @staticmethod
    def referer_ok(request: web.Request, site: Site) -> bool:
        """Hotlink protection: the Referer must name one of the site's own hosts."""
        ref = request.headers.get("Referer", "")
        return bool(ref) and urlsplit(ref).hostname in (site.host, *site.extra_hosts)

    async def age(self, request: web.Request, site: Site, res: Res) -> web.Response:
        """The age gate: show the confirm page, or take the answer and set the cookie."""
        ret = request.query.get("return", "/")
        if request.method == "POST":
            form = await request.post()
            ret = str(form.get("return", ret))
            if form.get("confirm") != "yes":
                return web.Response(status=302, headers={"Location": "/age-verification"})
        if request.method == "POST" or res.handler == "age-accept":
            if not ret.startswith("/") or ret.startswith("//"):
                ret = "/"
            name, value = site.cookie or ("age_verified", "1")
            cookie = SimpleCookie()
            cookie[name] = value
            cookie[name]["path"] = "/"
            cookie[name]["max-age"] = "2592000"
            return web.Response(status=302, headers={
                "Location": ret, "Set-Cookie": cookie[name].OutputString()})
        doc = res.body.decode().replace("__RETURN_HTML__", html.escape(ret)).replace(
            "__RETURN_URL__", quote(ret, safe=""))
        return web.Response(status=200, body=doc.encode(),
                            headers={"Content-Type": res.ctype})


async def serve(hw: Web, ready: asyncio.Event | None = None) -> None:
    """Bind every host of the web on its port and serve until cancelled."""
    server = Server(hw)
    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for h in hw.hosts():
        await web.TCPSite(runner, h, hw.port, backlog=256).start()
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
