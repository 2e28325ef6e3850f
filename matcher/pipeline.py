"""The matcher's Scrapy item pipeline: hash each stored file, search the bank, emit events.

Runs after the crawler's store pipeline (crawl → store → hash). Hashing is CPU work, so it runs
in a pool of worker processes while the crawl goes on; the bank search is fast and stays in
this process, next to the index. What is done with the hashes (cache, seen index, match,
events) is the match step a cluster's workers take too (matcher/step.py); a file fetched again
(same SHA-256) is not hashed again.

A hashing process can die (the OOM killer, a crash in a decoder): the pool is then broken for
every file in it. The pool is rebuilt and each of those files is hashed again alone, in a
one-process quarantine pool, so the file that kills its process dies alone and is counted as
an error (`worker-lost`), while the others are matched as if nothing happened.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from scrapy.crawler import Crawler

from crawler.items import FetchedMedia
from matcher.bank import VictimBank
from matcher.events import MatchEventSink, load_sinks
from matcher.hasher import hash_in_process
from matcher.match import Matcher
from matcher.seen import SeenIndex
from matcher.step import Hashed, MatchStep, MemoryHashCache

# Hashes of this many recent files are kept, so a file seen on many pages is hashed once.
HASH_CACHE_SIZE = 50_000

logger = logging.getLogger(__name__)
# Why a file has no hashes when its process died on it twice (counted as worker-lost).
WORKER_LOST = "the hashing process died on this file twice (killed, or out of memory)"


def abandon(pool: ProcessPoolExecutor) -> None:
    """Let a broken pool go without it ever holding this process, by killing what is left of it.

    When a worker dies, the pool's manager thread fails the futures, terminates the workers
    it knows and then joins every one. CPython 3.11 can have spawned another worker by then (a
    submit racing the manager), which never got the terminate; it waits for the call queue's
    read lock that a killed worker died holding, and the manager joins it forever (and, with it
    alive, the queue's feeder can block on a pipe nobody reads). At exit the interpreter joins
    the manager: a crawl that lost a worker never exited, and CI once waited out its time after
    every test passed. Caught with py-spy on a probe (workers killed, six files queued): about
    one run in four hung so. Killing every process of the broken pool until its manager ends
    unblocks both joins; the futures failed already, and their files go to quarantine."""
    processes = getattr(pool, "_processes", None)  # the pool's own dict: late spawns too
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    if manager is None or processes is None:
        return

    def reap() -> None:
        while manager.is_alive():
            for process in list(processes.values()):
                process.kill()  # a no-op once reaped: no signal to a reused pid
            manager.join(0.1)

    threading.Thread(target=reap, name="haechi-reap-broken-pool", daemon=True).start()


class MatchPipeline:
    """Hashes FetchedMedia items in its pool and counts what the match step makes of them."""

    # What runs in the pool processes (a module-level function, as "spawn" needs).
    hash_file = staticmethod(hash_in_process)

    def __init__(self, crawler: Crawler, matcher: Matcher, sinks: list[MatchEventSink],
                 workers: int, seen: SeenIndex) -> None:
        self.crawler = crawler
        self.step = MatchStep(matcher, seen, MemoryHashCache(HASH_CACHE_SIZE), sinks)
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        self.quarantine: ProcessPoolExecutor | None = None
        self.quarantine_lock = asyncio.Lock()
        self.waiting = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MatchPipeline:
        settings = crawler.settings
        bank = VictimBank.open(settings.get("DATABASE_URL") or None)
        workers = settings.getint("HASH_WORKERS") or os.cpu_count() or 1
        return cls(crawler, Matcher(bank), load_sinks(settings), workers,
                   SeenIndex.open(settings.get("DATABASE_URL") or None))

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        # "spawn": the crawl runs threads (reactor, DNS, store), which must not be forked.
        return ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"))

    def open_spider(self) -> None:
        self.pool = self._new_pool(self.workers)

    def close_spider(self) -> None:
        for pool in (self.pool, self.quarantine):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _replace_broken(self, broken: ProcessPoolExecutor) -> None:
        """A new main pool in place of `broken`, once however many files saw it break."""
        if self.pool is broken:
            self.count("workers_restarted")
            logger.error("a hashing process died; the pool is rebuilt and its files are "
                         "hashed again one by one")
            abandon(broken)
            self.pool = self._new_pool(self.workers)

    async def _hash(self, data: bytes) -> Hashed:
        """The file's hashes (or why there are none), surviving the death of a worker."""
        loop = asyncio.get_running_loop()
        pool = self.pool
        assert pool is not None
        try:
            return await loop.run_in_executor(pool, self.hash_file, data)
        except BrokenProcessPool:
            self._replace_broken(pool)
        async with self.quarantine_lock:
            if self.quarantine is None:
                self.quarantine = self._new_pool(1)
            try:
                return await loop.run_in_executor(self.quarantine, self.hash_file, data)
            except BrokenProcessPool:
                abandon(self.quarantine)
                self.quarantine = None
                self.count("errors/worker-lost")
                return WORKER_LOST

    def count(self, key: str, amount: int = 1) -> None:
        self.crawler.stats.inc_value(f"haechi/{key}", amount)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchedMedia):
            return item
        # How many files wait here at most: what back-pressure holds them to (see
        # crawler/backpressure.py), and the first thing to look at when detection lags.
        self.waiting += 1
        self.crawler.stats.max_value("haechi/files_waiting_max", self.waiting)
        try:
            return await self._process_file(item)
        finally:
            self.waiting -= 1

    async def _process_file(self, item: FetchedMedia) -> FetchedMedia:
        hashed = self.step.known(item.sha256)
        if hashed is None:
            hashed = await self._hash(item.body or b"")
            self.count("files_hashed")
            self.step.learn(item.sha256, hashed)
        item.body = None
        if hashed == WORKER_LOST:
            logger.error("worker lost: %s (%s)", item.url, hashed)
            return item
        if isinstance(hashed, str):
            self.count("errors/unreadable")
            self.crawler.spider.logger.warning("unreadable: %s (%s)", item.url, hashed)
            return item
        events = self.step.match(item, hashed)
        if events:
            self.count("matches", len(events))
        return item
