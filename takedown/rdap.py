"""Abuse contacts from RDAP: who hosts a site's server, who registered its domain, and whether a
CDN fronts it. The escalation ladder climbs these rungs when a site ignores its notice.

RDAP (RFC 9082 queries, RFC 9083 JSON answers) is asked through engines/fetch, never through a
client library of its own: `whoisit`, the well-kept Python client, makes its requests with
`requests` (its own connections, redirects followed inside the library, bodies read whole),
which no outbound policy can stand between, and its bootstrap accepts https servers only and
all five IANA files at once. What it does beyond HTTP is small, so it is done here: the IANA
bootstrap (RFC 9224) picks the registry, one referral is followed from a domain registry to
the registrar's own server, and the JSON is read defensively.

Every answer is hostile until checked: it may be huge (the Fetcher's byte cap), not JSON, a
redirect or a referral to an internal address (the outbound policy), or it may name a list of
addresses or an address with a header in it (`email_address`, the same rule as a site's own
security.txt). An address RDAP gives is only a candidate for a reviewer to confirm; `refused`
says why one was not taken. A registry that cannot be reached is a `problem` in the result and
a warning in the log, never an exception for a caller working through many sites.

Answers are kept in `rdap_cache` with their age: within HAECHI_RDAP_MAX_AGE_HOURS a site's
registries are not asked again; a stale answer is asked again, and used (with its age) only if
the registry cannot answer now.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import tldextract
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from crawler.security_txt import (
    AddressRefused,
    email_address,
    mailto_address,
    plain_line,
)
from crawler.settings import USER_AGENT
from engines.fetch import Fetcher, FetchLimits, IPAddress, ip_literal
from engines.settings import current
from takedown import cdn
from takedown.published import (
    PublishedFileError,
    fetch_published,
    published_fetcher,
    read_published,
    write_refreshed,
)
from takedown.schema import rdap_cache

log = logging.getLogger(__name__)

HOST, CDN, REGISTRAR = "host", "cdn", "registrar"
RUNGS = (HOST, CDN, REGISTRAR)

# Real answers are a few kB to about 100 kB (an RIR network with many contacts); 1 MB leaves
# room and keeps a hostile server from filling memory or the cache table.
MAX_ANSWER_BYTES = 1_000_000
RDAP_LIMITS = FetchLimits(timeout=15.0, max_bytes=MAX_ANSWER_BYTES, max_redirects=3,
                          user_agent=USER_AGENT)
# A registry's answer may point at the registrar's server; the registrar's answer is not
# followed further (a chain of referrals is a hostile server's way to keep us busy).
MAX_REFERRALS = 1
# How deep and how many entities are read: real answers nest 2 or 3 deep with a handful each.
MAX_ENTITY_DEPTH = 4
MAX_ENTITIES = 200
MAX_NAME_CHARS = 200

BOOTSTRAP_URLS = {
    "dns": "https://data.iana.org/rdap/dns.json",
    "ipv4": "https://data.iana.org/rdap/ipv4.json",
    "ipv6": "https://data.iana.org/rdap/ipv6.json",
}
# The public suffix list as shipped inside tldextract: never fetched (no suffix_list_urls), so
# finding a site's registered domain reads nothing from the network.
_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class RdapError(Exception):
    """A registry that could not be asked or did not answer usably; names the party."""

    def __init__(self, party: str, reason: str) -> None:
        self.party, self.reason = party, reason
        super().__init__(f"{party}: {reason}")


@dataclass(frozen=True)
class Party:
    """One rung of the ladder: whom to ask, by e-mail or web form, and how old that is."""

    rung: str  # "host" | "cdn" | "registrar"
    name: str  # the network's, the CDN's or the registrar's name
    address: str | None  # the abuse e-mail, checked as any site-supplied address
    form_url: str | None  # where the party takes reports only by a web form
    source: str  # "rdap:ip" | "rdap:domain" | "cdn-ranges"
    country: str | None  # ISO 3166-1 alpha-2 where RDAP says it
    fetched_at: dt.datetime  # the age of the answer (cache)
    refused: str | None  # why an address the party offered was refused, if one was


@dataclass(frozen=True)
class Contacts:
    """What is known of a site's parties, and what could not be found out (`problems`)."""

    site: str
    domain: str | None
    server_ip: str | None
    parties: dict[str, Party]
    problems: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site, "domain": self.domain, "server_ip": self.server_ip,
            "parties": {rung: {**asdict(party), "fetched_at": party.fetched_at.isoformat()}
                        for rung, party in self.parties.items()},
            "problems": list(self.problems),
        }


