"""Whether a CDN fronts a site: its server address in a CDN's published IP ranges.

A site behind a CDN shows the CDN's address, not its host's: RDAP on that address names the
CDN, and the host stays hidden until the CDN names it (Cloudflare does so to a complainant).
So a fronted site's ladder goes through the CDN, in the way the CDN takes reports: Cloudflare
only by its web form, Fastly and CloudFront by e-mail as well.

The ranges and the contacts are in takedown/data/cdn-ranges.json (each CDN's published list,
its URL and when the copy was made); `update_ranges` refreshes the lists from those URLs
through engines/fetch (takedown/published.py keeps the shipped copy if a list is malformed).
The contacts are ours, written in the file by hand, never taken from a fetched list.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from crawler.security_txt import CONTROL_CHARACTERS, AddressRefused, email_address
from engines.fetch import Fetcher, IPAddress, IPNetwork, refusal
from takedown.published import (
    PublishedFileError,
    fetch_published,
    published_fetcher,
    read_published,
    write_refreshed,
)

RANGES_FILE = "cdn-ranges.json"
# A CDN's list holds tens to a few hundred ranges; far more is not a CDN's list.
MAX_RANGES_PER_LIST = 10_000
# The widest range a CDN may claim: a list that says 0.0.0.0/0 (or a /4) would make every site
# "fronted" and send every notice to that CDN.
WIDEST_PREFIX = {4: 8, 6: 16}
MAX_TEXT = 200


@dataclass(frozen=True)
class Source:
    """One published list: its URL, and the JSON keys holding its ranges (None: the body is
    one range per line, as Cloudflare publishes them)."""

    url: str
    keys: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Cdn:
    name: str
    address: str | None  # where it takes abuse reports by e-mail, checked as any address
    form_url: str | None  # where it takes them by web form
    sources: tuple[Source, ...]
    fetched_at: dt.datetime  # when this copy of its lists was made
    networks: tuple[IPNetwork, ...]

    def fronts(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)


def _bounded_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT \
            or CONTROL_CHARACTERS.search(value):
        raise PublishedFileError(f"{RANGES_FILE}: {what} is not a line of text")
    return value.strip()


def cdn_network(text: object) -> IPNetwork:
    """One range of a published list, or PublishedFileError: a public network no wider than
    WIDEST_PREFIX."""
    if not isinstance(text, str):
        raise PublishedFileError(f"{text!r} is not an address range")
    try:
        network = ipaddress.ip_network(text.strip())
    except ValueError as exc:
        raise PublishedFileError(f"{text[:60]!r} is not an address range ({exc})") from None
    if network.prefixlen < WIDEST_PREFIX[network.version]:
        raise PublishedFileError(f"{network} is wider than a CDN's range can be")
    why = refusal(network.network_address)
    if why is not None:
        raise PublishedFileError(f"{network} is not on the public internet ({why})")
    return network


def parse_range_list(body: bytes, source: Source) -> tuple[IPNetwork, ...]:
    """The ranges of one published list, or PublishedFileError naming its URL: every entry
    must be a range (one bad line rejects the list: a list we cannot read whole is not the
    list), and an empty list is rejected too."""
    try:
        if source.keys is None:
            entries: list[object] = [line for line in body.decode("utf-8").splitlines()
                                     if line.strip() and not line.lstrip().startswith("#")]
        else:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise PublishedFileError("not a JSON object")
            entries = []
            for key in source.keys:
                values = document.get(key)
                if not isinstance(values, list):
                    raise PublishedFileError(f"no list under {key!r}")
                entries.extend(values)
        if not entries or len(entries) > MAX_RANGES_PER_LIST:
            raise PublishedFileError(f"{len(entries)} ranges (expected 1 to "
                                     f"{MAX_RANGES_PER_LIST})")
        return tuple(cdn_network(entry) for entry in entries)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # JSONDecodeError and ours are ValueErrors; JSON nested past the parser's recursion
        # is a RecursionError, and as much the publisher's fault as a truncated file.
        raise PublishedFileError(f"{source.url}: {str(exc)[:200]}") from None


def _address(value: object, name: str) -> str | None:
    if value is None:
        return None
    try:
        return email_address(_bounded_text(value, f"{name}'s address"))
    except AddressRefused as exc:
        raise PublishedFileError(f"{RANGES_FILE}: {name}'s address: {exc}") from None


def _source(entry: object) -> Source:
    if not isinstance(entry, dict):
        raise PublishedFileError(f"{RANGES_FILE}: a source is not an object")
    url = _bounded_text(entry.get("url"), "a source URL")
    keys = entry.get("keys")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise PublishedFileError(f"{RANGES_FILE}: the keys of {url} are not a list of names")
    return Source(url, None if keys is None else tuple(keys))


def _cdn(entry: object) -> Cdn:
    if not isinstance(entry, dict):
        raise PublishedFileError(f"{RANGES_FILE}: a CDN is not an object")
    name = _bounded_text(entry.get("name"), "a CDN's name")
    form_url = entry.get("form_url")
    try:
        fetched_at = dt.datetime.fromisoformat(_bounded_text(entry.get("fetched_at"),
                                                             f"{name}'s date"))
    except ValueError:
        raise PublishedFileError(f"{RANGES_FILE}: {name}'s date is not a date") from None
    ranges = entry.get("ranges")
    if not isinstance(ranges, list) or not ranges:
        raise PublishedFileError(f"{RANGES_FILE}: {name} has no ranges")
    return Cdn(
        name=name,
        address=_address(entry.get("address"), name),
        form_url=None if form_url is None else _bounded_text(form_url, f"{name}'s form"),
        sources=tuple(_source(s) for s in entry.get("sources") or []),
        fetched_at=fetched_at if fetched_at.tzinfo else fetched_at.replace(tzinfo=dt.UTC),
        networks=tuple(cdn_network(r) for r in ranges),
    )


def parse_ranges_file(data: bytes) -> tuple[Cdn, ...]:
    """The CDNs of a cdn-ranges.json, or PublishedFileError."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PublishedFileError(f"{RANGES_FILE}: not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("cdns"), list):
        raise PublishedFileError(f"{RANGES_FILE}: no list of CDNs")
    return tuple(_cdn(entry) for entry in document["cdns"])


