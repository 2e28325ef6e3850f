"""Downloader middlewares of the crawler, and the resolver that keeps its fetches public.

The outbound-fetch policy (engines/fetch.py) is enforced twice, at the two places Scrapy
decides where a request goes. GuardedResolver, installed on the reactor by the
TWISTED_DNS_RESOLVER setting, is what Twisted asks for the address it connects to: every answer
it gives has been checked, so the connection goes to a checked address and a rebinding name
server gets no second chance. OutboundGuardMiddleware sees every request before the download,
redirects included (Scrapy sends a redirect through the middlewares again as a new request):
it refuses other schemes and IP-literal hosts outside the policy, and resolves names through
the same resolver, so a refusal is an error of its own kind (`blocked-address`) and not a
failed DNS lookup.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import CannotResolveHostError
from scrapy.http import Request, Response
from scrapy.resolver import CachingThreadedResolver
from scrapy.settings import BaseSettings
from scrapy.utils.datatypes import LocalCache
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import DNSLookupError

from crawler.browser import is_challenge
from engines.fetch import (
    ALLOW_SETTING,
    FETCH_SCHEMES,
    BlockedAddress,
    OutboundPolicy,
    ip_literal,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scrapy.crawler import Crawler
    from twisted.internet.base import ReactorBase
    from twisted.internet.defer import Deferred

# Names whose last lookup was refused, kept so that a refusal at connect time (the name changed
# its answer after the middleware's check) is still counted as blocked-address; a few thousand
# cover every host a crawl is connecting to at one time.
REFUSED_NAMES_KEPT = 4096


def policy_from_settings(settings: BaseSettings) -> OutboundPolicy:
    """The crawl's policy: the HAECHI_FETCH_ALLOW setting (crawler/run.py copies the variable
    of that name into it)."""
    return OutboundPolicy.from_setting(settings.get(ALLOW_SETTING))


class BlockedLookup(DNSLookupError):
    """A lookup whose answer the policy refused. A DNSLookupError, because that is the failure
    Twisted's connection code expects from a resolver (anything else it logs as a crash)."""

    def __init__(self, blocked: BlockedAddress) -> None:
        super().__init__(str(blocked))
        self.blocked = blocked


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, checking every address it hands out against the policy.

    Cached answers are checked again on each use, so a refused address never reaches a
    connection whichever path asked for it.
    """

    def __init__(self, reactor: ReactorBase, cache_size: int, timeout: float,
                 policy: OutboundPolicy) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.policy = policy
        self.refused: LocalCache[str, BlockedAddress] = LocalCache(REFUSED_NAMES_KEPT)

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> GuardedResolver:
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") \
            else 0
        return cls(reactor, cache_size, settings.getfloat("DNS_TIMEOUT"),
                   policy_from_settings(settings))

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        return super().getHostByName(name, timeout).addCallback(self._checked, name)

    def _checked(self, address: str, name: str) -> str:
        try:
            self.policy.check(address, name)
        except BlockedAddress as blocked:
            self.refused[name] = blocked
            raise BlockedLookup(blocked) from None
        self.refused.pop(name, None)
        return address


class OutboundGuardMiddleware:
    """Refuses, before the download, every request the outbound policy does not allow."""

    def __init__(self, resolver: GuardedResolver) -> None:
        self.resolver = resolver
        self.policy = resolver.policy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OutboundGuardMiddleware:
        from twisted.internet import reactor

        resolver = getattr(reactor, "resolver", None)
        if not isinstance(resolver, GuardedResolver):
            # Without the resolver, names would be connected to unchecked: refuse to crawl.
            raise RuntimeError(
                "the crawl's TWISTED_DNS_RESOLVER must be crawler.middlewares.GuardedResolver "
                f"(found {type(resolver).__name__}): fetches would connect to unchecked addresses")
        return cls(resolver)

    async def process_request(self, request: Request) -> None:
        parts = urlparse_cached(request)
        if parts.scheme == "data":
            return  # answered from the URL itself, no connection
        host = parts.hostname or ""
        if parts.scheme not in FETCH_SCHEMES:
            raise BlockedAddress(host or request.url, None,
                                 f"a {parts.scheme}: URL (only http(s) is fetched)")
        if request.meta.get("proxy"):
            raise BlockedAddress(host, None, "to be fetched through a proxy, which would "
                                 "connect to an address the policy never saw")
        if ip_literal(host) is not None:
            self.policy.check(host.strip("[]"), host)
            return
        try:
            await maybe_deferred_to_future(self.resolver.getHostByName(host))
        except BlockedLookup as exc:
            raise exc.blocked from None
        except DNSLookupError as exc:
            raise CannotResolveHostError(str(exc)) from None

    def process_exception(self, request: Request, exception: Exception) -> Any:
        # The download's own lookup was refused (the name's answer changed since the check
        # above): the handler reports it as a failed lookup; say what it was.
        if isinstance(exception, CannotResolveHostError | DNSLookupError):
            blocked = self.resolver.refused.get(urlparse_cached(request).hostname or "")
            if blocked is not None:
                raise BlockedAddress(blocked.host, blocked.address, blocked.reason)
        return None


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry, but each retry waits longer (exponential backoff with jitter).

    A struggling host that answers 503 or drops connections gets breathing room instead of an
    immediate second and third hit. The wait holds no download slot of its site.
    """

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.base_delay = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.max_delay = settings.getfloat("RETRY_BACKOFF_MAX", 30.0)

    async def _wait(self, retry: Request | None) -> None:
        if retry is None:
            return
        attempt = retry.meta.get("retry_times", 1)
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def process_response(self, request: Request, response: Response
                               ) -> Request | Response:
        if is_challenge(response) and response.status in request.meta.get(
                "handle_httpstatus_list", ()):
            # A JavaScript challenge answers the same to every retry: the spider renders it.
            return response
        result = super().process_response(request, response)
        if isinstance(result, Request):
            await self._wait(result)
        return result

    async def process_exception(self, request: Request, exception: Exception
                                ) -> Request | Response | None:
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            await self._wait(result)
        return result
