"""A scheduler priority queue for crawling thousands of sites at once, fairly and cheaply.

Scrapy's DownloaderAwarePriorityQueue picks, on every pop, the site with the fewest active
downloads by scanning every site that has queued requests. With 20,000 sites queued that scan
dominated the whole crawl (one core at 100%, almost nothing fetched). This queue keeps the
same promise (a site whose download slots are full does not get more requests while others
wait) at a constant cost per pop: sites wait in round-robin rings, one ring per priority, and a
pop looks at no more than a few dozen sites of the best ring.

Within a site, the highest priority goes first (media before pages), and, at one priority,
requests found while crawling go before start requests, as in Scrapy's own queues. Requests are
kept in memory; cluster mode has its own shared scheduler (scrapy-redis).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler

# Sites looked at per pop before settling for the first one, when all of those are busy.
MAX_SCAN = 32

# (negated priority, 1 for a start request): smaller is served first.
Key = tuple[int, int]


class SiteFairPriorityQueue:
    """Round-robin over sites, priority-ordered within and across rings; see module docstring."""

    def __init__(self, crawler: Crawler, key: str = "") -> None:
        if key:
            raise ValueError("SiteFairPriorityQueue keeps requests in memory only; "
                             "unset JOBDIR to use it")
        self.crawler = crawler
        self.per_site = crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")
        self.heaps: dict[str, list[tuple[Key, int, Request]]] = {}
        self.rings: dict[Key, deque[str]] = {}
        self.ring_keys: list[Key] = []
        self.ring_of: dict[str, Key] = {}
        self.counter = itertools.count()
        self.size = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler, downstream_queue_cls: Any, key: str,
                     startprios: Any = None, *, start_queue_cls: Any = None
                     ) -> SiteFairPriorityQueue:
        return cls(crawler, key)

    # --- helpers --------------------------------------------------------------------------

    @property
    def downloader(self) -> Any:
        return self.crawler.engine.downloader

    def _slot_key(self, request: Request) -> str:
        return self.downloader.get_slot_key(request)

    def _busy(self, site: str) -> bool:
        slot = self.downloader.slots.get(site)
        if slot is None:
            return False
        return len(slot.active) >= (slot.concurrency or self.per_site)

    def _enter_ring(self, site: str) -> None:
        key = self.heaps[site][0][0]
        self.ring_of[site] = key
        ring = self.rings.get(key)
        if ring is None:
            ring = self.rings[key] = deque()
            heapq.heappush(self.ring_keys, key)
        ring.append(site)

    # --- the queue protocol ---------------------------------------------------------------

    def push(self, request: Request) -> None:
        site = self._slot_key(request)
        key: Key = (-request.priority, 1 if request.meta.get("is_start_request") else 0)
        heap = self.heaps.get(site)
        if heap is None:
            heap = self.heaps[site] = []
        better = not heap or key < heap[0][0]
        heapq.heappush(heap, (key, next(self.counter), request))
        self.size += 1
        if better:
            # A stale entry in the old ring is skipped when it comes up.
            self._enter_ring(site)

    def pop(self) -> Request | None:
        while self.ring_keys:
            key = self.ring_keys[0]
            ring = self.rings[key]
            chosen = None
            scanned = 0
            first_idle = None
            while ring and scanned < MAX_SCAN:
                site = ring.popleft()
                if self.ring_of.get(site) != key:
                    continue  # stale: the site moved to a better ring
                scanned += 1
                if not self._busy(site):
                    first_idle = site
                    break
                ring.append(site)
            if first_idle is not None:
                chosen = first_idle
            elif scanned:
                # Every site looked at is busy: serve the longest-waiting one anyway rather
                # than leave the downloader idle.
                while ring:
                    site = ring.popleft()
                    if self.ring_of.get(site) == key:
                        chosen = site
                        break
            if chosen is None:
                heapq.heappop(self.ring_keys)
                del self.rings[key]
                continue
            return self._take(chosen)
        return None

    def _take(self, site: str) -> Request:
        heap = self.heaps[site]
        _, _, request = heapq.heappop(heap)
        self.size -= 1
        if heap:
            self._enter_ring(site)
        else:
            del self.heaps[site]
            del self.ring_of[site]
        return request

    def peek(self) -> Request | None:
        raise NotImplementedError

    def close(self) -> dict:
        self.heaps.clear()
        self.rings.clear()
        return {}

    def __len__(self) -> int:
        return self.size