# --- the bootstrap ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Bootstrap:
    """One IANA bootstrap file (RFC 9224): which RDAP servers answer for which TLDs or
    address ranges, and the date IANA published it."""

    kind: str  # "dns" | "ipv4" | "ipv6"
    publication: str | None
    services: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]

    def servers(self, subject: str | IPAddress) -> tuple[str, ...]:
        """The base URLs for `subject` (a domain or an address), https first: the longest
        matching TLD or range wins, as RFC 9224 says."""
        best: tuple[int, tuple[str, ...]] = (-1, ())
        for entries, urls in self.services:
            for entry in entries:
                length = self._match(entry, subject)
                if length > best[0]:
                    best = (length, urls)
        return tuple(sorted(best[1], key=lambda url: not url.startswith("https:")))

    def _match(self, entry: str, subject: str | IPAddress) -> int:
        if self.kind == "dns":
            name = str(subject)
            return entry.count(".") if name == entry or name.endswith("." + entry) else -1
        network = ipaddress.ip_network(entry)
        address = subject if not isinstance(subject, str) else ipaddress.ip_address(subject)
        if address.version == network.version and address in network:
            return network.prefixlen
        return -1


def parse_bootstrap(kind: str, data: bytes) -> Bootstrap:
    """A bootstrap file checked whole, or PublishedFileError: every entry a TLD or range of
    its kind, every server an http(s) URL."""
    where = f"the RDAP bootstrap file {kind}.json"
    try:
        document = json.loads(data)
        services = document["services"]
        if not isinstance(services, list) or not services:
            raise ValueError("no services")
        parsed = []
        for entries, urls, *_ in services:
            if not all(isinstance(e, str) for e in entries) or not urls:
                raise ValueError(f"a malformed service {str(entries)[:60]}")
            for entry in entries:
                if kind != "dns":
                    network = ipaddress.ip_network(entry)
                    if network.version != (4 if kind == "ipv4" else 6):
                        raise ValueError(f"{entry} is not an {kind} range")
            if not all(isinstance(u, str) and urllib.parse.urlsplit(u).scheme in ("http", "https")
                       and len(u) <= MAX_NAME_CHARS for u in urls):
                raise ValueError(f"a server of {str(entries)[:60]} is not an http(s) URL")
            parsed.append((tuple(e.lower().rstrip(".") for e in entries), tuple(urls)))
        publication = document.get("publication")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise PublishedFileError(f"{where}: {str(exc)[:200]}") from None
    return Bootstrap(kind, publication if isinstance(publication, str) else None, tuple(parsed))


def bootstrap(kind: str) -> Bootstrap:
    """The bootstrap file of `kind` as last refreshed, else as shipped."""
    return read_published(f"rdap/{kind}.json", lambda data: parse_bootstrap(kind, data))


def update_bootstrap(fetcher: Fetcher | None = None,
                     urls: Mapping[str, str] | None = None) -> dict[str, str]:
    """Fetch IANA's bootstrap files again (from `urls` when given) and keep each that parses;
    {kind: what happened} ("publication ..." or why the current one was kept)."""
    own = fetcher is None
    fetcher = fetcher or published_fetcher()
    outcome = {}
    try:
        for kind, url in (urls or BOOTSTRAP_URLS).items():
            try:
                data = fetch_published(url, fetcher)
                fresh = parse_bootstrap(kind, data)
            except PublishedFileError as exc:
                outcome[kind] = f"kept the current file: {exc}"
                continue
            write_refreshed(f"rdap/{kind}.json", data)
            outcome[kind] = f"publication {fresh.publication}"
    finally:
        if own:
            fetcher.close()
    return outcome


