"""The generic site spider: every page of a site, every image and video on those pages.

Each start URL is a site. Pages are followed only on that site (and its subdomains); media are
fetched wherever they are hosted, because a page that shows a picture from a CDN still shows
it. Each site has its own budgets (pages, trap shapes), so one huge or hostile site cannot
starve the others; what is fetched is judged by its bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from scrapy import Request, Spider
from scrapy.http import HtmlResponse, Response, TextResponse
from twisted.python.failure import Failure

from crawler.apis import MAX_API_BYTES, ApiError, api_urls, is_json, read_api
from crawler.browser import (
    AUTO,
    CHALLENGE,
    CHALLENGE_STATUSES,
    BrowserNetwork,
    chromium_path,
    is_challenge,
    render_reason,
    settle,
)
from crawler.discovery import page_language, page_links
from crawler.failures import failure_kind
from crawler.gates import is_age_gate, pass_request
from crawler.items import FetchedMedia, SiteFacts
from crawler.profiles import DEFAULT as DEFAULT_PROFILE
from crawler.profiles import Profile, load_profiles
from crawler.security_txt import parse_security_txt
from crawler.sitemaps import SitemapError, read_sitemap, robots_sitemaps
from crawler.streaming import (
    HLS,
    ManifestError,
    Segment,
    choose_variant,
    dash_segments,
    dash_variants,
    decrypt_segment,
    hls_segments,
    hls_variants,
    manifest_kind,
    sample,
)
from crawler.urls import TrapGuard, canonical_url, on_site, site_of
from crawler.viewers import main_picture, redirect_target, viewer_links
from engines.fetch import BLOCKED_ADDRESS
from engines.media import describe_non_media, looks_like_html, sniff_media

# Media are fetched before further pages, so a match is found seconds after its page is read.
MEDIA_PRIORITY = 10
SECURITY_TXT_PRIORITY = 0
DEFAULT_MAX_PAGES = 1000
# A web page larger than this is not a gallery page but an attack on the parser.
PAGE_MAXSIZE = 16 * 1024 * 1024
# An inline (data:) picture larger than this, decoded, is not a picture but an attack.
DATA_URI_MAXSIZE = 16 * 1024 * 1024
# A start page that shows fewer pictures and on-site links than these is thin: its site's
# robots.txt is read for sitemaps (most sites are not, which keeps a broad crawl's cost flat).
THIN_PAGE_MEDIA, THIN_PAGE_LINKS = 2, 3
# Sitemaps read per site (an index and what it names).
MAX_SITEMAPS = 20
# Manifests, keys and init segments are small; a larger one is refused while it streams in.
MANIFEST_MAXSIZE = 4 * 1024 * 1024
# Answers of a site's JSON APIs read per visit (each page of a cursor is one), and viewer
# pages on other hosts followed per visit (one hop each, never crawled further).
MAX_API_PAGES = 50
MAX_VIEWERS = 100
# Redirects from one viewer page to the next (a short link, then the viewer).
MAX_VIEWER_HOPS = 2


@dataclass
class SiteState:
    """What the spider knows of one site during a run."""

    site: str
    start_url: str
    pages: int = 0
    pages_ok: int = 0
    failed: bool = False
    guard: TrapGuard = field(default_factory=TrapGuard)
    language_seen: bool = False
    max_pages: int = DEFAULT_MAX_PAGES
    # Which visit of the site this is (cluster mode: the schedule's claim time); requests carry
    # it, so the cluster's duplicate filter lets the next visit fetch the same URLs again.
    visit: str = ""
    gate_tried: bool = False
    robots_read: bool = False
    sitemaps: int = 0
    render: str = "auto"
    renders: int = 0
    # Why the site's pages needed a browser (the first reason seen), None if none did.
    rendered: str | None = None
    manifests: int = 0
    segments: int = 0
    gates_passed: int = 0
    gates_failed: int = 0
    apis: int = 0
    viewers: int = 0

    def report(self) -> dict[str, Any]:
        """The site's line of the crawl summary (`haechi crawl --json`, per_site)."""
        return {
            "pages": self.pages_ok, "failed": self.failed,
            "rendered": {"rendered": self.rendered is not None, "reason": self.rendered,
                         "pages": self.renders},
            "videos": {"manifests": self.manifests, "segments_sampled": self.segments},
            "gates": {"passed": self.gates_passed, "failed": self.gates_failed},
            "sitemaps": self.sitemaps,
        }

    def meta(self, **extra: Any) -> dict[str, Any]:
        """The meta of a request made for this site: its cookie jar is the visit's own (an age
        gate's cookie holds for the visit and for no other site)."""
        return {"site": self.site, "visit": self.visit, "max_pages": self.max_pages,
                "cookiejar": f"{self.site} {self.visit}", **extra}


