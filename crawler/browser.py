"""Browser rendering: the pages whose pictures only a script puts on screen, in Chromium.

Most pages show their media in the HTML they are served with, and the static readers
(crawler/discovery.py, crawler/appdata.py, crawler/apis.py) find them at a fraction of a
browser's cost. A browser is used only where the static HTML shows too little and the page
loads scripts (a client-rendered gallery), or where the answer is a JavaScript challenge
(a script computes a cookie and reloads): `render_reason` decides, per page, under the site's
render mode (`auto`, `always`, `never`).

The browser is scrapy-playwright's download handler on Debian's Chromium, started on the first
page that needs it, so a crawl that renders nothing never starts a browser. What a rendered
page shows is read from the DOM once the network has settled and the page was scrolled a
bounded number of times, and from the browser's network log: every picture, video and
manifest it asked for, and the media named in the JSON its scripts fetched.

Every byte the browser reads comes through `BrowserNetwork`: the page's route handler fetches
each request itself, under the same outbound policy as every other fetch, with the address it
checked (no second DNS lookup for a rebinding name server to answer), one redirect hop at a
time, within a request and byte budget. Pictures, videos and fonts are not fetched by the
browser at all (their URLs are noted and the crawler fetches them as it fetches any media).
Chromium is started with a proxy that does not exist, so a request that escaped the route (a
WebSocket, a failed handler) fails to connect instead of reaching the network unchecked; it
downloads nothing and runs no service worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from scrapy.http import HtmlResponse, Response
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

from engines.fetch import BLOCKED_ADDRESS, BlockedAddress, OutboundPolicy, guarded_client

if TYPE_CHECKING:
    from playwright.async_api import Page, Route
    from playwright.async_api import Request as BrowserRequest
    from scrapy import Request
    from scrapy.crawler import Crawler

AUTO, ALWAYS, NEVER = "auto", "always", "never"
RENDER_MODES = (AUTO, ALWAYS, NEVER)
# Why a page was rendered, as the crawl summary names it.
CHALLENGE, SCRIPT_BUILT = "challenge", "script-built"

# A page showing fewer media than this while loading scripts is built by them. Links do not
# count: a one-page site that shows its pictures needs no browser however few its links (the
# 2,000-site benchmark rendered 12 such pages, 1.4 GB and +39% time, when they did), and an
# app's server-rendered menu does not make its gallery visible.
FEW_MEDIA = 2
# Statuses a challenge page answers with (Cloudflare: 403 and 503; others 429).
CHALLENGE_STATUSES = (403, 429, 503)
# A challenge page is small: its body is a script and a sentence.
CHALLENGE_MAXSIZE = 256 * 1024
_CHALLENGE_WORDS = re.compile(
    rb"just a moment|checking (?:your|if the site connection is secure)|enable javascript|"
    rb"javascript (?:is )?(?:required|disabled)|cf[-_]chl|challenge-platform|ddos[- ]guard|"
    rb"browser (?:check|verification)|verify(?:ing)? you are (?:a )?human|document\.cookie",
    re.IGNORECASE)

# What one rendered page may cost: requests the browser makes, bytes it is handed, and time.
MAX_BROWSER_REQUESTS = 200
MAX_BROWSER_BYTES = 32 * 1024 * 1024
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# Scrolls of an infinite page (each waits for the network to settle), and the wait for quiet.
MAX_SCROLLS = 6
SETTLE_MS = 600
# Resource types whose URL is noted and whose bytes the browser is never given.
_NOTED_TYPES = frozenset({"image", "media"})
_ABORTED_TYPES = frozenset({"image", "media", "font", "websocket", "eventsource", "manifest"})
_MANIFEST_URL = re.compile(r"\.(?:m3u8|mpd)(?:$|[?#])", re.IGNORECASE)
_HOP_HEADERS = frozenset({"host", "connection", "content-length", "accept-encoding",
                          "transfer-encoding", "keep-alive", "proxy-connection", "upgrade"})
_DROPPED_RESPONSE_HEADERS = frozenset({"content-encoding", "content-length",
                                       "transfer-encoding", "connection"})
# Chromium's switches: no network of its own (every request is fulfilled by the route; one
# that escaped it meets a proxy that is not there), nothing kept, nothing in the background.
CHROMIUM_ARGS = (
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--disable-background-networking", "--dns-prefetch-disable", "--no-first-run",
    "--disable-extensions", "--disable-sync", "--disable-component-update",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--mute-audio", "--disable-dev-shm-usage",
)


def is_challenge(response: Response) -> bool:
    """Whether `response` is a JavaScript challenge page: an error status, a small HTML body
    with a script, and the words such pages say (or a script that sets a cookie)."""
    body = response.body
    if response.status not in CHALLENGE_STATUSES or len(body) > CHALLENGE_MAXSIZE:
        return False
    head = body[:CHALLENGE_MAXSIZE].lower()
    return b"<script" in head and _CHALLENGE_WORDS.search(head) is not None


def render_reason(response: HtmlResponse, media: list[str], mode: str) -> str | None:
    """Why this page needs a browser under `mode`, or None when its static HTML will do."""
    if mode == NEVER:
        return None
    if is_challenge(response):
        return CHALLENGE
    if mode == ALWAYS:
        return ALWAYS
    if len(media) < FEW_MEDIA and response.xpath(
            "//script[@src or normalize-space()]"):
        return SCRIPT_BUILT
    return None


def chromium_path(setting: str | None) -> str | None:
    """The Chromium to run: the HAECHI_CHROMIUM setting (a path or a command name), else
    Debian's `chromium`; None when there is none (rendering is then off, and counted)."""
    return shutil.which(setting or "chromium") or shutil.which("chromium-browser")