# --- asking and caching -----------------------------------------------------------------------

def registered_domain(site: str) -> str | None:
    """The domain a registrar registered for `site` ("www.example.co.uk" -> "example.co.uk"),
    by the public suffix list; the last two labels for a suffix the list does not know; None
    for a site known by its address."""
    host = site.strip().lower().rstrip(".")
    if not host or ip_literal(host) is not None:
        return None
    parts = _SUFFIXES(host)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    labels = host.split(".")
    return ".".join(labels[-2:]) if len(labels) >= 2 else None


@dataclass(frozen=True)
class Answer:
    """What the registries said of one subject: the registry's answer, then (for a domain)
    the registrar's it referred to, and why a referral could not be followed."""

    documents: tuple[dict[str, Any], ...]
    fetched_at: dt.datetime
    referral_problem: str | None = None


def _party_of(url: str) -> str:
    return f"the RDAP server {urllib.parse.urlsplit(url).hostname or url}"


def ask(fetcher: Fetcher, url: str) -> dict[str, Any]:
    """The JSON object `url` answers, or RdapError naming the server."""
    got = fetcher(url)
    if not got.whole:
        raise RdapError(_party_of(url), got.error or f"HTTP status {got.status}")
    try:
        document = json.loads(got.body)
    except (ValueError, RecursionError) as exc:  # nesting past the parser's recursion too
        raise RdapError(_party_of(url), f"not JSON ({str(exc)[:80]})") from None
    if not isinstance(document, dict):
        raise RdapError(_party_of(url), "not an RDAP object")
    return document


def referral(document: Mapping[str, Any], kind: str) -> str | None:
    """The registrar's RDAP URL a registry's answer links to (RFC 9083 section 4.2: rel
    "related", type application/rdap+json), or None."""
    links = document.get("links")
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "related":
            continue
        href, kind_of = link.get("href"), link.get("type")
        if isinstance(href, str) and f"/{kind}/" in href and (
                kind_of is None or "rdap+json" in str(kind_of)):
            return href
    return None


class Registries:
    """RDAP answers for addresses and domains, from the cache while fresh, else asked."""

    def __init__(self, engine: Engine, now: dt.datetime, fetcher: Fetcher,
                 max_age: dt.timedelta | None = None) -> None:
        self.engine, self.now, self.fetcher = engine, now, fetcher
        self.max_age = max_age or dt.timedelta(hours=current().rdap_max_age_hours)

    def answer(self, kind: str, subject: str) -> Answer:
        """The answer for `subject` ("ip" or "domain"); RdapError when there is none, fresh
        or stale. A stale answer is used only if asking again failed (a warning says so)."""
        cached = self._cached(kind, subject)
        if cached is not None and self.now - cached.fetched_at < self.max_age:
            return cached
        try:
            fresh = self._ask(kind, subject)
        except RdapError as exc:
            if cached is None:
                raise
            log.warning("RDAP for %s %s not renewed (%s): using the answer of %s", kind,
                        subject, exc, cached.fetched_at.isoformat())
            return cached
        self._keep(kind, subject, fresh)
        return fresh

    def _ask(self, kind: str, subject: str) -> Answer:
        if kind == "ip":
            address = ipaddress.ip_address(subject)
            servers = bootstrap(f"ipv{address.version}").servers(address)
        else:
            servers = bootstrap("dns").servers(subject)
        if not servers:
            raise RdapError("the RDAP bootstrap", f"no registry is known for {subject}")
        quoted = urllib.parse.quote(subject, safe=":.")
        document = ask(self.fetcher, f"{servers[0].rstrip('/')}/{kind}/{quoted}")
        documents, problem = [document], None
        link = referral(document, kind) if kind == "domain" and MAX_REFERRALS else None
        if link is not None:
            try:
                documents.append(ask(self.fetcher, link))
            except RdapError as exc:
                problem = f"the registry's referral was not followed: {exc}"
        return Answer(tuple(documents), self.now, problem)

    def _cached(self, kind: str, subject: str) -> Answer | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(rdap_cache.c.answer, rdap_cache.c.fetched_at).where(
                rdap_cache.c.kind == kind, rdap_cache.c.subject == subject)).first()
        if row is None or not isinstance(row.answer, dict):
            return None
        documents = row.answer.get("documents")
        if not isinstance(documents, list) or not documents:
            return None
        return Answer(tuple(documents), row.fetched_at, row.answer.get("referral_problem"))

    def _keep(self, kind: str, subject: str, answer: Answer) -> None:
        value = {"documents": list(answer.documents), "referral_problem": answer.referral_problem}
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(rdap_cache).where(rdap_cache.c.kind == kind,
                                                      rdap_cache.c.subject == subject))
                conn.execute(insert(rdap_cache).values(kind=kind, subject=subject, answer=value,
                                                       fetched_at=answer.fetched_at))
        except IntegrityError:  # another worker kept the same answer at the same moment
            log.info("RDAP answer for %s %s was cached by another process", kind, subject)


