"""Abuse contacts from RDAP and the CDNs' ranges (takedown/rdap.py, takedown/cdn.py), against a
local RDAP server speaking RFC 9083 (testkit/rdap/server.py) through the outbound policy."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from haechi.cli import main
from takedown import cdn, rdap
from takedown.database import takedown_engine
from takedown.published import refreshed_path, write_refreshed
from takedown.schema import rdap_cache
from testkit.rdap.server import Canned, RdapServer, domain, entity, ip_network

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
SITE = "www.repost-site.com"
HOSTED = "198.51.100.10"  # a network with an abuse entity under its registrant
NO_ABUSE = "198.51.100.20"
SEVERAL = "198.51.100.30"
INJECTED = "198.51.100.40"
HUGE = "198.51.100.50"
BROKEN = "198.51.100.60"
REDIRECTED = "198.51.100.70"
ODD_EMAIL = "198.51.100.80"  # a jCard whose email value is a list, not text
DEEP = "198.51.100.90"  # JSON nested deeper than Python's parser recurses
LINE_SEPARATOR = "198.51.100.100"  # a name with U+2028 in it, a line break to e-mail
BIDI = "198.51.100.101"  # a name with U+202E in it: it reads backwards after it
CLOUDFLARE_IP = "104.16.1.1"  # in Cloudflare's shipped ranges


def registrar(name: str, abuse: str) -> dict:
    """A registrar entity with its abuse desk nested under it, as ICANN's RDAP profile has it."""
    return entity("REG-1", ["registrar"], name,
                  children=[entity("REG-1-ABUSE", ["abuse"], "Abuse desk", abuse)])


@pytest.fixture(scope="module")
def server() -> Iterator[RdapServer]:
    with RdapServer() as running:
        base, private = running.base, f"http://127.0.0.1:{running.port}"
        running.answers.update({
            f"/registry/ip/{HOSTED}": Canned(ip_network(HOSTED, "EXAMPLE-NET", "nl", [
                entity("ORG-1", ["registrant"], "Example Hosting B.V.", children=[
                    entity("ABUSE-1", ["abuse"], "Abuse", "abuse@examplehost.net")])])),
            f"/registry/ip/{NO_ABUSE}": Canned(ip_network(NO_ABUSE, "QUIET-NET", "SC", [
                entity("ORG-2", ["registrant"], "Quiet Hosting Ltd")])),
            f"/registry/ip/{SEVERAL}": Canned(ip_network(SEVERAL, "MANY-NET", "RU", [
                entity("AB-3", ["abuse"], "Abuse", "abuse@many.example", "noc@many.example")])),
            f"/registry/ip/{INJECTED}": Canned(ip_network(INJECTED, "EVIL-NET", "RU", [
                entity("AB-4", ["abuse"], "Abuse",
                       "abuse@evil.example\r\nBcc: everyone@victims.example")])),
            f"/registry/ip/{HUGE}": Canned(b'{"name": "' + b"x" * 2_000_000 + b'"}'),
            f"/registry/ip/{BROKEN}": Canned(b'{"objectClassName": "ip network", "entit'),
            f"/registry/ip/{ODD_EMAIL}": Canned(ip_network(ODD_EMAIL, "ODD-NET", "NL", [
                {"objectClassName": "entity", "roles": ["abuse"], "vcardArray": ["vcard", [
                    ["fn", {}, "text", "Abuse"],
                    ["email", {}, "text", ["abuse@odd.example", "noc@odd.example"]]]]}])),
            f"/registry/ip/{DEEP}": Canned(b'{"entities": ' + b"[" * 100_000
                                           + b"]" * 100_000 + b"}"),
            f"/registry/ip/{LINE_SEPARATOR}": Canned(ip_network(LINE_SEPARATOR, "LS-NET", "NL", [
                entity("ORG-5", ["registrant"], "Evil Hosting\u2028Bcc: all@victims.example",
                       children=[entity("AB-5", ["abuse"], "Abuse", "abuse@ls.example")])])),
            f"/registry/ip/{BIDI}": Canned(ip_network(BIDI, "BIDI-NET", "NL", [
                entity("ORG-6", ["registrant"], "Trusted \u202eGmbH gnitsoH", children=[
                    entity("AB-6", ["abuse"], "Abuse", "abuse@bidi.example")])])),
            f"/registry/ip/{REDIRECTED}": Canned(
                status=302, location=f"{private}/registry/ip/{REDIRECTED}"),
            # A thin registry naming the registrar and linking to the registrar's own server.
            "/registry/domain/repost-site.com": Canned(domain(
                "repost-site.com", [registrar("Example Registrar, Inc.", "abuse@registry.example")],
                related=f"{base}/registrar/domain/repost-site.com")),
            "/registrar/domain/repost-site.com": Canned(domain(
                "repost-site.com",
                [registrar("Example Registrar, Inc.", "domain-abuse@registrar.example")])),
            # A registry whose referral points at an internal address.
            "/registry/domain/private-referral.com": Canned(domain(
                "private-referral.com",
                [registrar("Sly Registrar", "abuse@sly-registry.example")],
                related=f"{private}/registrar/domain/private-referral.com")),
        })
        yield running


