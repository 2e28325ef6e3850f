"""The generic site spider: every page of a site, every image and video on those pages.

Each start URL is a site. Pages are followed only on that site (and its subdomains); media are
fetched wherever they are hosted, because a page that shows a picture from a CDN still shows
it. Each site has its own budgets (pages, trap shapes), so one huge or hostile site cannot
starve the others; what is fetched is judged by its bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from scrapy import Request, Spider
from scrapy.http import HtmlResponse, Response, TextResponse
from twisted.python.failure import Failure

from crawler.discovery import media_urls, page_language, page_urls
from crawler.failures import failure_kind
from crawler.items import FetchedMedia, SiteFacts
from crawler.security_txt import parse_security_txt
from crawler.urls import TrapGuard, canonical_url, on_site, site_of
from engines.fetch import BLOCKED_ADDRESS
from engines.media import describe_non_media, looks_like_html, sniff_media

# Media are fetched before further pages, so a match is found seconds after its page is read.
MEDIA_PRIORITY = 10
SECURITY_TXT_PRIORITY = 0
DEFAULT_MAX_PAGES = 1000
# A web page larger than this is not a gallery page but an attack on the parser.
PAGE_MAXSIZE = 16 * 1024 * 1024


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

    def meta(self, **extra: Any) -> dict[str, Any]:
        """The meta of a request made for this site."""
        return {"site": self.site, "visit": self.visit, "max_pages": self.max_pages, **extra}


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
                                             max_pages=max_pages or self.max_pages)
        self.count("sites")
        return Request(url, callback=self.parse_page, errback=self.page_failed,
                       meta=state.meta(start=True, download_maxsize=PAGE_MAXSIZE))

    def state_of(self, response: Response) -> SiteState:
        # In cluster mode another node may have started the site (or its newer visit): this
        # node learns of it from the first of its requests that it is handed.
        site, visit = response.meta["site"], response.meta.get("visit", "")
        state = self.sites.get(site)
        if state is None or state.visit < visit:
            state = self.sites[site] = SiteState(
                site, response.url, pages=1, visit=visit,
                max_pages=response.meta.get("max_pages") or self.max_pages)
        return state

    # --- pages ----------------------------------------------------------------------------

    def parse_page(self, response: Response) -> Iterator[Request | FetchedMedia | SiteFacts]:
        state = self.state_of(response)
        media = sniff_media(response.body)
        if media is not None:
            # A "page" link that turned out to be a picture or a video.
            yield from self.parse_media(response, page_url=response.url)
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
        state.pages_ok += 1
        self.count("pages")
        if not state.language_seen:
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
                priority=SECURITY_TXT_PRIORITY,
                # A 404 is an answer (no file); a timeout on a busy site is retried like any
                # request, or the notice loses its contact and language.
                meta=state.meta(handle_httpstatus_all=True),
            )
        for url in media_urls(response):
            yield Request(
                url if url.startswith("data:") else canonical_url(url),
                callback=self.parse_media, errback=self.media_failed,
                priority=MEDIA_PRIORITY,
                meta=state.meta(page_url=response.url),
            )
        for url in page_urls(response):
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
                          meta=state.meta(download_maxsize=PAGE_MAXSIZE))

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
                    ) -> Iterator[FetchedMedia]:
        body = response.body
        media = sniff_media(body)
        if media is None:
            self.error("not-media", response.url, describe_non_media(body))
            return
        headers = {
            key.decode("latin-1"): [v.decode("latin-1") for v in values]
            for key, values in response.headers.items()
        }
        self.count("files")
        yield FetchedMedia(
            url=response.url,
            page_url=page_url or response.meta.get("page_url") or response.url,
            site=response.meta["site"],
            fetched_at=dt.datetime.now(dt.UTC),
            status=response.status,
            media_type=media.mime,
            kind=media.kind,
            sha256=hashlib.sha256(body).hexdigest(),
            size=len(body),
            headers=headers,
            server_ip=str(response.ip_address) if response.ip_address else None,
            body=body,
        )

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
