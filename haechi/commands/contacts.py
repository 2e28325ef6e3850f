"""`haechi contacts`: whom to ask, rung by rung, when a site ignores its notice.

`haechi contacts SITE [--ip ADDR]` prints the site's hosting network, CDN and registrar with
their abuse contacts (takedown/rdap.py); every address is a candidate for a reviewer, never a
recipient by itself. `haechi contacts --update` refreshes the shipped published files (the
CDNs' IP ranges, IANA's RDAP bootstrap) from their publishers.
"""

from __future__ import annotations

import argparse
import json
import socket

from haechi.commands import UsageError


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    contacts = subparsers.add_parser(
        "contacts", help="a site's abuse contacts: hosting network, CDN and registrar (RDAP)")
    contacts.add_argument("site", nargs="?", help="the site's host name, e.g. example.com")
    contacts.add_argument("--ip", help="the site's server address (default: the address its "
                          "name resolves to now)")
    contacts.add_argument("--json", action="store_true", help="print JSON for machines")
    contacts.add_argument("--update", action="store_true", help="refresh the CDN ranges and "
                          "the RDAP bootstrap files from their publishers, then stop")
    contacts.set_defaults(run=run_contacts)


def _server_ip(site: str) -> str | None:
    """The first address `site` resolves to now (a DNS lookup only: nothing is fetched)."""
    try:
        return socket.getaddrinfo(site, 443, type=socket.SOCK_STREAM)[0][4][0]
    except (socket.gaierror, IndexError, UnicodeError):
        return None


def run_contacts(args: argparse.Namespace) -> int:
    if args.update:
        return _update(args)
    if not args.site:
        raise UsageError("name a site (haechi contacts example.com), or give --update")
    from takedown.cases import system_clock
    from takedown.database import takedown_engine
    from takedown.rdap import contacts

    found = contacts(takedown_engine(), args.site, args.ip or _server_ip(args.site),
                     system_clock())
    if args.json:
        print(json.dumps(found.as_json()))
        return 0
    print(f"{found.site}: server {found.server_ip or 'unknown'}, domain "
          f"{found.domain or 'unknown'}")
    for rung, party in found.parties.items():
        where = party.address or (f"web form {party.form_url}" if party.form_url else
                                  "no address")
        country = f", {party.country}" if party.country else ""
        print(f"  {rung}: {party.name}{country}: {where} (from {party.source}, "
              f"{party.fetched_at:%Y-%m-%d %H:%M} UTC)")
        if party.address and party.form_url:
            print(f"    also a web form: {party.form_url}")
        if party.refused:
            print(f"    not used: {party.refused}")
    for problem in found.problems:
        print(f"  could not find out: {problem}")
    print("Every address here is a candidate: a reviewer confirms it before a notice is sent.")
    return 0


def _update(args: argparse.Namespace) -> int:
    from takedown.cases import system_clock
    from takedown.cdn import update_ranges
    from takedown.rdap import update_bootstrap

    ranges = update_ranges(system_clock())
    bootstraps = update_bootstrap()
    if args.json:
        print(json.dumps({"ranges": {"updated": list(ranges.updated), "kept": ranges.kept},
                          "bootstrap": bootstraps}))
    else:
        for name in ranges.updated:
            print(f"{name}: ranges updated")
        for name, why in ranges.kept.items():
            print(f"{name}: ranges kept as they were ({why})")
        for kind, what in bootstraps.items():
            print(f"RDAP bootstrap {kind}.json: {what}")
    return 0