class SiteSpider(Spider):
    """Crawls the sites given as start URLs; see the module docstring."""

    name = "sites"

    def __init__(self, urls: list[str] | str = (), max_pages: int | str = DEFAULT_MAX_PAGES,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(urls, str):
            urls = [u for u in urls.split(",") if u]
        self.start_urls = [canonical_url(u) for u in urls]
        self.max_pages = int(max_pages)
        self.sites: dict[str, SiteState] = {}
        self.closing: set[asyncio.Future[None]] = set()

    @functools.cached_property
    def profiles(self) -> dict[str, Profile]:
        """The site profiles (crawler/profiles.py) of the file HAECHI_SITE_PROFILES names
        (crawler/run.py checked it before the crawl started)."""
        path = self.crawler.settings.get("HAECHI_SITE_PROFILES")
        return load_profiles(Path(path)) if path else {}

    def profile(self, site: str) -> Profile:
        return self.profiles.get(site, DEFAULT_PROFILE)

    @functools.cached_property
    def browser(self) -> dict[str, Any]:
        """The crawl's render settings (crawler/settings.py, HAECHI_RENDER*; crawler/run.py
        checked the mode before the crawl started)."""
        settings = self.crawler.settings
        return {"mode": settings.get("HAECHI_RENDER") or AUTO,
                "chromium": chromium_path(settings.get("HAECHI_CHROMIUM")),
                "pages": settings.getint("HAECHI_RENDER_PAGES"),
                "seconds": settings.getfloat("HAECHI_RENDER_SECONDS"),
                "allow": settings.get("HAECHI_FETCH_ALLOW") or "",
                "user_agent": settings.get("USER_AGENT"),
                "timeout": settings.getfloat("DOWNLOAD_TIMEOUT")}

    def count(self, key: str, amount: int = 1) -> None:
        self.crawler.stats.inc_value(f"haechi/{key}", amount)

    def error(self, kind: str, url: str, detail: str) -> None:
        self.count(f"errors/{kind}")
        self.logger.warning("%s: %s (%s)", kind, url, detail)

    async def start(self) -> AsyncIterator[Request]:
        for url in self.start_urls:
            request = self.site_request(url)
            if request is not None:
                yield request

    def site_request(self, url: str, visit: str = "", max_pages: int | None = None
                     ) -> Request | None:
        """The request for a site's start page (None when this visit of the site is already
        being crawled)."""
        url = canonical_url(url)
        site = site_of(url)
        known = self.sites.get(site)
        if known is not None and known.visit >= visit:
            return None
        state = self.sites[site] = SiteState(site, url, pages=1, visit=visit,
                                             max_pages=max_pages or self.max_pages,
                                             render=self.profile(site).render)
        self.count("sites")
        return Request(url, callback=self.parse_page, errback=self.page_failed,
                       meta=state.meta(start=True, download_maxsize=PAGE_MAXSIZE,
                                       handle_httpstatus_list=CHALLENGE_STATUSES))

    def state_of(self, response: Response) -> SiteState:
        # In cluster mode another node may have started the site (or its newer visit): this
        # node learns of it from the first of its requests that it is handed.
        site, visit = response.meta["site"], response.meta.get("visit", "")
        state = self.sites.get(site)
        if state is None or state.visit < visit:
            state = self.sites[site] = SiteState(
                site, response.url, pages=1, visit=visit,
                max_pages=response.meta.get("max_pages") or self.max_pages,
                render=self.profile(site).render)
        return state

    # --- pages ----------------------------------------------------------------------------

    def parse_page(self, response: Response) -> Iterator[Request | FetchedMedia | SiteFacts]:
        state = self.state_of(response)
        if response.status >= 400:
            # Only a challenge's statuses reach here (handle_httpstatus_list).
            if is_challenge(response):
                render = self.render_request(state, response.url, CHALLENGE)
                if render is not None:
                    yield render
                    return
            self.page_answered_error(state, response)
            return
        media = sniff_media(response.body)
        if media is not None:
            # A "page" link that turned out to be a picture or a video.
            yield from self.parse_media(response, page_url=response.url)
            return
        if is_json(response):
            # A "page" link that is an API's answer.
            yield from self.parse_api(response)
            return
        if not looks_like_html(response.body) and not isinstance(response, HtmlResponse):
            self.error("not-html", response.url, describe_non_media(response.body))
            return
        if not isinstance(response, HtmlResponse):
            response = response.replace(cls=HtmlResponse)
        if response.meta.get("start") and not on_site(response.url, state.site):
            # The start URL redirected (to www., https or another domain): crawl the site
            # where it really is.
            self.sites[site_of(response.url)] = state
        yield from self.page_read(state, response)
        media, links = page_links(response)
        profile = self.profile(state.site)
        gated = not media and is_age_gate(response, profile.gate)
        if response.meta.get("gate"):
            state.gates_failed += gated
            state.gates_passed += not gated
        if gated and not state.gate_tried:
            state.gate_tried = True
            passed = pass_request(response, profile.gate)
            if passed is not None:
                self.count("gates/tried")
                yield passed.replace(callback=self.parse_page, errback=self.page_failed,
                                     meta=state.meta(download_maxsize=PAGE_MAXSIZE, gate=True,
                                                     start=response.meta.get("start")))
                return
        if response.meta.get("start"):
            # The pages and API pages a profile adds (they count against the budgets), once
            # through the site's gate.
            yield from self.follow_pages(state, list(profile.start_urls))
            yield from self.api_requests(state, profile.api_urls(), response.url)
        yield from self.shown(state, media, response)
        yield from self.follow_pages(state, links)
        yield from self.api_requests(state, api_urls(response), response.url)
        yield from self.viewer_requests(state, viewer_links(response), response.url)
        target = None if media else redirect_target(response)
        if target is not None:
            # A short link or a "continue to your image" page: where it sends the visitor is
            # read without a browser.
            yield from self.follow_pages(state, [target])
            yield from self.viewer_requests(state, [target], response.url)
            return
        mode = state.render if state.render != AUTO else self.browser["mode"]
        reason = render_reason(response, media, mode)
        if reason is not None:
            render = self.render_request(state, response.url, reason)
            if render is not None:
                yield render
        if not state.robots_read and (len(media) < THIN_PAGE_MEDIA
                                      or len(links) < THIN_PAGE_LINKS):
            # A thin page (a script-built home, a search box): the sitemaps may list more.
            state.robots_read = True
            yield Request(urljoin(response.url, "/robots.txt"), callback=self.parse_robots,
                          errback=self.robots_failed, meta=state.meta(
                              handle_httpstatus_all=True, download_maxsize=MANIFEST_MAXSIZE))

    def page_read(self, state: SiteState, response: HtmlResponse,
                  cookies: list[dict[str, Any]] | None = None
                  ) -> Iterator[Request | SiteFacts]:
        """Count a page read; on the site's first, what notices need of the site."""
        state.pages_ok += 1
        self.count("pages")
        if state.language_seen:
            return
        # Asked once the site has answered: a dead site costs no second request, and the
        # file is fetched after the pictures the site's first page shows.
        state.language_seen = True
        yield SiteFacts(
            site=state.site, language=page_language(response),
            charset=response.encoding if isinstance(response, TextResponse) else None,
        )
        yield Request(
            urljoin(response.url, "/.well-known/security.txt"),
            callback=self.parse_security_txt, errback=self.security_txt_failed,
            priority=SECURITY_TXT_PRIORITY, cookies=cookies or {},
            # A 404 is an answer (no file); a timeout on a busy site is retried like any
            # request, or the notice loses its contact and language.
            meta=state.meta(handle_httpstatus_all=True),
        )

    def shown(self, state: SiteState, media: list[str], response: Response,
              cookies: list[dict[str, Any]] | None = None
              ) -> Iterator[Request | FetchedMedia]:
        """What a page shows: inline pictures read where they are, the rest requested (with
        the cookies a browser was given, as the browser would have sent them)."""
        for url in media:
            if url.startswith("data:"):
                yield from self.inline_media(url, response)
            else:
                yield self.media_request(state, url, response.url, cookies)

    def page_answered_error(self, state: SiteState, response: Response) -> None:
        """A page that answered an error status (as page_failed counts an HttpError)."""
        self.error(f"http-{response.status // 100}xx", response.url,
                   f"HTTP {response.status}")
        if response.meta.get("start"):
            state.failed = True
            self.count("sites_failed")

    # --- browser rendering (crawler/browser.py) -------------------------------------------

    def render_request(self, state: SiteState, url: str, reason: str) -> Request | None:
        """The request that renders `url` in the browser, within the site's page budget;
        None (counted) when the budget is spent or there is no browser."""
        options = self.browser
        if options["chromium"] is None:
            self.count(f"rendered/no-browser/{reason}")
            return None
        if state.renders >= options["pages"]:
            self.count("budget/render-cap")
            return None
        state.renders += 1
        seconds = options["seconds"]
        return Request(
            url, callback=self.parse_rendered, errback=self.render_failed, dont_filter=True,
            meta=state.meta(
                playwright=True, playwright_include_page=True,
                # A context (cookies, storage) per rendered page, closed after it.
                playwright_context=f"render {state.site} {state.visit} {state.renders}",
                playwright_context_kwargs={"accept_downloads": False,
                                           "service_workers": "block",
                                           "user_agent": options["user_agent"]},
                playwright_page_init_callback="crawler.browser.init_page",
                playwright_page_goto_kwargs={"wait_until": "load",
                                             "timeout": seconds * 1000},
                haechi_browser={k: options[k] for k in ("allow", "user_agent", "timeout")},
                render_reason=reason, render_seconds=seconds, handle_httpstatus_all=True,
                dont_retry=True, download_maxsize=PAGE_MAXSIZE))

    async def parse_rendered(self, response: Response
                             ) -> AsyncIterator[Request | FetchedMedia]:
        """A page as the browser showed it: the DOM once settled and scrolled, plus what the
        browser asked for (pictures, manifests) and the media in the JSON it was sent."""
        state = self.state_of(response)
        reason = response.meta["render_reason"]
        page = response.meta.get("playwright_page")
        network: BrowserNetwork | None = response.meta.get("haechi_network")
        html, url, cookies = response.text, response.url, []
        try:
            if page is not None and network is not None:
                await settle(page, network,
                             time.monotonic() + response.meta["render_seconds"])
                html, url = await page.content(), page.url
                cookies = await page.context.cookies()
        finally:
            await _close_page(page)
            if network is not None:
                network.close()
        rendered = HtmlResponse(url=url, body=html.encode("utf-8"), encoding="utf-8",
                                request=response.request)
        state.rendered = state.rendered or reason
        self.count(f"rendered/{reason}")
        media, links = page_links(rendered)
        if network is not None:
            for refused_url, kind, detail in network.refused:
                self.error(kind, refused_url, detail)
            media = list(dict.fromkeys([*media, *network.media,
                                        *self.api_media(network.json)]))
        jar = [{"name": c["name"], "value": c["value"], "domain": c["domain"],
                "path": c["path"]} for c in cookies]
        if reason == CHALLENGE:
            still = not media and is_challenge(rendered.replace(status=503))
            state.gates_failed += still
            state.gates_passed += not still
            self.count(f"gates/challenge-{'failed' if still else 'passed'}")
            if still:
                return
            for item in self.page_read(state, rendered, jar):
                yield item
        for item in self.shown(state, media, rendered, jar):
            yield item
        for request in self.follow_pages(state, links, jar):
            yield request
        for request in self.viewer_requests(state, viewer_links(rendered), rendered.url):
            yield request

    def api_media(self, answers: list[tuple[str, bytes]]) -> list[str]:
        """Media named in the JSON a rendered page's scripts fetched."""
        found: list[str] = []
        for url, body in answers:
            with contextlib.suppress(ApiError):
                found.extend(read_api(body, url).media)
        return found

    # --- JSON APIs and viewer pages (crawler/apis.py, crawler/viewers.py) ------------------

    def api_requests(self, state: SiteState, urls: list[str], page_url: str
                     ) -> Iterator[Request]:
        """Requests for the site's own JSON endpoints among `urls` (a page's, or an answer's
        next page), within the visit's API budget and the trap guard."""
        for url in urls:
            url = canonical_url(url)
            if not on_site(url, state.site):
                continue
            if state.apis >= MAX_API_PAGES:
                self.count("budget/api-cap")
                return
            trap = state.guard.check(url)
            if trap:
                self.count(f"traps/{trap}")
                continue
            state.apis += 1
            yield Request(url, callback=self.parse_api, errback=self.media_failed,
                          meta=state.meta(page_url=page_url, download_maxsize=MAX_API_BYTES))

    def parse_api(self, response: Response) -> Iterator[Request | FetchedMedia]:
        state = self.state_of(response)
        if not is_json(response):
            # An endpoint that answered with a page (a data-next-url to HTML).
            if looks_like_html(response.body):
                yield from self.parse_page(response)
            return
        page_url = response.meta.get("page_url") or response.url
        try:
            answer = read_api(response.body, response.url, base=page_url,
                              headers=response.headers)
        except ApiError as exc:
            self.error("bad-api", response.url, str(exc))
            return
        self.count("apis")
        yield from self.shown(state, answer.media, response.replace(url=page_url))
        yield from self.follow_pages(state, answer.pages)
        yield from self.api_requests(state, answer.next, page_url)

    def viewer_requests(self, state: SiteState, urls: list[str], page_url: str, hops: int = 0
                        ) -> Iterator[Request]:
        """Requests for viewer pages on other hosts among `urls`: one hop each, the picture
        filed under the linking page (see crawler/viewers.py), within the visit's budget."""
        for url in urls:
            url = canonical_url(url)
            if on_site(url, state.site):
                continue
            if state.viewers >= MAX_VIEWERS:
                self.count("budget/viewer-cap")
                return
            state.viewers += 1
            yield Request(url, callback=self.parse_viewer, errback=self.media_failed,
                          meta=state.meta(page_url=page_url, viewer_hops=hops,
                                          download_maxsize=PAGE_MAXSIZE))

    def parse_viewer(self, response: Response) -> Iterator[Request | FetchedMedia]:
        state = self.state_of(response)
        page_url = response.meta["page_url"]
        if sniff_media(response.body) is not None:
            yield from self.parse_media(response, page_url=page_url)
            return
        if not looks_like_html(response.body):
            self.error("not-html", response.url, describe_non_media(response.body))
            return
        if not isinstance(response, HtmlResponse):
            response = response.replace(cls=HtmlResponse)
        self.count("viewers")
        media = page_links(response)[0]
        picture = main_picture(response, media)
        if picture is not None:
            yield from self.shown(state, [picture], response.replace(url=page_url))
            return
        target = redirect_target(response)
        hops = response.meta.get("viewer_hops", 0)
        if target is not None and hops < MAX_VIEWER_HOPS:
            yield from self.viewer_requests(state, [target], page_url, hops + 1)
            return
        if "viewer_hops" not in response.meta:
            # Asked for as a picture, it is a page that shows none: HTML served as an image.
            self.error("not-media", response.url, describe_non_media(response.body))

    def render_failed(self, failure: Failure) -> Iterator[Request]:
        request = failure.request
        page = request.meta.get("playwright_page")
        if page is not None:
            # An errback cannot wait for the close; the task is kept until it is done.
            task = asyncio.ensure_future(_close_page(page))
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)
        network = request.meta.get("haechi_network")
        if network is not None:
            network.close()
        self.error(f"render-failed/{failure_kind(failure)}", request.url,
                   str(failure.value)[:200])
        return iter(())

    def media_request(self, state: SiteState, url: str, page_url: str,
                      cookies: list[dict[str, Any]] | None = None) -> Request:
        """The request for a picture, a video or a manifest that `page_url` shows."""
        return Request(canonical_url(url), callback=self.parse_media, errback=self.media_failed,
                       priority=MEDIA_PRIORITY, cookies=cookies or {},
                       meta=state.meta(page_url=page_url))

    def follow_pages(self, state: SiteState, urls: list[str],
                     cookies: list[dict[str, Any]] | None = None) -> Iterator[Request]:
        """Requests for the site's own pages among `urls`, within its budget and trap guard
        (with `cookies` a browser was given, which join the visit's cookie jar)."""
        for url in urls:
            url = canonical_url(url)
            if not (on_site(url, state.site) or (site_of(url) in self.sites
                    and self.sites[site_of(url)] is state)):
                continue
            if state.pages >= state.max_pages:
                self.count("budget/page-cap")
                continue
            trap = state.guard.check(url)
            if trap:
                self.count(f"traps/{trap}")
                continue
            state.pages += 1
            yield Request(url, callback=self.parse_page, errback=self.page_failed,
                          cookies=cookies or {},
                          meta=state.meta(download_maxsize=PAGE_MAXSIZE,
                                          handle_httpstatus_list=CHALLENGE_STATUSES))

    def inline_media(self, uri: str, response: Response) -> Iterator[FetchedMedia]:
        """A picture written into the page as a data: URI, read where it is: a request for it
        would be dropped by Scrapy's URL length limit, and nothing needs fetching."""
        from w3lib.url import parse_data_uri

        if len(uri) > DATA_URI_MAXSIZE * 4 // 3 + 256:
            self.error("too-large", response.url, "an inline data: picture over the size limit")
            return
        try:
            body = parse_data_uri(uri).data
        except ValueError as exc:
            self.error("not-media", response.url, f"unreadable data: URI ({exc})")
            return
        digest = hashlib.sha256(body).hexdigest()
        # The case names the page and which inline picture of it (a notice cannot quote the URI).
        yield from self.fetched(f"{response.url}#data-uri-sha256-{digest[:16]}", response.url,
                                response.meta["site"], 200, body, {}, response.ip_address)

    def page_failed(self, failure: Failure) -> None:
        request = failure.request
        kind = failure_kind(failure)
        self.error(kind, request.url, str(failure.value)[:200])
        state = self.sites.get(request.meta.get("site", ""))
        if state is not None and request.meta.get("start"):
            state.failed = True
            self.count("sites_failed")

    # --- media ----------------------------------------------------------------------------

    def parse_media(self, response: Response, page_url: str | None = None
                    ) -> Iterator[FetchedMedia | Request]:
        kind = manifest_kind(response.url, response.body)
        if kind is not None:
            yield from self.parse_manifest(response, kind)
            return
        if page_url is None and looks_like_html(response.body) and "page_url" in response.meta:
            # A "picture" link that is a page: an image host's viewer at a .jpg address.
            yield from self.parse_viewer(response)
            return
        yield from self.fetched(response.url,
                                page_url or response.meta.get("page_url") or response.url,
                                response.meta["site"], response.status, response.body,
                                _headers(response), response.ip_address)

    def fetched(self, url: str, page_url: str, site: str, status: int, body: bytes,
                headers: dict[str, list[str]], ip_address: Any, **stream: Any
                ) -> Iterator[FetchedMedia]:
        """The fetched-file record of `body`, or the error saying why it is no media
        (`stream`: a segment's manifest_url and segment_start)."""
        media = sniff_media(body)
        if media is None:
            self.error("not-media", url, describe_non_media(body))
            return
        self.count("files")
        yield FetchedMedia(
            url=url, page_url=page_url, site=site, fetched_at=dt.datetime.now(dt.UTC),
            status=status, media_type=media.mime, kind=media.kind,
            sha256=hashlib.sha256(body).hexdigest(), size=len(body), headers=headers,
            server_ip=str(ip_address) if ip_address else None, body=body, **stream,
        )

    # --- streaming video (crawler/streaming.py) -------------------------------------------

    def parse_manifest(self, response: Response, kind: str | None = None
                       ) -> Iterator[Request]:
        """A master playlist or MPD: its chosen variant; a media playlist: its sampled
        segments, after the key and the init segment they need."""
        state = self.state_of(response)
        meta = _carried(response.meta)
        meta["manifest_url"] = response.meta.get("manifest_url") or response.url
        try:
            if (kind or manifest_kind(response.url, response.body)) == HLS:
                variants = hls_variants(response.body, response.url)
                if variants is not None:
                    self.count("videos/manifests")
                    state.manifests += 1
                    yield Request(choose_variant(variants).url, callback=self.parse_manifest,
                                  errback=self.media_failed, priority=MEDIA_PRIORITY,
                                  meta={**meta, "download_maxsize": MANIFEST_MAXSIZE})
                    return
                playlist = hls_segments(response.body, response.url)
            else:
                self.count("videos/manifests")
                state.manifests += 1
                variant = choose_variant(dash_variants(response.body, response.url))
                playlist = dash_segments(response.body, response.url, variant)
        except ManifestError as exc:
            self.error("bad-manifest", response.url, str(exc))
            return
        segments = sample(playlist)
        if response.meta.get("manifest_url") is None and kind == HLS:
            state.manifests += 1  # a media playlist named by the page itself
        state.segments += len(segments)
        self.count("videos/segments_sampled", len(segments))
        yield from self.segment_requests(segments, meta, {})

    def segment_requests(self, segments: list[Segment], meta: dict[str, Any],
                         fetched: dict[str, bytes]) -> Iterator[Request]:
        """Each segment's request, once what it needs first (its key, its init) is fetched:
        a missing one is asked for, with the segments waiting in its meta."""
        for needed in dict.fromkeys(u for s in segments for u in (
                s.key.url if s.key else None, s.init) if u):
            if needed not in fetched:
                yield Request(needed, callback=self.parse_stream_part,
                              errback=self.media_failed, priority=MEDIA_PRIORITY,
                              meta={**meta, "segments": segments, "fetched": fetched,
                                    "download_maxsize": MANIFEST_MAXSIZE})
                return
        for segment in segments:
            yield Request(segment.url, callback=self.parse_segment, errback=self.media_failed,
                          priority=MEDIA_PRIORITY,
                          meta={**meta, "segment": segment,
                                "key": fetched.get(segment.key.url) if segment.key else None,
                                "init": fetched.get(segment.init) if segment.init else None})

    def parse_stream_part(self, response: Response) -> Iterator[Request]:
        fetched = {**response.meta["fetched"], response.url: response.body}
        yield from self.segment_requests(response.meta["segments"], _carried(response.meta),
                                         fetched)

    def parse_segment(self, response: Response) -> Iterator[FetchedMedia]:
        segment: Segment = response.meta["segment"]
        body = response.body
        try:
            if response.meta.get("key") is not None:
                body = decrypt_segment(body, response.meta["key"], segment)
        except ManifestError as exc:
            self.error("bad-segment", response.url, str(exc))
            return
        body = (response.meta.get("init") or b"") + body
        # The case names the manifest, the segment and the second (segment_start + frame).
        yield from self.fetched(response.url, response.meta.get("page_url") or response.url,
                                response.meta["site"], response.status, body,
                                _headers(response), response.ip_address,
                                manifest_url=response.meta.get("manifest_url"),
                                segment_start=segment.start)

    # --- sitemaps (crawler/sitemaps.py) ---------------------------------------------------

    def parse_robots(self, response: Response) -> Iterator[Request]:
        state = self.state_of(response)
        if response.status != 200 or looks_like_html(response.body):
            return
        for url in robots_sitemaps(response.body, response.url)[:MAX_SITEMAPS]:
            yield from self.sitemap_request(state, url)

    def robots_failed(self, failure: Failure) -> None:
        self.count(f"sitemaps_failed/{failure_kind(failure)}")

    def sitemap_request(self, state: SiteState, url: str) -> Iterator[Request]:
        if state.sitemaps >= MAX_SITEMAPS:
            self.count("budget/sitemap-cap")
            return
        state.sitemaps += 1
        yield Request(canonical_url(url), callback=self.parse_sitemap,
                      errback=self.robots_failed, meta=state.meta())

    def parse_sitemap(self, response: Response) -> Iterator[Request]:
        state = self.state_of(response)
        try:
            content = read_sitemap(response.body, response.url)
        except SitemapError as exc:
            self.error("bad-sitemap", response.url, str(exc))
            return
        self.count("sitemaps")
        for url in content.sitemaps:
            if on_site(url, state.site):
                yield from self.sitemap_request(state, url)
        for url in content.media:
            yield self.media_request(state, url, response.url)
        yield from self.follow_pages(state, content.pages)

    def media_failed(self, failure: Failure) -> None:
        self.error(failure_kind(failure), failure.request.url, str(failure.value)[:200])

    # --- site facts -----------------------------------------------------------------------

    def parse_security_txt(self, response: Response) -> Iterator[SiteFacts]:
        if response.status != 200 or looks_like_html(response.body):
            return
        text = response.body[:64 * 1024].decode("utf-8", "replace")
        contacts, languages = parse_security_txt(text)
        if contacts or languages:
            yield SiteFacts(site=response.meta["site"], contacts=contacts,
                            preferred_languages=languages, security_txt_url=response.url)

    def security_txt_failed(self, failure: Failure) -> None:
        # Not an error of the run (the site's pages were read), but worth counting by kind;
        # except a redirect to an address the outbound policy refused, which is an attack.
        kind = failure_kind(failure)
        self.count(f"security_txt_failed/{kind}")
        if kind == BLOCKED_ADDRESS:
            self.error(kind, failure.request.url, str(failure.value)[:200])


# What a stream's requests carry from one to the next (the rest of a response's meta is
# Scrapy's, or belongs to the one request).
_STREAM_META = ("site", "visit", "max_pages", "cookiejar", "page_url", "manifest_url")


async def _close_page(page: Any) -> None:
    """Close a rendered page and its context (one per page), whatever state they are in."""
    if page is None:
        return
    with contextlib.suppress(Exception):
        await page.close()
    with contextlib.suppress(Exception):
        await page.context.close()


def _carried(meta: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in meta.items() if key in _STREAM_META}


def _headers(response: Response) -> dict[str, list[str]]:
    return {key.decode("latin-1"): [v.decode("latin-1") for v in values]
            for key, values in response.headers.items()}
