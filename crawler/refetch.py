"""Fetching one URL again outside a crawl: is a file seen earlier still online, and what is it
now? Used when a newly registered victim is found among earlier crawls (re-scan --recheck).

Same limits as the crawler (size cap while streaming, timeouts, redirects, no cookies) and the
same outbound policy (engines/fetch.py): every hop's address is checked before connecting,
and a refused one is the answer `blocked-address: ...`. Every failure is an answer (`error`),
never an exception.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import httpx

from crawler.settings import DOWNLOAD_MAXSIZE, DOWNLOAD_TIMEOUT, REDIRECT_MAX_TIMES, USER_AGENT
from engines.fetch import BlockedAddress, OutboundPolicy, default_policy


@dataclass(frozen=True)
class Refetch:
    url: str
    status: int | None = None
    body: bytes | None = None
    error: str | None = None

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.body).hexdigest() if self.body is not None else None


def refetch(url: str, client: httpx.Client) -> Refetch:
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                return Refetch(url, response.status_code)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > DOWNLOAD_MAXSIZE:
                    return Refetch(url, 200, error=f"larger than {DOWNLOAD_MAXSIZE} bytes")
                chunks.append(chunk)
            return Refetch(url, 200, b"".join(chunks))
    except BlockedAddress as exc:
        return Refetch(url, error=str(exc))
    except httpx.HTTPError as exc:
        return Refetch(url, error=f"{type(exc).__name__}: {exc}")


def client(policy: OutboundPolicy | None = None,
           max_redirects: int = REDIRECT_MAX_TIMES) -> httpx.Client:
    """The client of every fetch outside a crawl (`refetch`, the tracker): the crawler's
    timeout and User-Agent, so that a site sees one Haechi however it is reached, under
    `policy` (by default the process's, from HAECHI_FETCH_ALLOW)."""
    return (policy or default_policy()).client(
        timeout=DOWNLOAD_TIMEOUT, max_redirects=max_redirects,
        headers={"User-Agent": USER_AGENT})
