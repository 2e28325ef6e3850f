"""The cluster's shared request queue: scrapy-redis's scheduler with three of its gaps closed.

scrapy-redis's own queues pop and delete, keep no per-site order and know no politeness beyond
one process. This queue (a SCHEDULER_QUEUE_CLASS for scrapy-redis) instead:

- leases each request it hands out: the request waits in a lease until the node reports it
  done (`ack`, on Scrapy's request_left_downloader signal); leases of a node that died expire
  after LEASE_SECONDS and the requests go back to their site's queue, so nothing is lost;
- keeps one queue per site (highest priority first) and a shared schedule of sites: a site is
  handed out again only HAECHI_SITE_INTERVAL seconds after its last request started, on any
  node, which is a per-site rate for the whole cluster;
- so one slow or huge site never fills every download slot: the others keep their turns.

Every step is one Lua script, atomic in Redis, and safe to repeat: Haechi's Redis clients retry
a command whose connection dropped (a Redis restart or failover), so a command that ran but
whose reply was lost runs twice; a pop carries a call token and answers its repeat with the
same lease, a push or an acknowledgement changes nothing the second time.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from scrapy import Request, signals
from scrapy_redis.queue import Base

from engines.broker import redis_script

LEASE_SECONDS = 120.0
DEFAULT_SITE_INTERVAL = 0.25

_POP = """
local key, now, interval, lease = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- The same call again (its reply was lost to a dropped connection): hand out the same lease.
local token = key .. ':pop:' .. ARGV[4]
local prior = redis.call('GET', token)
if prior then
  local data = redis.call('HGET', key .. ':lease-data', prior)
  if data then return {data, prior} end
  return nil
end
-- Give back the requests of expired leases first.
local expired = redis.call('ZRANGEBYSCORE', key .. ':leases', '-inf', now, 'LIMIT', 0, 20)
for _, id in ipairs(expired) do
  local site = redis.call('HGET', key .. ':lease-site', id)
  local data = redis.call('HGET', key .. ':lease-data', id)
  local score = redis.call('HGET', key .. ':lease-score', id)
  if site and data then
    redis.call('ZADD', key .. ':site:' .. site, score, data)
    redis.call('ZADD', key .. ':sites', 'NX', now, site)
    redis.call('INCR', key .. ':count')
  end
  redis.call('ZREM', key .. ':leases', id)
  redis.call('HDEL', key .. ':lease-site', id)
  redis.call('HDEL', key .. ':lease-data', id)
  redis.call('HDEL', key .. ':lease-score', id)
end
local sites = redis.call('ZRANGEBYSCORE', key .. ':sites', '-inf', now, 'LIMIT', 0, 1)
if #sites == 0 then return nil end
local site = sites[1]
local queue = key .. ':site:' .. site
local top = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
if #top == 0 then
  redis.call('ZREM', key .. ':sites', site)
  return nil
end
redis.call('ZREMRANGEBYRANK', queue, 0, 0)
redis.call('DECR', key .. ':count')
if redis.call('ZCARD', queue) == 0 then
  redis.call('ZREM', key .. ':sites', site)
else
  redis.call('ZADD', key .. ':sites', now + interval, site)
end
local id = redis.call('INCR', key .. ':lease-seq')
redis.call('ZADD', key .. ':leases', now + lease, id)
redis.call('HSET', key .. ':lease-site', id, site)
redis.call('HSET', key .. ':lease-data', id, top[1])
redis.call('HSET', key .. ':lease-score', id, top[2])
redis.call('SET', token, id, 'EX', TOKEN_SECONDS)
return {top[1], tostring(id)}
"""

_PUSH = """
local key, site, score, data, now = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('ZADD', key .. ':site:' .. site, score, data) == 1 then
  redis.call('INCR', key .. ':count')
end
redis.call('ZADD', key .. ':sites', 'NX', now, site)
"""

_ACK = """
local key, id = KEYS[1], ARGV[1]
redis.call('ZREM', key .. ':leases', id)
redis.call('HDEL', key .. ':lease-site', id)
redis.call('HDEL', key .. ':lease-data', id)
redis.call('HDEL', key .. ':lease-score', id)
"""


class LeasedSiteQueue(Base):
    """See the module docstring."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        settings = spider.crawler.settings if getattr(spider, "crawler", None) else {}
        self.interval = float(settings.get("HAECHI_SITE_INTERVAL", DEFAULT_SITE_INTERVAL))
        self.lease = float(settings.get("HAECHI_LEASE_SECONDS", LEASE_SECONDS))
        self._pop = redis_script(server, _POP)
        self._push = redis_script(server, _PUSH)
        self._ack = redis_script(server, _ACK)
        if getattr(spider, "crawler", None):
            spider.crawler.signals.connect(self.request_done,
                                           signal=signals.request_left_downloader)

    def __len__(self) -> int:
        return max(0, int(self.server.get(self.key + ":count") or 0))

    def push(self, request: Request) -> None:
        site = request.meta.get("site") or request.url.split("/")[2]
        # Highest priority first; among equals, first pushed first.
        score = -request.priority * 1e7 + time.time() % 1e6
        self._push(keys=[self.key], args=[site, score, self._encode_request(request),
                                          time.time()])

    def pop(self, timeout: float = 0) -> Request | None:
        # A call token makes the pop safe to retry: the client repeats a command whose reply
        # was lost (Redis restarting), and the repeat must not lease a second request.
        found = self._pop(keys=[self.key], args=[time.time(), self.interval, self.lease,
                                                 uuid.uuid4().hex[:16]])
        if not found:
            return None
        data, lease_id = found
        request = self._decode_request(data)
        request.meta["haechi_lease"] = lease_id.decode() if isinstance(lease_id, bytes) \
            else lease_id
        return request

    def ack(self, request: Request) -> None:
        lease_id = request.meta.get("haechi_lease")
        if lease_id is not None:
            self._ack(keys=[self.key], args=[lease_id])

    def request_done(self, request: Request, spider: Any = None) -> None:
        self.ack(request)

    def clear(self) -> None:
        for key in self.server.scan_iter(self.key + ":*"):
            self.server.delete(key)
        self.server.delete(self.key)
