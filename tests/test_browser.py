"""Browser rendering (crawler/browser.py): when a page is rendered, and that the browser obeys
the outbound policy like every other fetch.

The crawl tests run `haechi crawl` in Debian's Chromium against two small servers: the site,
on an allowed loopback address, and a "private" server on a loopback address the policy does
not allow, which stands for the metadata service or the database inside the VPC. A page's
scripts try every way to reach it (fetch, a redirect, an <img>, a WebSocket, a navigation);
the private server must see no request at all.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from PIL import Image
from scrapy.http import HtmlResponse

from crawler.browser import CHALLENGE, SCRIPT_BUILT, chromium_path, is_challenge, render_reason
from testkit.testweb.server import free_port
from tests.test_crawl import CRAWL_ENV, run_haechi

needs_chromium = pytest.mark.skipif(chromium_path(None) is None,
                                    reason="Debian's chromium is not installed")


def _page(body: str, status: int = 200, url: str = "http://site.test/") -> HtmlResponse:
    return HtmlResponse(url=url, status=status, body=body.encode(), encoding="utf-8")


CHALLENGE_PAGE = ("<!doctype html><html><head><title>Just a moment...</title></head><body>"
                  "<script>var a=6,b=7;document.cookie='cf_clearance='+(a*b)+'; path=/';"
                  "setTimeout(function(){location.reload()},500);</script></body></html>")


def test_a_challenge_page_is_recognised_by_status_script_and_words() -> None:
    assert is_challenge(_page(CHALLENGE_PAGE, 503))
    assert is_challenge(_page(CHALLENGE_PAGE, 403))
    # The same page served 200 is a page; a 503 without a script is an outage.
    assert not is_challenge(_page(CHALLENGE_PAGE, 200))
    assert not is_challenge(_page("<html><body>Service unavailable</body></html>", 503))
    # A large error page with scripts is a site's own error page, not a challenge.
    assert not is_challenge(_page(CHALLENGE_PAGE + "x" * 300_000, 503))


@pytest.mark.parametrize(("html", "media", "mode", "expected"), [
    # A script-built gallery: nothing to see without the script.
    ('<div id="app"></div><script src="/app.js"></script>', [], "auto", SCRIPT_BUILT),
    # ... also when its server-rendered menu has links, or it shows one picture (a logo).
    ('<nav><a href="/a">a</a><a href="/b">b</a><a href="/c">c</a></nav><div id="app"></div>'
     '<script src="/app.js"></script>', ["logo"], "auto", SCRIPT_BUILT),
    # A static gallery with scripts (analytics) is read without a browser, few links or not.
    ('<script src="/ga.js"></script>', ["a", "b", "c"], "auto", None),
    # Thin but scriptless: a browser would see the same.
    ("<p>nothing</p>", [], "auto", None),
    ("<p>static</p>", ["a", "b"], "always", "always"),
    ('<div id="app"></div><script src="/app.js"></script>', [], "never", None),
])
def test_render_reason_follows_the_mode_and_what_the_html_shows(
        html: str, media: list[str], mode: str, expected: str | None) -> None:
    assert render_reason(_page(html), media, mode) == expected


def test_a_challenge_is_rendered_in_auto_and_always_but_not_never() -> None:
    page = _page(CHALLENGE_PAGE, 503)
    assert render_reason(page, [], "auto") == CHALLENGE
    assert render_reason(page, [], "always") == CHALLENGE
    assert render_reason(page, [], "never") is None


# --- the browser under the outbound policy ------------------------------------------------

def _jpeg(seed: int) -> bytes:
    pixels = (np.random.default_rng(seed).random((30, 40, 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).resize((320, 240)).save(out, "JPEG")
    return out.getvalue()


class _Server:
    """An aiohttp app on `host` in a thread of its own, logging every request it gets."""

    def __init__(self, host: str, handler: web.RequestHandler) -> None:
        self.host, self.port, self.seen = host, free_port(), []
        self.loop = asyncio.new_event_loop()
        self.handler = handler
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def logged(request: web.Request) -> web.StreamResponse:
            self.seen.append(request.path_qs)
            return await self.handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", logged)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, self.host, self.port).start())
        started.set()
        self.loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def servers() -> Iterator[tuple[_Server, _Server]]:
    async def private(request: web.Request) -> web.Response:
        return web.Response(text='{"secret": "instance credentials"}',
                            content_type="application/json")

    inside = _Server("127.0.0.3", private)
    target = inside.url

    async def site(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/":
            return web.Response(content_type="text/html", text=(
                '<!doctype html><html><head><script src="/app.js"></script></head>'
                '<body><div id="app"></div></body></html>'))
        if path == "/app.js":
            return web.Response(content_type="application/javascript", text=(
                f"fetch('{target}/latest/meta-data').catch(()=>{{}});"
                "fetch('/api/hop').catch(()=>{});"
                f"try {{ new WebSocket('ws://127.0.0.3:{inside.port}/ws'); }} catch (e) {{}}"
                "fetch('/api/gallery').then(r => r.json()).then(j => { for (const s of j) {"
                " const i = document.createElement('img'); i.src = s;"
                " document.getElementById('app').appendChild(i); } });"))
        if path == "/api/hop":
            raise web.HTTPFound(f"{target}/computeMetadata/v1/")
        if path == "/api/gallery":
            return web.json_response(["/img/1.jpg", f"{target}/img/2.jpg"])
        if path.startswith("/img/"):
            return web.Response(body=_jpeg(int(path[5])), content_type="image/jpeg")
        raise web.HTTPNotFound()

    outside = _Server("127.0.0.1", site)
    try:
        yield outside, inside
    finally:
        outside.stop()
        inside.stop()


@needs_chromium
def test_the_browser_reaches_no_address_the_policy_refuses(
        servers: tuple[_Server, _Server], tmp_path: pytest.TempPathFactory) -> None:
    outside, inside = servers
    env = {**os.environ, "HAECHI_HOME": str(tmp_path), **CRAWL_ENV,
           "HAECHI_FETCH_ALLOW": "127.0.0.1/32", "HAECHI_SCRAPY_DOWNLOAD_TIMEOUT": "30"}
    env.pop("DATABASE_URL", None)
    env.pop("HAECHI_STORE", None)
    summary = json.loads(run_haechi(env, "crawl", "--json", outside.url + "/", timeout=180))
    assert inside.seen == []
    line = summary["per_site"]["127.0.0.1"]
    assert line["rendered"] == {"rendered": True, "reason": SCRIPT_BUILT, "pages": 1}
    # The picture the script inserted was found and fetched; the private one was refused.
    assert "/img/1.jpg" in outside.seen
    assert summary["files"] == 1
    assert summary["errors"].get("blocked-address", 0) >= 2


@needs_chromium
def test_a_site_profile_turns_rendering_off_and_a_bad_one_stops_the_run(
        servers: tuple[_Server, _Server], tmp_path: pytest.TempPathFactory) -> None:
    import subprocess

    outside, _ = servers
    env = {**os.environ, "HAECHI_HOME": str(tmp_path), **CRAWL_ENV,
           "HAECHI_FETCH_ALLOW": "127.0.0.1/32"}
    env.pop("DATABASE_URL", None)
    env.pop("HAECHI_STORE", None)
    (tmp_path / "sites.toml").write_text('[sites."127.0.0.1"]\nrender = "never"\n')
    summary = json.loads(run_haechi(env, "crawl", "--json", outside.url + "/", timeout=180))
    assert summary["per_site"]["127.0.0.1"]["rendered"]["rendered"] is False
    assert summary["files"] == 0 and "/app.js" not in outside.seen
    (tmp_path / "sites.toml").write_text('[sites."127.0.0.1"]\nrender = "maybe"\n')
    failed = subprocess.run([str(Path(sys.executable).with_name("haechi")), "crawl",
                             outside.url + "/"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert failed.returncode == 3, failed.stderr
    assert "127.0.0.1" in failed.stderr and "render must be one of" in failed.stderr


def test_the_plain_summary_says_what_was_rendered_and_what_needed_a_missing_browser() -> None:
    from haechi.commands.crawl import describe

    site = {"gates": {"passed": 0, "failed": 1}}
    text = describe({"sites": 2, "seconds": 1.0, "pages": 3, "files": 4, "files_hashed": 4,
                     "matches": 0, "sites_failed": 0, "errors": {}, "workers_restarted": 0,
                     "traps": {}, "per_site": {"a": site, "b": {"gates": {"failed": 0}}},
                     "rendered": {"script-built": 2, "challenge": 1,
                                  "no-browser/script-built": 3}})
    assert "Rendered 3 page(s) in a browser (script-built 2, challenge 1)." in text
    assert "3 page(s) needed a browser, but none was found" in text
    assert "1 gate(s) or challenge(s) could not be passed." in text
