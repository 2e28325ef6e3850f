"""The cluster's duplicate filter: a growing Bloom filter in Redis, one per crawl cycle.

scrapy-redis keeps every request fingerprint (40 hex characters) in one Redis set that never
expires: about 85 bytes per URL, 8.5 GB at 100M URLs, growing for ever. Haechi crawls every site
again each cycle, so "seen" only has to mean "seen during this visit of the site":

- A fingerprint is salted with the site's visit (`request.meta["visit"]`, set when a node claims
  the site from the schedule), so the next visit fetches the same URLs again.
- Each cycle (HAECHI_CRAWL_CYCLE_HOURS, default 24, by the visit's start) has its own filter,
  which Redis expires two cycles later: nothing has to be cleaned up.
- The filter is a scalable Bloom filter (Almeida et al., 2007) on Redis bitmaps: layers of
  1M, 2M, 4M... URLs, each with half the false-positive rate of the one before, so memory
  follows the URLs really seen (about 2 bytes per URL; scripts/bench_cluster.py measures it)
  and the total false-positive rate stays under HAECHI_DUPEFILTER_ERROR (default 0.001).
  A false positive skips one URL for one visit only: the next visit salts it differently.

Check-and-add is one Lua script, atomic in Redis, so two nodes never both take a URL as new. It
carries a call token (kept two minutes for URLs found new): a call repeated after its reply
was lost to a Redis restart answers "new" again instead of dropping the URL.
All keys of one filter share a hash tag ({...}) so the script also runs on a Redis cluster.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from typing import Any

from scrapy import Request
from scrapy_redis.connection import get_redis_from_settings
from scrapy_redis.dupefilter import RFPDupeFilter

from engines.broker import redis_script

KEY_PREFIX = "haechi:dupefilter"
FIRST_LAYER = 1_000_000
ERROR_RATE = 0.001
CYCLE_HOURS = 24.0
# Layer j holds FIRST_LAYER * GROWTH**j URLs at a false-positive rate of
# first_error * TIGHTENING**j; the rates sum to at most first_error / (1 - TIGHTENING). Of the
# settings tried (growth 2 or 4, tightening 0.5 to 0.9), 2 and 0.8 cost least at 10M-100M URLs.
GROWTH = 2
TIGHTENING = 0.8

_SEEN_OR_ADD = """
local base = KEYS[1]
local h1, h2 = tonumber(ARGV[1]), tonumber(ARGV[2])
local first, first_error, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local growth, tightening = tonumber(ARGV[6]), tonumber(ARGV[7])
-- The same call again (its reply was lost to a dropped connection): it found the URL new.
local token = base .. ':new:' .. ARGV[8]
if redis.call('EXISTS', token) == 1 then return 1 end
local ln2sq = math.log(2) ^ 2
local function shape(j)
  local capacity = first * growth ^ j
  local err = first_error * tightening ^ j
  local bits = math.ceil(-capacity * math.log(err) / ln2sq)
  local hashes = math.ceil(-math.log(err) / math.log(2))
  return capacity, bits, hashes
end
local layers = tonumber(redis.call('HGET', base, 'layers') or '0')
for j = 0, layers - 1 do
  local _, bits, hashes = shape(j)
  local all = true
  for i = 0, hashes - 1 do
    if redis.call('GETBIT', base .. ':' .. j, (h1 + i * h2) % bits) == 0 then
      all = false
      break
    end
  end
  if all then return 0 end
end
local j = layers - 1
if j < 0 or tonumber(redis.call('HGET', base, 'n' .. j) or '0') >= shape(j) then
  j = j + 1
  redis.call('HSET', base, 'layers', j + 1)
  -- Allocate the whole bitmap at once: grown bit by bit, Redis would over-allocate it.
  local _, new_bits = shape(j)
  redis.call('SETBIT', base .. ':' .. j, new_bits - 1, 0)
end
local _, bits, hashes = shape(j)
for i = 0, hashes - 1 do
  redis.call('SETBIT', base .. ':' .. j, (h1 + i * h2) % bits, 1)
end
redis.call('HINCRBY', base, 'n' .. j, 1)
redis.call('EXPIRE', base .. ':' .. j, ttl)
redis.call('EXPIRE', base, ttl)
redis.call('SET', token, 1, 'EX', TOKEN_SECONDS)
return 1
"""


def layer_bytes(urls: int, first: int = FIRST_LAYER, error: float = ERROR_RATE) -> int:
    """Bytes of bitmap a filter holding `urls` URLs has allocated (what Redis stores)."""
    total, j, first_error = 0, 0, error * (1 - TIGHTENING)
    while urls > 0:
        capacity = first * GROWTH**j
        bits = math.ceil(-capacity * math.log(first_error * TIGHTENING**j) / math.log(2) ** 2)
        total += math.ceil(bits / 8)
        urls -= capacity
        j += 1
    return total


class CycleBloomDupeFilter(RFPDupeFilter):
    """A DUPEFILTER_CLASS for scrapy-redis's scheduler; see the module docstring."""

    def __init__(self, server: Any, key: str = KEY_PREFIX, debug: bool = False,
                 first_layer: int = FIRST_LAYER, error: float = ERROR_RATE,
                 cycle_hours: float = CYCLE_HOURS) -> None:
        super().__init__(server, key, debug)
        self.first_layer = first_layer
        # The first layer's share of the total rate (the layers' rates form a halving series).
        self.first_error = error * (1 - TIGHTENING)
        self.cycle_seconds = cycle_hours * 3600
        self._script = redis_script(server, _SEEN_OR_ADD)

    @classmethod
    def from_spider(cls, spider: Any) -> CycleBloomDupeFilter:
        settings = spider.settings
        return cls(get_redis_from_settings(settings), KEY_PREFIX,
                   settings.getbool("DUPEFILTER_DEBUG"),
                   settings.getint("HAECHI_DUPEFILTER_FIRST_LAYER", FIRST_LAYER),
                   settings.getfloat("HAECHI_DUPEFILTER_ERROR", ERROR_RATE),
                   settings.getfloat("HAECHI_CRAWL_CYCLE_HOURS", CYCLE_HOURS))

    def filter_key(self, visit: str) -> str:
        """The filter of the cycle the visit started in (the current one without a visit)."""
        started = float(visit) if visit else time.time()
        return f"{self.key}:{{{int(started // self.cycle_seconds)}}}"

    def seen_or_add(self, fingerprint: str, visit: str = "") -> bool:
        digest = hashlib.sha256(f"{visit}\n{fingerprint}".encode()).digest()
        h1 = int.from_bytes(digest[:4], "big")
        h2 = int.from_bytes(digest[4:8], "big") | 1
        ttl = max(1, int(2 * self.cycle_seconds))
        added = self._script(keys=[self.filter_key(visit)],
                             args=[h1, h2, self.first_layer, self.first_error, ttl, GROWTH,
                                   TIGHTENING, uuid.uuid4().hex[:16]])
        return added == 0

    def request_seen(self, request: Request) -> bool:
        return self.seen_or_add(self.request_fingerprint(request),
                                str(request.meta.get("visit") or ""))

    def clear(self) -> None:
        for key in self.server.scan_iter(f"{self.key}:*"):
            self.server.delete(key)