@pytest.fixture
def engine(server: RdapServer):
    """The takedown database of this test's data folder, and bootstrap files there that send
    .com and 198.51.100.0/24 to the local server."""
    for kind, document in server.bootstrap_files("com", "198.51.100.0/24").items():
        write_refreshed(f"rdap/{kind}.json", json.dumps(document).encode())
    server.requests.clear()
    return takedown_engine()


def test_the_host_and_the_registrar_with_their_abuse_contacts(engine, server) -> None:
    found = rdap.contacts(engine, SITE, HOSTED, NOW)
    assert found.problems == () and found.domain == "repost-site.com"
    host, registrar_ = found.parties["host"], found.parties["registrar"]
    assert (host.name, host.address, host.country, host.source) == (
        "Example Hosting B.V.", "abuse@examplehost.net", "NL", "rdap:ip")
    assert host.refused is None and host.form_url is None and host.fetched_at == NOW
    # The registry referred to the registrar's own server, whose abuse desk is the one taken.
    assert (registrar_.name, registrar_.address, registrar_.source) == (
        "Example Registrar, Inc.", "domain-abuse@registrar.example", "rdap:domain")
    assert server.requests["/registrar/domain/repost-site.com"] == 1
    assert "cdn" not in found.parties
    assert rdap.parties(engine, SITE, HOSTED, NOW) == found.parties


def test_a_referral_to_an_internal_address_is_refused_and_the_registry_answer_kept(
        engine, server) -> None:
    found = rdap.contacts(engine, "private-referral.com", None, NOW)
    assert found.parties["registrar"].address == "abuse@sly-registry.example"
    [problem] = found.problems
    assert "referral was not followed" in problem and "blocked-address" in problem
    assert "loopback" in problem and "host" not in found.parties


def test_an_unreachable_registry_is_a_problem_of_its_site_only(engine, server) -> None:
    dns = json.loads(refreshed_path("rdap/dns.json").read_bytes())
    dns["services"].append([["org"], ["http://127.11.250.2:9/"]])  # nothing listens there
    write_refreshed("rdap/dns.json", json.dumps(dns).encode())
    unreachable = rdap.contacts(engine, "mirror.example.org", HOSTED, NOW)
    assert unreachable.parties["host"].address == "abuse@examplehost.net"
    [problem] = unreachable.problems
    assert problem.startswith("registrar: the RDAP server 127.11.250.2: ConnectError")
    assert rdap.contacts(engine, SITE, HOSTED, NOW).problems == ()


def test_a_redirect_to_an_internal_address_is_refused_naming_the_server(engine, server) -> None:
    found = rdap.contacts(engine, SITE, REDIRECTED, NOW)
    assert "host" not in found.parties and "registrar" in found.parties
    [problem] = found.problems
    assert problem.startswith("host: the RDAP server 127.11.250.1: blocked-address: 127.0.0.1")


@pytest.mark.parametrize(("ip", "why"), [
    (HUGE, "larger than 1000000 bytes"),
    (BROKEN, "not JSON"),
])
def test_an_answer_over_the_cap_or_not_json_is_a_problem_not_a_crash(engine, ip, why) -> None:
    found = rdap.contacts(engine, SITE, ip, NOW)
    assert "host" not in found.parties and found.parties["registrar"].address
    [problem] = found.problems
    assert problem.startswith("host: the RDAP server 127.11.250.1") and why in problem
    # Nothing is cached of a failed answer: the next call asks again.
    with engine.connect() as conn:
        assert conn.execute(select(rdap_cache).where(rdap_cache.c.subject == ip)).first() is None


@pytest.mark.parametrize(("ip", "why"), [
    (SEVERAL, "gives 2 addresses, not one"),
    (INJECTED, "contains control characters"),
])
def test_several_addresses_or_a_header_in_one_are_refused_saying_why(engine, ip, why) -> None:
    host = rdap.parties(engine, SITE, ip, NOW)["host"]
    assert host.address is None and why in (host.refused or "")