def load_cdns() -> tuple[Cdn, ...]:
    """The CDNs as last refreshed, else as shipped."""
    return read_published(RANGES_FILE, parse_ranges_file)


def fronting(address: str | IPAddress, cdns: Sequence[Cdn] | None = None) -> Cdn | None:
    """The CDN whose ranges hold `address`, or None."""
    if isinstance(address, str):
        address = ipaddress.ip_address(address)
    return next((cdn for cdn in (load_cdns() if cdns is None else cdns)
                 if cdn.fronts(address)), None)


def _as_json(cdn: Cdn) -> dict:
    return {
        "name": cdn.name, "address": cdn.address, "form_url": cdn.form_url,
        "sources": [{"url": s.url, "keys": None if s.keys is None else list(s.keys)}
                    for s in cdn.sources],
        "fetched_at": cdn.fetched_at.isoformat(),
        "ranges": [str(n) for n in cdn.networks],
    }


@dataclass(frozen=True)
class RangesUpdate:
    """What `update_ranges` did: the CDNs whose lists were replaced, and why the others were
    kept as they were."""

    updated: tuple[str, ...]
    kept: dict[str, str]


def update_ranges(now: dt.datetime, fetcher: Fetcher | None = None,
                  sources: dict[str, tuple[Source, ...]] | None = None) -> RangesUpdate:
    """Fetch each CDN's published lists again (from `sources` when given: a mirror, or a
    test's server) and keep the refreshed file in the data folder.

    A CDN is updated only when every one of its lists was fetched whole and parsed; otherwise
    its current ranges stay, and `kept` says why. The contacts are never taken from a list.
    """
    cdns = load_cdns()
    updated: list[str] = []
    kept: dict[str, str] = {}
    own = fetcher is None
    fetcher = fetcher or published_fetcher()
    try:
        refreshed = []
        for cdn in cdns:
            lists = (sources or {}).get(cdn.name, cdn.sources)
            try:
                if not lists:
                    raise PublishedFileError("no published list")
                networks = tuple(n for source in lists
                                 for n in parse_range_list(fetch_published(source.url, fetcher),
                                                           source))
            except PublishedFileError as exc:
                kept[cdn.name] = str(exc)
                refreshed.append(cdn)
                continue
            refreshed.append(replace(cdn, networks=networks, fetched_at=now))
            updated.append(cdn.name)
    finally:
        if own:
            fetcher.close()
    if updated:
        document = {"cdns": [_as_json(cdn) for cdn in refreshed]}
        write_refreshed(RANGES_FILE, json.dumps(document, indent=1).encode())
    return RangesUpdate(tuple(updated), kept)
