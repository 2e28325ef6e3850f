"""The matcher's Celery worker (cluster mode): hash a stored file, match it, emit events.

Tasks are acknowledged late, so a worker killed mid-file loses nothing: the broker hands the
task to another worker after the visibility timeout. A task is idempotent by the file's
SHA-256: hashes are cached in Redis under the SHA-256 (a file seen on many sites is hashed
once for the whole cluster) and a (file, URL) pair already matched is not matched again.
Each worker takes in newly registered victims within BANK_REFRESH_SECONDS, incrementally.
What is done with the hashes is the embedded crawl's match step (matcher/step.py).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from crawler.items import FetchRecord
from crawler.run import crawl_settings
from engines.broker import MATCH_TASK, celery_app, redis_client
from engines.objects import open_store
from engines.sealed import media_bytes
from matcher.bank import VictimBank
from matcher.decode import UnreadableImage
from matcher.events import load_sinks
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from matcher.seen import SeenIndex
from matcher.step import Hashed, MatchStep, RedisHashCache

app = celery_app("haechi-matcher")
BANK_REFRESH_SECONDS = 5.0
BANK_SYNC_KEY = "haechi:workers:bank"
CACHE_SECONDS = 30 * 24 * 3600
# A (file, URL) pair is matched once per this long: retries and duplicate dispatches are
# absorbed, while the next crawl cycle's visit (a re-upload after removal) is matched again.
MATCHED_SECONDS = 6 * 3600
# Where a worker's match events go, named in the MATCH_EVENT_SINKS setting as an embedded
# crawl's are (and overridden the same way, HAECHI_SCRAPY_MATCH_EVENT_SINKS): the stream that
# any case system reads, and the crawler's schedule, which then visits the site more often.
WORKER_SINKS = ["matcher.streams.RedisStreamSink", "crawler.schedule.ScheduleFeedbackSink"]


class WorkerState:
    """What one worker process keeps between tasks."""

    def __init__(self) -> None:
        self.redis = redis_client()
        self.store = open_store()
        self.bank = VictimBank.open()
        self.hasher = ImageHasher()
        self.step = MatchStep(Matcher(self.bank, self.hasher), SeenIndex.open(),
                              RedisHashCache(self.redis, CACHE_SECONDS),
                              load_sinks(crawl_settings({"MATCH_EVENT_SINKS": WORKER_SINKS})))
        self.refreshed = float("-inf")  # refresh (and report) with the first task
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def refresh_bank_if_due(self) -> None:
        if time.monotonic() - self.refreshed >= BANK_REFRESH_SECONDS:
            self.bank.refresh()
            self.refreshed = time.monotonic()
            # Where each worker process stands, for `haechi cluster metrics` and the benchmark
            # of registration-to-every-worker delay.
            self.redis.hset(BANK_SYNC_KEY, self.name, f"{self.bank.taken_in()} {time.time():.3f}")

    def hash_stored(self, fetch: FetchRecord) -> Hashed:
        """The hashes of the fetched file's stored copy, or why it has none."""
        if fetch.store_key is None:  # the crawler dispatches stored files only
            raise ValueError(f"no stored copy of {fetch.url} to match")
        try:
            return self.hasher.media_hashes(media_bytes(self.store, fetch.store_key))
        except UnreadableImage as exc:
            return str(exc)


_state: WorkerState | None = None


def worker_state() -> WorkerState:
    global _state
    if _state is None:
        _state = WorkerState()
    return _state


@app.task(name=MATCH_TASK, bind=True, acks_late=True,
          autoretry_for=(OSError, redis.RedisError, SQLAlchemyError),
          retry_backoff=True, retry_backoff_max=300, max_retries=10)
def match_stored_file(self: Any, record: dict[str, Any]) -> int:
    """Match one stored file (`record` is its FetchRecord as JSON); returns how many match
    events it emitted."""
    fetch = FetchRecord.from_json(record)
    state = worker_state()
    state.refresh_bank_if_due()
    url_digest = hashlib.sha256(fetch.url.encode()).hexdigest()[:32]
    done = f"haechi:matched:{fetch.sha256}:{url_digest}"
    if state.redis.exists(done):
        return 0
    hashed = state.step.known(fetch.sha256)
    if hashed is None:
        hashed = state.hash_stored(fetch)
        state.step.learn(fetch.sha256, hashed)
    events = state.step.match(fetch, hashed)
    state.redis.set(done, 1, ex=MATCHED_SECONDS)
    return len(events)
