"""The one outbound fetch: which addresses a fetch of a site's URL may connect to, and the
one way a URL is fetched outside a crawl.

Every URL Haechi fetches was written by the people it acts against: a page's `<img>`, a
redirect, a security.txt, a URL kept from an earlier crawl. Without a guard, a hostile site
points one at the cloud metadata service, at a name that resolves to 127.0.0.1, or at the
database inside the VPC, and the crawler fetches, stores and spiders it. So every fetcher (the
Scrapy crawl, the tracker, the re-check) asks this one policy before it connects: the host is
resolved here, every address it has is checked, and the connection is made to the address that
was checked, never to a second lookup a rebinding name server could answer differently.

Refused: loopback, private, link-local (the metadata service), shared CGNAT space, multicast,
unspecified, reserved and every other range that is not on the public internet, in IPv4 and
IPv6, including IPv4 addresses embedded in IPv6 ones (IPv4-mapped, 6to4, NAT64). The one way
through is HAECHI_FETCH_ALLOW, a comma-separated list of CIDRs that tests and the demo set to
their own test web's addresses and production never sets.

The Scrapy side (a resolver and a downloader middleware) is in crawler/middlewares.py; the
httpx side (a transport whose connections are made here) is below, and so is `Fetcher`, the
GET that the re-check and the tracker make outside a crawl: limits, User-Agent, redirects
followed hop by hop under the policy, a byte cap, and an answer (`Fetched`) in place of every
exception. This module imports no stage of Haechi: every stage may import it.
"""

from __future__ import annotations

import functools
import hashlib
import http.cookiejar
import ipaddress
import socket
import typing
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from engines.settings import ConfigurationError, current

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The contract setting: the variable (and, in a crawl, the Scrapy setting of the same name).
ALLOW_SETTING = "HAECHI_FETCH_ALLOW"
# The error kind a refused fetch is counted under, in the crawl summary's `errors` and in the
# tracker's and re-check's answers.
BLOCKED_ADDRESS = "blocked-address"
# The schemes that reach a site over the network; anything else (file:, ftp:, s3:) would read
# from somewhere no site should be able to point us.
FETCH_SCHEMES = frozenset({"http", "https"})

# Ranges refused whatever Python's `is_global` says of them: some are global by its reading
# (6to4 relays, IPv4-compatible and -translated IPv6, site-local IPv6), some differ between
# Python versions (CGNAT, documentation), and naming them gives the refusal a clear reason.
_REFUSED_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), reason) for cidr, reason in (
        ("100.64.0.0/10", "shared address space (CGNAT, 100.64.0.0/10)"),
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast range"),
        ("::/96", "an IPv4-compatible IPv6 address (deprecated)"),
        ("::ffff:0:0:0/96", "an IPv4-translated IPv6 address"),
        ("64:ff9b:1::/48", "a local-use NAT64 prefix"),
        ("fec0::/10", "site-local IPv6 (deprecated)"),
        ("3fff::/20", "IPv6 documentation space"),
    )
)
# The well-known NAT64 prefix: its last 32 bits are the IPv4 address a gateway connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(Exception):
    """A fetch the policy refused before any connection was made."""

    kind = BLOCKED_ADDRESS

    def __init__(self, host: str, address: str | None, reason: str) -> None:
        self.host, self.address, self.reason = host, address, reason
        where = host if address is None or address == host else f"{host} ({address})"
        super().__init__(f"{BLOCKED_ADDRESS}: {where} is {reason}")


class FetchAllowError(ConfigurationError, ValueError):
    """HAECHI_FETCH_ALLOW does not parse (a configuration error: exit 3 from the CLI)."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a connection to `address` really reaches (IPv4-mapped, 6to4, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why `address` is not on the public internet, or None when it is."""
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            why = refusal(embedded)
            return None if why is None else f"{why} ({embedded}, embedded in an IPv6 address)"
    named = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (the cloud metadata service answers there)"),
        (address.is_multicast, "multicast"),
    )
    reason = next((reason for failed, reason in named if failed), None)
    if reason is None:
        reason = next((reason for network, reason in _REFUSED_RANGES
                       if address.version == network.version and address in network), None)
    if reason is None and address.is_private:
        reason = "private (not on the public internet)"
    if reason is None and address.is_reserved:
        reason = "reserved"
    if reason is None and not address.is_global:
        reason = "not globally routable"
    return reason


