"""The matching step: what is done with a fetched file's hashes, wherever it was hashed.

An embedded crawl hashes in its pool of processes (matcher/pipeline.py), a cluster worker in
its own process (matcher/tasks.py); both then go through this one step. A file fetched again
(same SHA-256) is not hashed again: its hashes, or why it has none, are kept in a hash cache,
in this process for an embedded crawl and in Redis, shared by every worker, in a cluster. New
hashes go into the seen index, so a victim who registers later is found in what was crawled;
the hashes are matched in the bank, and the match events handed to every sink.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from crawler.items import FetchRecord
from matcher.events import MatchEvent, MatchEventSink, first_second
from matcher.hasher import FrameHashes, QueryHashes
from matcher.match import Matcher
from matcher.seen import SeenIndex

if TYPE_CHECKING:  # the embedded crawl's hashing processes import this module, not Redis
    import redis

# A file's hashes, frame by frame, or the sentence saying why it has none (it cannot be read).
Hashed = list[FrameHashes] | str


class HashCache(Protocol):
    """The hashes of files already hashed, by SHA-256."""

    def get(self, sha256: str) -> Hashed | None: ...

    def put(self, sha256: str, hashed: Hashed) -> None: ...


class MemoryHashCache:
    """The most recently used `size` files' hashes, in this process (an embedded crawl)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[str, Hashed] = OrderedDict()

    def get(self, sha256: str) -> Hashed | None:
        hashed = self.entries.get(sha256)
        if hashed is not None:
            self.entries.move_to_end(sha256)
        return hashed

    def put(self, sha256: str, hashed: Hashed) -> None:
        self.entries[sha256] = hashed
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


class RedisHashCache:
    """Hashes shared by every worker of a cluster, so a file seen on many sites is hashed once
    for the whole cluster; each entry expires `seconds` after it was written, which bounds
    the cache by the files fetched in that time."""

    def __init__(self, client: redis.Redis, seconds: float) -> None:
        self.client = client
        self.seconds = int(seconds)

    def get(self, sha256: str) -> Hashed | None:
        cached = self.client.get(f"haechi:hashes:{sha256}")
        return None if cached is None else decode_hashes(cached)

    def put(self, sha256: str, hashed: Hashed) -> None:
        self.client.set(f"haechi:hashes:{sha256}", encode_hashes(hashed), ex=self.seconds)


def encode_hashes(hashed: Hashed) -> str:
    """`hashed` as JSON text: each algorithm's codes as hex with their width in bytes. The seen
    code is not kept, since only new hashes go into the seen index."""
    if isinstance(hashed, str):
        return json.dumps({"error": hashed})
    return json.dumps({"frames": [
        {"second": f.second, "sha256": f.hashes.sha256,
         "codes": {alg: codes.tobytes().hex() + ":" + str(codes.shape[1])
                   for alg, codes in f.hashes.codes.items()}}
        for f in hashed]})


def decode_hashes(text: str | bytes) -> Hashed:
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


class MatchStep:
    """Hashes known or learnt, then matched, and the events delivered; see the module docstring.

    The caller hashes a file only when `known` has nothing for it, hands the result to `learn`,
    and then has it matched with `match`: how a file is hashed (a pool that can lose a process,
    or in line) stays with the caller.
    """

    def __init__(self, matcher: Matcher, seen: SeenIndex, cache: HashCache,
                 sinks: Sequence[MatchEventSink]) -> None:
        self.matcher = matcher
        self.seen = seen
        self.cache = cache
        self.sinks = list(sinks)

    def known(self, sha256: str) -> Hashed | None:
        """The hashes of a file hashed before, or None."""
        return self.cache.get(sha256)

    def learn(self, sha256: str, hashed: Hashed) -> None:
        """Keep the hashes of a file just hashed. The seen index first: a failure to write it
        leaves the file uncached, so the next fetch of it (or the task's retry) records it."""
        if not isinstance(hashed, str):
            self.seen.record(sha256, hashed)
        self.cache.put(sha256, hashed)

    def match(self, fetch: FetchRecord, hashed: Hashed) -> list[MatchEvent]:
        """The fetched file's match events, delivered to every sink (none for a file without
        hashes). A segment of a streamed video says the second of the whole video (see
        matcher/events.py)."""
        if isinstance(hashed, str):
            return []
        now = dt.datetime.now(dt.UTC)
        origin = first_second(hashed)  # a segment's frames are placed in its video by it
        events = [MatchEvent.of_fetch(fetch, m, now, origin)
                  for m in self.matcher.match_frames(hashed)]
        if events:
            for sink in self.sinks:
                sink.deliver(events)
        return events