# --- reading RFC 9083 -------------------------------------------------------------------------

def _text(value: object) -> str | None:
    """A name as it may be shown and stored: one bounded line, else None. A line is broken
    by more than ASCII's control characters: NEL (U+0085) and the Unicode line and paragraph
    separators (U+2028, U+2029) end a line for Python's e-mail headers too, so a name
    carrying one would break the Subject of the notice it is written into."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_NAME_CHARS or not plain_line(value):
        return None
    return value


def _roles(entity: Mapping[str, Any]) -> set[str]:
    roles = entity.get("roles")
    return {r.lower() for r in roles if isinstance(r, str)} if isinstance(roles, list) else set()


def entities(holder: Mapping[str, Any], depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every entity under `holder`, depth first, within MAX_ENTITY_DEPTH."""
    children = holder.get("entities")
    if depth >= MAX_ENTITY_DEPTH or not isinstance(children, list):
        return
    for child in children[:MAX_ENTITIES]:
        if isinstance(child, dict):
            yield child
            yield from entities(child, depth + 1)


def vcard_values(entity: Mapping[str, Any], name: str) -> list[object]:
    """The values of property `name` in the entity's jCard (RFC 7095: ["vcard", [[name,
    params, type, value], ...]])."""
    card = entity.get("vcardArray")
    if not isinstance(card, list) or len(card) < 2 or not isinstance(card[1], list):
        return []
    return [prop[3] for prop in card[1][:MAX_ENTITIES]
            if isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str)
            and prop[0].lower() == name]


def entity_name(entity: Mapping[str, Any]) -> str | None:
    names = vcard_values(entity, "fn")
    return _text(names[0]) if names else _text(entity.get("handle"))