def ip_literal(host: str) -> IPAddress | None:
    """`host` as an address when it is written as one (`[::1]` too), else None (a name)."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def parse_allow(value: str | None) -> tuple[IPNetwork, ...]:
    """HAECHI_FETCH_ALLOW's CIDRs; a malformed one is a FetchAllowError naming the variable."""
    networks = []
    for entry in (e.strip() for e in (value or "").split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise FetchAllowError(
                f"{ALLOW_SETTING}: {entry!r} is not an address range ({exc}); give CIDRs "
                f"separated by commas, e.g. 127.0.77.0/24") from None
    return tuple(networks)


@dataclass(frozen=True)
class OutboundPolicy:
    """Public addresses only, plus the ranges in `allow` (HAECHI_FETCH_ALLOW)."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_setting(cls, value: object) -> OutboundPolicy:
        """The policy for a HAECHI_FETCH_ALLOW value: text, or a list of CIDRs (a Scrapy
        setting given as JSON); None or empty allows public addresses only."""
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        return _policy_for(None if value is None else str(value))

    def allows(self, address: IPAddress) -> bool:
        """Whether `address` is in one of the allowed ranges (as itself or as the IPv4
        address embedded in it)."""
        candidates = [address]
        if address.version == 6 and (embedded := _embedded_ipv4(address)) is not None:
            candidates.append(embedded)
        return any(a.version == n.version and a in n for a in candidates for n in self.allow)

    def check(self, address: str | IPAddress, host: str | None = None) -> IPAddress:
        """`address` when a fetch may connect to it; BlockedAddress otherwise."""
        if isinstance(address, str):
            parsed = ip_literal(address)
            if parsed is None:
                raise BlockedAddress(host or address, address, "not an IP address")
            address = parsed
        if not self.allows(address):
            reason = refusal(address)
            if reason is not None:
                raise BlockedAddress(host or str(address), str(address), reason)
        return address

    def check_url(self, url: str) -> str:
        """The host of `url` once its scheme is http(s) and, when it is written as an
        address, that address is allowed; names are checked when they are resolved."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in FETCH_SCHEMES:
            raise BlockedAddress(host or url, None,
                                 f"a {parts.scheme or 'relative'} URL (only http(s) is fetched)")
        if not host:
            raise BlockedAddress(url, None, "a URL without a host")
        literal = ip_literal(host)
        if literal is not None:
            self.check(literal, host)
        return host

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address of `host`, each checked: a name with one refused address is refused
        as a whole (a public address beside an internal one is a rebinding trick, not a CDN).
        socket.gaierror when the name does not resolve."""
        literal = ip_literal(host)
        if literal is not None:
            return [self.check(literal, host)]
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        return [self.check(address, host) for address in addresses]


@functools.lru_cache(maxsize=8)
def _policy_for(value: str | None) -> OutboundPolicy:
    return OutboundPolicy(parse_allow(value))


def default_policy() -> OutboundPolicy:
    """The policy this process runs under: HAECHI_FETCH_ALLOW, read at each call (tests set
    it per test; production leaves it unset, which allows public addresses only)."""
    return OutboundPolicy.from_setting(current().fetch_allow)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, but the host is resolved and checked here and the socket
    connects to the checked address: no second lookup between the check and the connect."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                    ) -> httpcore.NetworkStream:
        try:
            addresses = self.policy.resolve(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(str(address), port, timeout, local_address,
                                           socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for {host}")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose connections GuardedBackend makes.

    The pool is keyed by host name, TLS is verified against the name and the Host header is the
    name, exactly as without the guard; only the address connected to is the checked one.
    httpx has no public way to give its transport a network backend, so the pool it built is
    replaced by one with the same limits that has ours.
    """

    def __init__(self, policy: OutboundPolicy, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


@dataclass(frozen=True)
class FetchLimits:
    """How far one fetch may go. The values are the caller's (crawler/refetch.py gives the
    crawler's own), so that a site sees one Haechi however it is reached."""

    timeout: float
    max_bytes: int
    max_redirects: int
    user_agent: str


@dataclass(frozen=True)
class Fetched:
    """What one GET got, after its redirects.

    `status` is None when nothing answered: refused by the policy, no connection, a timeout,
    too many redirects; `error` says why. A body over the cap is an answer without its body:
    `status` is set, `body` is empty and `error` says so, because a judge must not mistake
    the first 200 MB for the file.
    """

    status: int | None
    body: bytes = b""
    error: str | None = None
    final_url: str | None = None

    @property
    def whole(self) -> bool:
        """A 2xx answer with all of its body: the only answer that shows what a URL serves."""
        return self.status is not None and 200 <= self.status < 300 and self.error is None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that keeps nothing: a cookie one site sets must not ride along to the next URL
    (the crawler runs without cookies too)."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def guarded_client(policy: OutboundPolicy, timeout: float, user_agent: str | None = None
                   ) -> httpx.Client:
    """An httpx client whose every connection is made under `policy`: redirects are not
    followed (the caller checks each hop), no proxy from the environment, and no cookie kept
    (a caller that carries cookies sends them as a header, for the one site they belong to)."""
    return httpx.Client(
        transport=GuardedTransport(policy), timeout=timeout, follow_redirects=False,
        headers={"User-Agent": user_agent} if user_agent else None, cookies=_no_cookies(),
        trust_env=False)


class Fetcher:
    """GETs under `policy` (by default the process's) within `limits`, over one pool:
    `with Fetcher(limits) as fetch: fetch(url)`.

    Redirects are followed here, one hop at a time, rather than by httpx: each hop's URL is
    checked by the policy before it is requested (a redirect to file: or to an internal
    address is refused with its reason), and a redirect's own body is never read (httpx reads
    it whole, with no cap). Proxies from the environment are not used: they would connect in
    our place, to addresses the policy never sees. A malformed HAECHI_FETCH_ALLOW is raised
    when the Fetcher is made (configuration); every other failure is an answer.
    """

    def __init__(self, limits: FetchLimits, policy: OutboundPolicy | None = None) -> None:
        self.limits = limits
        self.policy = policy or default_policy()
        self._client = guarded_client(self.policy, limits.timeout, limits.user_agent)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def __call__(self, url: str) -> Fetched:
        try:
            request = self._client.build_request("GET", url)
            for _hop in range(self.limits.max_redirects + 1):
                self.policy.check_url(str(request.url))
                response = self._client.send(request, stream=True)
                try:
                    if response.next_request is None:
                        return self._read(response)
                    request = response.next_request
                finally:
                    response.close()
            return Fetched(None, error=f"TooManyRedirects: more than "
                           f"{self.limits.max_redirects} redirects", final_url=str(request.url))
        except BlockedAddress as exc:
            return Fetched(None, error=str(exc))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return Fetched(None, error=f"{type(exc).__name__}: {exc}")

    def _read(self, response: httpx.Response) -> Fetched:
        """The body of the last hop, up to the cap, counted as it is decoded (so a gzip bomb
        stops at the cap too)."""
        body = bytearray()
        for chunk in response.iter_bytes():
            body.extend(chunk)
            if len(body) > self.limits.max_bytes:
                return Fetched(response.status_code, final_url=str(response.url),
                               error=f"larger than {self.limits.max_bytes} bytes")
        return Fetched(response.status_code, bytes(body), final_url=str(response.url))


def fetch(url: str, limits: FetchLimits, policy: OutboundPolicy | None = None) -> Fetched:
    """One GET on a pool of its own, for a caller that fetches one URL at a time."""
    with Fetcher(limits, policy) as fetcher:
        return fetcher(url)
