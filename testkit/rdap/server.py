"""A local RDAP server speaking RFC 9083 JSON, run in a thread of the test process.

It answers from a table of canned answers (path -> `Canned`), so a test says exactly what each
registry says, hostile answers included (a redirect to loopback, a body over the cap, broken
JSON), and it counts the requests it serves per path, so a test can tell a cached answer from
one asked again. It listens on RDAP_HOST, inside the test web's HAECHI_FETCH_ALLOW block
(testkit/testweb/model.py) and outside its sites' addresses; 127.0.0.1, where a referral to
"an internal address" points, stays refused by the outbound policy.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# Past the last test-web site (127.11.249.250) and inside FETCH_ALLOW's 127.10.0.0/15.
RDAP_HOST = "127.11.250.1"
RDAP_JSON = "application/rdap+json"


@dataclass(frozen=True)
class Canned:
    """One answer: a JSON document (or raw bytes), a status, and a redirect target."""

    body: Any = None
    status: int = 200
    location: str | None = None

    def response(self) -> web.StreamResponse:
        if self.location is not None:
            return web.Response(status=self.status, headers={"Location": self.location})
        data = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        return web.Response(status=self.status, body=data, content_type=RDAP_JSON)


def jcard(name: str, *emails: str, kind: str = "org") -> list[Any]:
    """An RFC 7095 jCard with a formatted name and each of `emails`."""
    props: list[list[Any]] = [["version", {}, "text", "4.0"], ["fn", {}, "text", name],
                              ["kind", {}, "text", kind]]
    props += [["email", {}, "text", email] for email in emails]
    return ["vcard", props]


def entity(handle: str, roles: list[str], name: str, *emails: str,
           children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"objectClassName": "entity", "handle": handle, "roles": roles,
                             "vcardArray": jcard(name, *emails)}
    if children:
        found["entities"] = children
    return found


def ip_network(start: str, name: str, country: str,
               entities: list[dict[str, Any]]) -> dict[str, Any]:
    """An IP network answer (RFC 9083 section 5.4)."""
    return {"rdapConformance": ["rdap_level_0"], "objectClassName": "ip network",
            "handle": f"NET-{start}", "startAddress": start, "endAddress": start,
            "ipVersion": "v4", "name": name, "country": country, "entities": entities}


def domain(name: str, entities: list[dict[str, Any]], related: str | None = None
           ) -> dict[str, Any]:
    """A domain answer (RFC 9083 section 5.3), linking to the registrar's server when
    `related` is given, as thin registries do."""
    found: dict[str, Any] = {"rdapConformance": ["rdap_level_0"], "objectClassName": "domain",
                             "ldhName": name, "entities": entities, "links": []}
    if related:
        found["links"].append({"value": related, "rel": "related", "href": related,
                               "type": RDAP_JSON})
    return found


class RdapServer:
    """`with RdapServer() as rdap:` serves `rdap.answers` at `rdap.base`; `rdap.requests`
    counts the requests per path."""

    def __init__(self, host: str = RDAP_HOST) -> None:
        self.host = host
        self.port = 0
        self.answers: dict[str, Canned] = {}
        self.requests: collections.Counter[str] = collections.Counter()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path] += 1
        canned = self.answers.get(request.path)
        if canned is None:
            return web.json_response({"errorCode": 404, "title": "not found"}, status=404)
        return canned.response()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def __enter__(self) -> RdapServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def bootstrap_files(self, tld: str, network: str) -> dict[str, dict[str, Any]]:
        """IANA-shaped bootstrap files (RFC 9224) sending `tld` and `network` to this
        server's /registry/, and nothing else anywhere."""
        registry = [f"{self.base}/registry/"]

        def file(kind: str, entries: list[str]) -> dict[str, Any]:
            return {"description": f"test bootstrap ({kind})", "version": "1.0",
                    "publication": "2026-12-01T00:00:00Z", "services": [[entries, registry]]}

        return {"dns": file("dns", [tld]), "ipv4": file("ipv4", [network]),
                "ipv6": file("ipv6", ["2001:db8::/32"])}
