"""The matcher's Celery worker (cluster mode): hash a stored file, match it, emit events.

Tasks are acknowledged late, so a worker killed mid-file loses nothing: the broker hands the
task to another worker after the visibility timeout. A task is idempotent by the file's
SHA-256: hashes are cached in Redis under the SHA-256 (a file seen on many sites is hashed
once for the whole cluster) and a (file, URL) pair already matched is not matched again.
Each worker takes in newly registered victims within BANK_REFRESH_SECONDS, incrementally.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import time
from typing import Any

import numpy as np
import redis
from sqlalchemy.exc import SQLAlchemyError

from crawler.items import FetchRecord
from crawler.schedule import SiteSchedule
from engines.broker import MATCH_TASK, celery_app, redis_client
from engines.objects import open_store
from engines.sealed import media_bytes
from matcher.bank import VictimBank
from matcher.decode import UnreadableImage
from matcher.events import MatchEvent
from matcher.hasher import FrameHashes, ImageHasher, QueryHashes
from matcher.match import Matcher
from matcher.seen import SeenIndex
from matcher.streams import RedisStreamSink

app = celery_app("haechi-matcher")
BANK_REFRESH_SECONDS = 5.0
BANK_SYNC_KEY = "haechi:workers:bank"
CACHE_SECONDS = 30 * 24 * 3600
# A (file, URL) pair is matched once per this long: retries and duplicate dispatches are
# absorbed, while the next crawl cycle's visit (a re-upload after removal) is matched again.
MATCHED_SECONDS = 6 * 3600


def _encode(frames: list[FrameHashes] | str) -> str:
    if isinstance(frames, str):
        return json.dumps({"error": frames})
    return json.dumps({"frames": [
        {"second": f.second, "sha256": f.hashes.sha256,
         "codes": {alg: codes.tobytes().hex() + ":" + str(codes.shape[1])
                   for alg, codes in f.hashes.codes.items()}}
        for f in frames]})


def _decode(text: str) -> list[FrameHashes] | str:
    data = json.loads(text)
    if "error" in data:
        return data["error"]
    frames = []
    for frame in data["frames"]:
        codes = {}
        for alg, packed in frame["codes"].items():
            hexdata, width = packed.rsplit(":", 1)
            codes[alg] = np.frombuffer(bytes.fromhex(hexdata), np.uint8).reshape(-1, int(width))
        frames.append(FrameHashes(frame["second"], QueryHashes(frame["sha256"], codes)))
    return frames


class WorkerState:
    """What one worker process keeps between tasks."""

    def __init__(self) -> None:
        self.redis = redis_client()
        self.store = open_store()
        self.bank = VictimBank.open()
        self.matcher = Matcher(self.bank, ImageHasher())
        self.sink = RedisStreamSink(self.redis)
        self.seen = SeenIndex.open()
        self.schedule = SiteSchedule.from_env(self.redis)
        self.refreshed = float("-inf")  # refresh (and report) with the first task
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def refresh_bank_if_due(self) -> None:
        if time.monotonic() - self.refreshed >= BANK_REFRESH_SECONDS:
            self.bank.refresh()
            self.refreshed = time.monotonic()
            # Where each worker process stands, for `haechi cluster metrics` and the benchmark
            # of registration-to-every-worker delay.
            self.redis.hset(BANK_SYNC_KEY, self.name, f"{self.bank.taken_in()} {time.time():.3f}")

    def hashes(self, sha256: str, store_key: str) -> list[FrameHashes] | str:
        key = f"haechi:hashes:{sha256}"
        cached = self.redis.get(key)
        if cached is not None:
            return _decode(cached)
        try:
            frames: list[FrameHashes] | str = self.matcher.hasher.media_hashes(
                media_bytes(self.store, store_key))
        except UnreadableImage as exc:
            frames = str(exc)
        else:
            self.seen.record(sha256, frames)
        self.redis.set(key, _encode(frames), ex=CACHE_SECONDS)
        return frames


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
    frames = state.hashes(fetch.sha256, fetch.store_key)
    events = []
    if not isinstance(frames, str):
        now = dt.datetime.now(dt.UTC)
        events = [MatchEvent.of_fetch(fetch, m, now)
                  for m in state.matcher.match_frames(frames)]
        if events:
            state.sink.deliver(events)
            state.schedule.matched(fetch.site)
    state.redis.set(done, 1, ex=MATCHED_SECONDS)
    return len(events)