def abuse_address(holders: list[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """(address, refused) from the abuse entities under the first of `holders` that has any:
    exactly one plain address, or None and why. Several addresses are refused rather than
    picked from: which one is the abuse desk is for a reviewer to say."""
    for holder in holders:
        found = [e for e in entities(holder) if "abuse" in _roles(e)]
        if not found:
            continue
        values = [v for e in found for v in vcard_values(e, "email")]
        if any(not isinstance(v, str) for v in values):  # a list or object, not an address
            return None, "the abuse address is refused: not text"
        emails = list(dict.fromkeys(values))
        if not emails:
            return None, None
        if len(emails) > 1:
            return None, f"the abuse contact gives {len(emails)} addresses, not one"
        value = emails[0]
        try:
            if not isinstance(value, str):
                raise AddressRefused("not text")
            if value.lower().startswith("mailto:"):
                return mailto_address(value), None
            return email_address(value), None
        except AddressRefused as exc:
            return None, f"the abuse address is refused: {exc}"
    return None, None


def country_code(value: object) -> str | None:
    if isinstance(value, str) and len(value.strip()) == 2 and value.strip().isalpha() \
            and value.strip().isascii():
        return value.strip().upper()
    return None


def host_party(answer: Answer) -> Party:
    """The hosting network of an IP answer: its registrant's name (else the network's), its
    country, its abuse contact."""
    network = answer.documents[0]
    registrant = next((e for e in entities(network) if "registrant" in _roles(e)), None)
    name = (registrant and entity_name(registrant)) or _text(network.get("name")) \
        or _text(network.get("handle")) or "unnamed network"
    address, refused = abuse_address([network])
    return Party(HOST, name, address, None, "rdap:ip", country_code(network.get("country")),
                 answer.fetched_at, refused)


def registrar_party(answer: Answer) -> Party:
    """The registrar of a domain answer: the registrar's own server's answer first (it is
    the one that knows its abuse desk), the registry's next; an abuse entity nested under the
    registrar entity before any other."""
    registrars = [e for doc in reversed(answer.documents) for e in entities(doc)
                  if "registrar" in _roles(e)]
    name = next((n for n in map(entity_name, registrars) if n), None) or "unnamed registrar"
    address, refused = abuse_address([*registrars, *reversed(answer.documents)])
    return Party(REGISTRAR, name, address, None, "rdap:domain", None, answer.fetched_at, refused)


def cdn_party(front: cdn.Cdn) -> Party:
    return Party(CDN, front.name, front.address, front.form_url, "cdn-ranges", None,
                 front.fetched_at, None)


# --- the interface ----------------------------------------------------------------------------

def contacts(engine: Engine, site: str, server_ip: str | None, now: dt.datetime,
             fetcher: Fetcher | None = None) -> Contacts:
    """Every party of `site` that can be found, and the problems met on the way.

    The server address (from the crawl) is checked against the CDNs' ranges first: a fronted
    site's address is the CDN's, so its host rung is the CDN's own report process (which
    names the origin host), not an RDAP lookup of the CDN's network. The registrar comes from
    RDAP on the site's registered domain.
    """
    own = fetcher is None
    fetcher = fetcher or Fetcher(RDAP_LIMITS)
    registries = Registries(engine, now, fetcher)
    found: dict[str, Party] = {}
    problems: list[str] = []
    address = ip_literal(server_ip) if server_ip else None
    if server_ip and address is None:
        problems.append(f"{server_ip[:60]!r} is not an IP address")
    domain = registered_domain(site)
    try:
        if address is not None:
            front = cdn.fronting(address)
            if front is not None:
                found[CDN] = cdn_party(front)
            else:
                _climb(found, problems, HOST, lambda: host_party(
                    registries.answer("ip", str(address))))
        if domain is not None:
            _climb(found, problems, REGISTRAR, lambda: _registrar(registries, domain, problems))
    finally:
        if own:
            fetcher.close()
    for problem in problems:
        log.warning("contacts of %s: %s", site, problem)
    return Contacts(site, domain, str(address) if address else None, found, tuple(problems))


def _registrar(registries: Registries, domain: str, problems: list[str]) -> Party:
    answer = registries.answer("domain", domain)
    if answer.referral_problem:
        problems.append(answer.referral_problem)
    return registrar_party(answer)


def _climb(found: dict[str, Party], problems: list[str], rung: str,
           find: Callable[[], Party]) -> None:
    """Find one rung; a registry that cannot be asked is a problem of that rung only."""
    try:
        found[rung] = find()
    except (RdapError, PublishedFileError) as exc:
        problems.append(f"{rung}: {exc}")


def parties(engine: Engine, site: str, server_ip: str | None, now: dt.datetime
            ) -> dict[str, Party]:
    """The parties of `site` by rung ("host", "cdn", "registrar"); a rung that could not be
    found is missing (`contacts` says why, and so does the log)."""
    return contacts(engine, site, server_ip, now).parties
