"""The outbound-fetch policy (engines/fetch.py) against a hostile site, with real servers.

An "internal service" (HTTP servers on 127.0.0.1 and [::1], standing in for the metadata
service, a database or an admin page inside the VPC) counts every request it receives. A
hostile site on 127.0.77.1 and .2, the only addresses HAECHI_FETCH_ALLOW opens here, points a
crawl, the tracker and the re-check at it in every way the attack used: an <img> on its
address, a name that resolves to it, media, page, start URL and security.txt redirects. The
service must receive nothing, and every refusal is counted as `blocked-address`. A control run
with the service's addresses allowed shows that the same pages do reach it, so a silent
service means the guard refused, not that the test missed.

The public addresses below appear only in the unit tests of the address predicate; nothing is
ever sent to an address outside loopback.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hcl2
import pytest

from crawler.failures import failure_kind
from crawler.refetch import LIMITS as REFETCH_LIMITS
from engines.fetch import (
    ALLOW_SETTING,
    BLOCKED_ADDRESS,
    BlockedAddress,
    FetchAllowError,
    Fetcher,
    OutboundPolicy,
    default_policy,
    parse_allow,
)
from haechi.commands import ConfigurationError, demo
from takedown.tracking import fetch as tracker_fetch
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb.model import CDN_ADDRESS, FETCH_ALLOW, site_address
from tests.test_crawl import CRAWL_ENV, HAECHI

# The hostile site's own addresses: the only ones this module's policy allows.
HOSTILE_ALLOW = "127.0.77.0/24"
SITE, START_REDIRECT_SITE = "127.0.77.1", "127.0.77.2"
PICTURE = encode(synthetic_picture(seed=11))

# --- servers ------------------------------------------------------------------------------


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@dataclass
class Server:
    httpd: ThreadingHTTPServer
    hits: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve(address: str, respond: Callable[[BaseHTTPRequestHandler], None]) -> Server:
    """An HTTP server on `address` (a free port) answering every GET with `respond`."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            respond(self)

        def log_message(self, *args: object) -> None:
            pass

    server_class = _V6Server if ":" in address else ThreadingHTTPServer
    httpd = server_class((address, 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return Server(httpd, hits)


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"",
           content_type: str = "text/html; charset=utf-8", location: str | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    if location:
        handler.send_header("Location", location)
    handler.end_headers()
    handler.wfile.write(body)


@dataclass
class Web:
    internal: Server  # 127.0.0.1
    internal_v6: Server  # [::1]
    site: Server  # 127.0.77.1
    start_redirect: Server  # 127.0.77.2

    @property
    def internal_hits(self) -> list[str]:
        return self.internal.hits + self.internal_v6.hits

    def site_url(self, path: str) -> str:
        return f"http://{SITE}:{self.site.port}{path}"


@pytest.fixture
def web() -> Iterator[Web]:
    internal = serve("127.0.0.1", lambda h: answer(h, 200, PICTURE, "image/jpeg"))
    internal_v6 = serve("::1", lambda h: answer(h, 200, PICTURE, "image/jpeg"))
    inside = f"http://127.0.0.1:{internal.port}"
    by_name = f"http://localhost:{internal.port}"
    inside_v6 = f"http://[::1]:{internal_v6.port}"
    page = f"""<!doctype html><html lang="en"><head><title>Gallery</title></head><body>
<img src="/own.jpg" alt="">
<img src="{inside}/latest/meta-data/iam/security-credentials/role.jpg" alt="">
<img src="{by_name}/by-name.jpg" alt="">
<img src="{inside_v6}/v6.jpg" alt="">
<img src="/to-internal.jpg" alt="">
<a href="/to-internal-page">more</a>
</body></html>""".encode()
    redirects = {
        "/to-internal.jpg": f"{inside}/media.jpg",
        "/to-internal-page": f"{inside}/admin",
        "/.well-known/security.txt": f"{inside}/security.txt",
        "/to-internal-v6.jpg": f"{inside_v6}/media.jpg",
        "/to-name.jpg": f"{by_name}/media.jpg",
    }

    def hostile(handler: BaseHTTPRequestHandler) -> None:
        if handler.path in redirects:
            answer(handler, 302, location=redirects[handler.path])
        elif handler.path == "/own.jpg":
            answer(handler, 200, PICTURE, "image/jpeg")
        else:
            answer(handler, 200, page)

    site = serve(SITE, hostile)
    start_redirect = serve(START_REDIRECT_SITE,
                           lambda h: answer(h, 302, location=f"{inside}/start"))
    try:
        yield Web(internal, internal_v6, site, start_redirect)
    finally:
        for server in (internal, internal_v6, site, start_redirect):
            server.stop()


def crawl(web: Web, allow: str, **extra_env: str) -> dict:
    """`haechi crawl --json` of the hostile site, the redirecting start URL and a start URL
    by name, under HAECHI_FETCH_ALLOW=`allow`."""
    env = {**os.environ, **CRAWL_ENV, ALLOW_SETTING: allow, **extra_env}
    env.pop("DATABASE_URL", None)
    env.pop("HAECHI_STORE", None)
    urls = [web.site_url("/"), f"http://{START_REDIRECT_SITE}:{web.start_redirect.port}/",
            f"http://localhost:{web.internal.port}/"]
    result = subprocess.run([HAECHI, "crawl", "--json", *urls], capture_output=True,
                            text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- the crawl ----------------------------------------------------------------------------


def test_a_crawl_never_reaches_the_internal_service_and_counts_every_refusal(web) -> None:
    summary = crawl(web, HOSTILE_ALLOW)
    assert web.internal_hits == []
    # The <img> on 127.0.0.1, by name (localhost) and on [::1], the media and page-link
    # redirects, the start URL that redirects inside, and the start URL by name. (The
    # security.txt redirect is not followed at all: its request takes every status as is.)
    assert summary["errors"].get(BLOCKED_ADDRESS) == 7, summary
    assert "/.well-known/security.txt" in web.site.hits
    # What the site itself serves is still crawled: its page and its own picture.
    assert summary["pages"] == 1 and summary["files"] == 1, summary
    assert summary["sites_failed"] == 2  # the two start URLs that lead inside


def test_without_the_middleware_the_resolver_alone_refuses_at_connect_time(web) -> None:
    # Twisted asks the resolver for the address it connects to, IP literals included: with the
    # middleware taken out, nothing reaches the service either (the refusals then read as
    # failed lookups, which is why the middleware checks first).
    middlewares = {"scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
                   "crawler.middlewares.BackoffRetryMiddleware": 550,
                   "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
                   "crawler.middlewares.OutboundGuardMiddleware": None}
    summary = crawl(web, HOSTILE_ALLOW,
                    HAECHI_SCRAPY_DOWNLOADER_MIDDLEWARES=json.dumps(middlewares),
                    HAECHI_SCRAPY_RETRY_TIMES="0")
    assert web.internal_hits == []
    assert summary["errors"].get("dns", 0) >= 6 and summary["files"] == 1, summary


def test_control_with_the_internal_service_allowed_the_same_crawl_reaches_it(web) -> None:
    summary = crawl(web, f"{HOSTILE_ALLOW},127.0.0.1/32,::1/128")
    assert BLOCKED_ADDRESS not in summary["errors"]
    reached = set(web.internal.hits)
    assert {"/latest/meta-data/iam/security-credentials/role.jpg", "/by-name.jpg",
            "/media.jpg", "/admin", "/start", "/"} <= reached, reached


# --- the tracker and the re-check (httpx) ---------------------------------------------------


@pytest.fixture
def hostile_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_SETTING, HOSTILE_ALLOW)


def _attacks(web: Web) -> list[str]:
    """URLs that lead to the internal service: redirects to it (v4, v6, by name), and its
    addresses and name given directly."""
    return [web.site_url("/to-internal.jpg"), web.site_url("/to-internal-v6.jpg"),
            web.site_url("/to-name.jpg"), f"http://127.0.0.1:{web.internal.port}/x.jpg",
            f"http://[::1]:{web.internal_v6.port}/x.jpg",
            f"http://localhost:{web.internal.port}/x.jpg"]


def test_the_tracker_never_reaches_the_internal_service(web, hostile_allowed) -> None:
    for url in _attacks(web):
        got = tracker_fetch(url)
        assert got.status is None and got.error.startswith(f"{BLOCKED_ADDRESS}: "), (url, got)
    assert web.internal_hits == []
    own = tracker_fetch(web.site_url("/own.jpg"))
    assert own.status == 200 and own.body == PICTURE


def test_the_recheck_never_reaches_the_internal_service(web, hostile_allowed) -> None:
    with Fetcher(REFETCH_LIMITS) as fetch:
        for url in _attacks(web):
            got = fetch(url)
            assert got.status is None and got.error.startswith(f"{BLOCKED_ADDRESS}: "), (url, got)
        own = fetch(web.site_url("/own.jpg"))
    assert web.internal_hits == []
    assert own.status == 200 and own.body == PICTURE


def test_control_with_the_internal_service_allowed_the_tracker_reaches_it(
        web, monkeypatch) -> None:
    monkeypatch.setenv(ALLOW_SETTING, f"{HOSTILE_ALLOW},127.0.0.1/32,::1/128")
    assert tracker_fetch(web.site_url("/to-internal-v6.jpg")).status == 200
    with Fetcher(REFETCH_LIMITS) as fetch:
        assert fetch(web.site_url("/to-internal.jpg")).status == 200
    assert web.internal.hits == ["/media.jpg"] and web.internal_v6.hits == ["/media.jpg"]


# --- the address predicate and HAECHI_FETCH_ALLOW -------------------------------------------

REFUSED = {
    "169.254.169.254": "link-local",  # the cloud metadata service
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
    "100.64.0.1": "CGNAT",
    "fc00::1": "private",
    "fe80::1": "link-local",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "10.1.2.3": "private",
    "192.168.1.1": "private",
    "172.16.0.1": "private",
    "127.0.0.1": "loopback",
    "127.10.0.1": "loopback",  # the test web, when HAECHI_FETCH_ALLOW does not open it
    "::1": "loopback",
    "::": "unspecified",
    "ff02::1": "multicast",
    "::ffff:169.254.169.254": "link-local",
    "64:ff9b::a9fe:a9fe": "link-local",  # NAT64 of the metadata address
    "2002:a9fe:a9fe::1": "link-local",  # 6to4 of the metadata address
    "::127.0.0.1": "IPv4-compatible",
    "fec0::1": "site-local",
    "198.18.0.1": "private",
    "240.0.0.1": "private",
    "255.255.255.255": "private",
}
ALLOWED = ["8.8.8.8", "2001:4860::8888", "1.1.1.1", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "reason"), sorted(REFUSED.items()))
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    with pytest.raises(BlockedAddress) as refused:
        OutboundPolicy().check(address, "host.example")
    assert refused.value.kind == BLOCKED_ADDRESS and reason in refused.value.reason
    assert str(refused.value).startswith(f"{BLOCKED_ADDRESS}: host.example (")
    assert failure_kind(refused.value) == BLOCKED_ADDRESS


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert OutboundPolicy().check(address) == ipaddress.ip_address(address)


def test_only_the_allowed_ranges_open_a_way_through() -> None:
    policy = OutboundPolicy.from_setting(f" {HOSTILE_ALLOW} ,, fd00:77::/64")
    assert policy.check("127.0.77.9") == ipaddress.ip_address("127.0.77.9")
    assert policy.check("::ffff:127.0.77.9")  # the same address, IPv4-mapped
    assert policy.check("fd00:77::5")
    for outside in ("127.0.0.1", "127.0.78.1", "fd00:78::1", "169.254.169.254"):
        with pytest.raises(BlockedAddress):
            policy.check(outside)
    assert OutboundPolicy.from_setting(["127.0.77.0/24"]).allow == policy.allow[:1]
    assert OutboundPolicy.from_setting(None).allow == OutboundPolicy.from_setting("").allow == ()


@pytest.mark.parametrize("bad", ["127.0.0.1/33", "not-a-range", "127.0.77.1/24", "10.0.0.0/8;"])
def test_a_malformed_allow_list_is_a_configuration_error_naming_the_variable(bad: str) -> None:
    with pytest.raises(FetchAllowError) as error:
        parse_allow(f"127.0.77.0/24,{bad}")
    assert ALLOW_SETTING in str(error.value) and repr(bad) in str(error.value)
    assert isinstance(error.value, ConfigurationError)


def test_a_malformed_allow_list_stops_a_crawl_and_the_tracker(monkeypatch) -> None:
    monkeypatch.setenv(ALLOW_SETTING, "127.0.0.0/33")
    with pytest.raises(FetchAllowError):
        default_policy()
    with pytest.raises(FetchAllowError):
        tracker_fetch("http://127.0.77.1:9/")
    env = {**os.environ}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([HAECHI, "crawl", "http://127.0.77.1:9/"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 3 and ALLOW_SETTING in result.stderr, result.stderr


def test_names_are_resolved_and_every_address_checked() -> None:
    with pytest.raises(BlockedAddress) as refused:
        OutboundPolicy().resolve("localhost", 80)
    assert refused.value.host == "localhost" and refused.value.reason == "loopback"
    assert OutboundPolicy.from_setting("127.0.0.1/32").resolve("localhost", 80)


def test_other_schemes_and_hostless_urls_are_refused() -> None:
    policy = OutboundPolicy()
    for url in ("file:///etc/passwd", "ftp://127.0.77.1/x", "gopher://localhost/", "http:///x"):
        with pytest.raises(BlockedAddress):
            policy.check_url(url)
    assert policy.check_url("https://8.8.8.8/x.jpg") == "8.8.8.8"  # checked, never fetched


def test_tests_and_the_demo_allow_exactly_the_test_web() -> None:
    # The demo's crawl settings are a dict, or a function since its imports moved inside.
    demo_env = demo.demo_crawl_env() if hasattr(demo, "demo_crawl_env") \
        else demo.DEMO_CRAWL_ENV
    assert os.environ[ALLOW_SETTING] == FETCH_ALLOW == demo_env[ALLOW_SETTING]
    policy = default_policy()
    for address in (site_address(0), site_address(20_000), CDN_ADDRESS):
        policy.check(address)
    for outside in ("127.0.0.1", "127.9.9.8", site_address(125_000)):
        with pytest.raises(BlockedAddress):
            policy.check(outside)


# --- the network layer (infra/terraform) ----------------------------------------------------

NETWORK_TF = Path(__file__).resolve().parents[1] / "infra" / "terraform" / "network.tf"
# The ranges a network of ours may use, which the services' egress must leave out.
INTERNAL_RANGES = ("10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "172.16.0.0/12",
                   "192.168.0.0/16", "224.0.0.0/3")


def test_the_services_reach_the_web_but_inside_the_vpc_only_the_data_stores() -> None:
    with NETWORK_TF.open() as handle:
        parsed = hcl2.load(handle)
    local = next(block for block in parsed["locals"] if "internet_ipv4" in block)
    listed = [ipaddress.ip_network(cidr.strip('"')) for cidr in local["internet_ipv4"]]
    internal = [ipaddress.ip_network(cidr) for cidr in INTERNAL_RANGES]
    # Exactly the complement of the internal ranges: nothing inside, nothing public missing.
    assert sorted(ipaddress.collapse_addresses(listed + internal)) == \
        [ipaddress.ip_network("0.0.0.0/0")]
    assert not any(a.overlaps(b) for a in listed for b in internal)
    assert not any(a.overlaps(b) for i, a in enumerate(listed) for b in listed[i + 1:])
    resources = {(kind.strip('"'), name.strip('"')): body for block in parsed["resource"]
                 for kind, named in block.items() for name, body in named.items()}
    assert "egress" not in resources[("aws_security_group", "services")]
    egress = {name: {key: str(value).strip('"') for key, value in body.items()}
              for (kind, name), body in resources.items()
              if kind == "aws_vpc_security_group_egress_rule"}
    assert set(egress) == {"services_web", "services_data", "services_dns"}
    assert egress["services_web"]["cidr_ipv4"] == "${each.value}"
    assert egress["services_data"]["referenced_security_group_id"] == \
        "${aws_security_group.data.id}"
    assert egress["services_dns"]["cidr_ipv4"] == "${cidrhost(var.vpc_cidr, 2)}/32"