def test_an_email_that_is_not_text_is_refused_and_the_other_rungs_still_found(engine) -> None:
    found = rdap.contacts(engine, SITE, ODD_EMAIL, NOW)
    host = found.parties["host"]
    assert host.address is None and "not text" in (host.refused or "")
    assert found.parties["registrar"].address == "domain-abuse@registrar.example"


def test_json_nested_past_the_parser_is_a_problem_of_its_rung_not_a_crash(engine) -> None:
    found = rdap.contacts(engine, SITE, DEEP, NOW)
    assert "host" not in found.parties and found.parties["registrar"].address
    [problem] = found.problems
    assert problem.startswith("host: the RDAP server 127.11.250.1") and "not JSON" in problem


def test_a_name_with_a_unicode_line_break_is_not_taken(engine) -> None:
    host = rdap.parties(engine, SITE, LINE_SEPARATOR, NOW)["host"]
    assert "\u2028" not in host.name and "Bcc" not in host.name
    assert host.name == "LS-NET" and host.address == "abuse@ls.example"


def test_a_name_with_a_bidi_override_is_not_taken(engine) -> None:
    """A reviewer would read "Trusted Hosting GmbH" where the bytes say something else."""
    host = rdap.parties(engine, SITE, BIDI, NOW)["host"]
    assert host.name == "BIDI-NET" and host.address == "abuse@bidi.example"


def test_no_abuse_entity_is_no_address_and_nothing_refused(engine) -> None:
    host = rdap.parties(engine, SITE, NO_ABUSE, NOW)["host"]
    assert (host.name, host.address, host.refused, host.country) == (
        "Quiet Hosting Ltd", None, None, "SC")


def test_an_answer_is_asked_once_within_its_max_age_and_again_when_stale(
        engine, server, monkeypatch) -> None:
    monkeypatch.setenv("HAECHI_RDAP_MAX_AGE_HOURS", "24")
    rdap.parties(engine, SITE, HOSTED, NOW)
    later = rdap.parties(engine, SITE, HOSTED, NOW + dt.timedelta(hours=23))
    assert server.requests[f"/registry/ip/{HOSTED}"] == 1
    assert server.requests["/registry/domain/repost-site.com"] == 1
    assert later["host"].fetched_at == NOW  # the age of the cached answer
    stale = rdap.parties(engine, SITE, HOSTED, NOW + dt.timedelta(hours=25))
    assert server.requests[f"/registry/ip/{HOSTED}"] == 2
    assert stale["host"].fetched_at == NOW + dt.timedelta(hours=25)


def test_a_stale_answer_is_used_with_its_age_when_the_registry_cannot_answer(
        engine, server) -> None:
    rdap.parties(engine, SITE, HOSTED, NOW)
    path = f"/registry/ip/{HOSTED}"
    good = server.answers[path]
    server.answers[path] = Canned(b"<html>down for maintenance</html>", status=503)
    try:
        host = rdap.parties(engine, SITE, HOSTED, NOW + dt.timedelta(days=30))["host"]
    finally:
        server.answers[path] = good
    assert host.address == "abuse@examplehost.net" and host.fetched_at == NOW


def test_a_site_behind_cloudflare_is_fronted_by_it_and_has_no_host_rung(engine, server) -> None:
    found = rdap.contacts(engine, SITE, CLOUDFLARE_IP, NOW)
    front = found.parties["cdn"]
    assert (front.name, front.address, front.form_url, front.source) == (
        "Cloudflare", None, "https://abuse.cloudflare.com/", "cdn-ranges")
    assert "host" not in found.parties and found.parties["registrar"].name
    assert not any(path.startswith("/registry/ip/") for path in server.requests)


def test_the_shipped_files_carry_their_dates_and_route_to_the_registries() -> None:
    v4 = rdap.bootstrap("ipv4")
    assert v4.publication and v4.servers("8.8.8.8")[0] == "https://rdap.arin.net/registry/"
    assert rdap.bootstrap("ipv6").servers("2a00:1450::1") == ("https://rdap.db.ripe.net/",)
    assert rdap.bootstrap("dns").servers("example.com")[0].startswith("https://rdap.verisign")
    names = {front.name: front for front in cdn.load_cdns()}
    assert set(names) >= {"Cloudflare", "Fastly", "Amazon CloudFront"}
    assert cdn.fronting("151.101.1.140").name == "Fastly"
    assert cdn.fronting("13.32.1.1").name == "Amazon CloudFront"
    assert cdn.fronting("198.51.100.10") is None