@dataclass
class BrowserNetwork:
    """The route handler of one rendered page, and what it saw on the way.

    `media`: pictures, videos and manifests the page asked for; `json`: (URL, body) of each
    JSON answer its scripts fetched; `refused`: requests not fetched, as (URL, error kind,
    detail): refused by the outbound policy (BLOCKED_ADDRESS), over a budget, or failed.
    """

    policy: OutboundPolicy
    user_agent: str
    timeout: float
    media: list[str] = field(default_factory=list)
    json: list[tuple[str, bytes]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    requests: int = 0
    bytes: int = 0
    _client: httpx.Client | None = None

    async def handle(self, route: Route, request: BrowserRequest) -> None:
        """Fulfil `request` through the guarded client, or abort it."""
        url = request.url
        if request.resource_type in _NOTED_TYPES or _MANIFEST_URL.search(url):
            self.media.append(url)
        if request.resource_type in _ABORTED_TYPES or _MANIFEST_URL.search(url):
            await route.abort("blockedbyclient")
            return
        if self.requests >= MAX_BROWSER_REQUESTS or self.bytes >= MAX_BROWSER_BYTES:
            self.refused.append((url, "render-budget", "the page's request budget is spent"))
            await route.abort("blockedbyclient")
            return
        self.requests += 1
        headers = {k: v for k, v in (await request.all_headers()).items()
                   if k.lower() not in _HOP_HEADERS and not k.startswith(":")}
        headers["user-agent"] = self.user_agent
        try:
            status, answer_headers, body = await asyncio.to_thread(
                self._fetch, request.method, url, headers, request.post_data_buffer)
        except (BlockedAddress, httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            blocked = isinstance(exc, BlockedAddress)
            self.refused.append((url, BLOCKED_ADDRESS if blocked else "browser-fetch-failed",
                                 str(exc)[:200]))
            await route.abort("blockedbyclient" if blocked else "failed")
            return
        self.bytes += len(body)
        content_type = answer_headers.get("content-type", "")
        if "json" in content_type or (request.resource_type in ("xhr", "fetch")
                                      and body[:1].strip() in (b"{", b"[")):
            self.json.append((url, body))
        await route.fulfill(status=status, headers=answer_headers, body=body)

    def _fetch(self, method: str, url: str, headers: dict[str, str], data: bytes | None
               ) -> tuple[int, dict[str, str], bytes]:
        """One hop (the browser follows redirects, each through this route again)."""
        self.policy.check_url(url)
        if self._client is None:
            self._client = guarded_client(self.policy, self.timeout)
        request = self._client.build_request(method, url, headers=headers, content=data)
        response = self._client.send(request, stream=True)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_RESPONSE_BYTES:
                    raise ValueError(f"larger than {MAX_RESPONSE_BYTES} bytes")
        finally:
            response.close()
        answer: dict[str, str] = {}
        for key, value in response.headers.multi_items():
            if key.lower() in _DROPPED_RESPONSE_HEADERS:
                continue
            answer[key] = f"{answer[key]}\n{value}" if key in answer else value
        return response.status_code, answer, bytes(body)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


async def init_page(page: Page, request: Request) -> None:
    """scrapy-playwright's page init callback: every request of the page goes through its
    BrowserNetwork, made here from the options in the request's meta (plain values, so a
    cluster's queue can carry the request) and kept there for the spider's callback."""
    options = request.meta["haechi_browser"]
    network = BrowserNetwork(OutboundPolicy.from_setting(options["allow"]),
                             options["user_agent"], options["timeout"])
    request.meta["haechi_network"] = network
    await page.route("**", network.handle)


async def settle(page: Page, network: BrowserNetwork, deadline: float,
                 scrolls: int = MAX_SCROLLS) -> int:
    """Let the page finish what its scripts do: wait for quiet, then scroll to the bottom and
    wait again, until nothing new is asked for, the scrolls are spent or time is up. A
    challenge's reload is waited for like any navigation. Returns the scrolls made."""
    made = 0
    for step in range(scrolls + 1):
        before = network.requests + len(network.media)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        with contextlib.suppress(Exception):
            await page.wait_for_timeout(min(SETTLE_MS, remaining * 1000))
            await page.wait_for_load_state("networkidle", timeout=max(
                1.0, (deadline - time.monotonic()) * 1000))
        if step and network.requests + len(network.media) == before:
            break
        if step == scrolls or time.monotonic() >= deadline:
            break
        with contextlib.suppress(Exception):
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            made += 1
    return made


class BrowserDownloadHandler(ScrapyPlaywrightDownloadHandler):
    """scrapy-playwright's handler, but Playwright and Chromium start with the first request
    that asks for a browser, not with the crawl: a crawl of static sites pays nothing.
    Requests without `playwright` in their meta are downloaded as by Scrapy's own handler."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        launch = self.config.launch_options
        launch.setdefault("executable_path", chromium_path(crawler.settings.get(
            "HAECHI_CHROMIUM")))
        launch["args"] = [*CHROMIUM_ARGS, *launch.get("args", ())]
        launch.setdefault("headless", True)
        # Browser pages per node: each rendered page has a context of its own.
        pages = crawler.settings.getint("HAECHI_BROWSER_PAGES") or 4
        self.config.max_contexts = pages
        self.context_semaphore = asyncio.Semaphore(pages)
        self._started = False
        self._start_lock = asyncio.Lock()

    async def _maybe_launch_in_thread(self) -> None:
        """Not at engine start (see the class docstring)."""

    def _engine_started(self) -> Any:
        """Not at engine start (see the class docstring)."""
        return None

    async def _download_request(self, request: Request, spider: Any = None) -> Response:
        async with self._start_lock:
            if not self._started:
                await self._launch()
                self._started = True
        return await super()._download_request(request, spider)