def test_update_ranges_takes_good_lists_and_rejects_a_malformed_one(server) -> None:
    base = server.base
    server.answers.update({
        "/cf-v4": Canned(b"203.0.113.0/24\n"),  # not public: rejects Cloudflare's whole update
        "/cf-v6": Canned(b"2606:4700::/32\n"),
        "/fastly": Canned({"addresses": ["151.101.0.0/16"], "ipv6_addresses": ["2a04:4e42::/32"]}),
        "/cloudfront": Canned(b'{"CLOUDFRONT_GLOBAL_IP_LIST": ["13.32.0.0/15",'),
    })
    sources = {
        "Cloudflare": (cdn.Source(f"{base}/cf-v4"), cdn.Source(f"{base}/cf-v6")),
        "Fastly": (cdn.Source(f"{base}/fastly", ("addresses", "ipv6_addresses")),),
        "Amazon CloudFront": (cdn.Source(f"{base}/cloudfront", ("CLOUDFRONT_GLOBAL_IP_LIST",)),),
    }
    result = cdn.update_ranges(NOW, sources=sources)
    assert result.updated == ("Fastly",)
    assert "not on the public internet" in result.kept["Cloudflare"]
    assert "/cloudfront" in result.kept["Amazon CloudFront"]
    after = {front.name: front for front in cdn.load_cdns()}
    assert after["Fastly"].networks == (ipaddress.ip_network("151.101.0.0/16"),
                                       ipaddress.ip_network("2a04:4e42::/32"))
    assert after["Fastly"].fetched_at == NOW
    # The rejected lists lost nothing: the shipped ranges and their date are still there.
    assert cdn.fronting(CLOUDFLARE_IP).name == "Cloudflare"
    assert cdn.fronting("13.32.1.1").name == "Amazon CloudFront"
    assert after["Cloudflare"].fetched_at < NOW
    # The refreshed file keeps the publishers' URLs, not the mirror it was read from.
    assert "api.fastly.com" in refreshed_path(cdn.RANGES_FILE).read_text()


def test_a_list_nested_past_the_parser_is_kept_out_and_the_other_cdns_updated(server) -> None:
    deep = b'{"addresses": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    server.answers.update({"/deep": Canned(deep), "/cf-good": Canned(b"104.16.0.0/13\n")})
    result = cdn.update_ranges(NOW, sources={
        "Cloudflare": (cdn.Source(f"{server.base}/cf-good"),),
        "Fastly": (cdn.Source(f"{server.base}/deep", ("addresses",)),),
        "Amazon CloudFront": ()})
    assert result.updated == ("Cloudflare",)
    assert "/deep" in result.kept["Fastly"]
    assert cdn.fronting("151.101.1.140").name == "Fastly"
    outcome = rdap.update_bootstrap(urls={"ipv4": f"{server.base}/deep"})
    assert outcome["ipv4"].startswith("kept the current file")


def test_a_refreshed_file_that_no_longer_parses_falls_back_to_the_shipped_one() -> None:
    write_refreshed(cdn.RANGES_FILE, b'{"cdns": [{"name": "Cloudflare"')
    assert cdn.fronting(CLOUDFLARE_IP).name == "Cloudflare"


def test_update_bootstrap_keeps_the_current_file_when_the_new_one_is_malformed(server) -> None:
    server.answers.update({
        "/iana/ipv4.json": Canned({"publication": "2026-12-02T00:00:00Z", "services": [
            [["8.0.0.0/8"], ["https://rdap.example/"]]]}),
        "/iana/ipv6.json": Canned({"services": [[["10.0.0.0/8"], ["https://rdap.example/"]]]}),
    })
    outcome = rdap.update_bootstrap(urls={"ipv4": f"{server.base}/iana/ipv4.json",
                                          "ipv6": f"{server.base}/iana/ipv6.json"})
    assert outcome["ipv4"] == "publication 2026-12-02T00:00:00Z"
    assert outcome["ipv6"].startswith("kept the current file") and "not an ipv6" in outcome["ipv6"]
    assert rdap.bootstrap("ipv4").servers("8.8.8.8") == ("https://rdap.example/",)
    assert rdap.bootstrap("ipv6").servers("2a00::1") == ("https://rdap.db.ripe.net/",)


def test_the_contacts_command_prints_words_and_json(engine, capsys) -> None:
    assert main(["contacts", SITE, "--ip", SEVERAL, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["parties"]["host"]["refused"].startswith("the abuse contact gives 2")
    assert printed["parties"]["registrar"]["address"] == "domain-abuse@registrar.example"
    assert main(["contacts", SITE, "--ip", CLOUDFLARE_IP]) == 0
    words = capsys.readouterr().out
    assert "cdn: Cloudflare: web form https://abuse.cloudflare.com/" in words
    assert "registrar: Example Registrar, Inc.: domain-abuse@registrar.example" in words
    assert main(["contacts"]) == 2
