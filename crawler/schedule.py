"""When each site is crawled again (cluster mode): a schedule of sites in Redis.

Every registered site comes due again HAECHI_RECRAWL_HOURS (default 24) after its last visit
started; a site where a victim's picture was found in the last HAECHI_RECRAWL_MATCHED_DAYS
(default 30) comes due every HAECHI_RECRAWL_MATCHED_HOURS (default 6), because sites that
posted one picture re-post it and post others. The schedule hears of matches as a sink of the
workers' match events (ScheduleFeedbackSink, below).

A crawler node claims due sites: a claim is a lease (CLAIM_SECONDS). Once the site's start
request is safely in the shared queue (itself leased) the node confirms the visit, which sets
the site's next due time. A node that dies between the two loses nothing: the claim runs out
and another node takes the site. (scrapy-redis's own start-URL list pops and deletes.)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from engines.broker import redis_client, redis_script
from engines.settings import Settings, current

SCHEDULE_KEY = "haechi:schedule"
SITES_KEY = "haechi:schedule:sites"
MATCHED_KEY = "haechi:schedule:matched"
# The defaults of the settings of the same names (engines/settings.py).
_DEFAULTS = Settings()
CLAIM_SECONDS = _DEFAULTS.schedule_claim_seconds
RECRAWL_HOURS = _DEFAULTS.recrawl_hours
RECRAWL_MATCHED_HOURS = _DEFAULTS.recrawl_matched_hours
RECRAWL_MATCHED_DAYS = _DEFAULTS.recrawl_matched_days

_CLAIM = """
-- The same call again (its reply was lost to a dropped connection): the same sites.
local token = KEYS[1] .. ':claim:' .. ARGV[4]
local prior = redis.call('GET', token)
if prior then return cjson.decode(prior) end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, site in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), site)
  table.insert(out, site)
  table.insert(out, redis.call('HGET', KEYS[2], site) or '{}')
end
if #out > 0 then redis.call('SET', token, cjson.encode(out), 'EX', TOKEN_SECONDS) end
return out
"""


@dataclass(frozen=True)
class Visit:
    """One claimed visit of a site: `visit` names it (the claim time), for the dupefilter."""

    site: str
    url: str
    max_pages: int | None
    visit: str


class SiteSchedule:
    """The sites of the cluster and when each is due; see the module docstring."""

    def __init__(self, client: redis.Redis, recrawl_hours: float = RECRAWL_HOURS,
                 matched_hours: float = RECRAWL_MATCHED_HOURS,
                 matched_days: float = RECRAWL_MATCHED_DAYS,
                 claim_seconds: float = CLAIM_SECONDS) -> None:
        self.client = client
        self.recrawl = recrawl_hours * 3600
        self.matched_interval = matched_hours * 3600
        self.matched_memory = matched_days * 86400
        self.claim_seconds = claim_seconds
        self._claim = redis_script(client, _CLAIM)

    @classmethod
    def from_env(cls, client: redis.Redis) -> SiteSchedule:
        """The schedule as configured for the whole cluster (crawler nodes and workers)."""

        settings = current()
        return cls(client, settings.recrawl_hours, settings.recrawl_matched_hours,
                   settings.recrawl_matched_days, settings.schedule_claim_seconds)

    def add(self, site: str, url: str, max_pages: int | None = None,
            now: float | None = None) -> None:
        """Register a site (or change its start URL) and make it due now."""
        now = time.time() if now is None else now
        with self.client.pipeline() as pipe:
            pipe.hset(SITES_KEY, site, json.dumps({"url": url, "max_pages": max_pages}))
            pipe.zadd(SCHEDULE_KEY, {site: now}, lt=True)  # adds it, or brings it forward
            pipe.execute()

    def remove(self, site: str) -> None:
        with self.client.pipeline() as pipe:
            pipe.zrem(SCHEDULE_KEY, site)
            pipe.hdel(SITES_KEY, site)
            pipe.hdel(MATCHED_KEY, site)
            pipe.execute()

    def due(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return int(self.client.zcount(SCHEDULE_KEY, "-inf", now))

    def claim(self, limit: int, now: float | None = None) -> list[Visit]:
        """Up to `limit` due sites, each leased to the caller for `claim_seconds`."""
        now = time.time() if now is None else now
        # The call token makes a repeated call (after a lost reply) return the same claim.
        found = self._claim(keys=[SCHEDULE_KEY, SITES_KEY],
                            args=[now, self.claim_seconds, limit, uuid.uuid4().hex[:16]])
        visits = []
        for site, data in zip(found[::2], found[1::2], strict=True):
            seed = json.loads(data)
            site_name = site.decode() if isinstance(site, bytes) else site
            visits.append(Visit(site_name, seed.get("url") or f"http://{site_name}/",
                                seed.get("max_pages"), f"{now:.3f}"))
        return visits

    def interval(self, site: str, now: float | None = None) -> float:
        now = time.time() if now is None else now
        matched = self.client.hget(MATCHED_KEY, site)
        if matched is not None and now - float(matched) < self.matched_memory:
            return min(self.recrawl, self.matched_interval)
        return self.recrawl

    def confirm(self, visit: Visit) -> None:
        """The visit's start request is queued: the site is next due one interval later."""
        started = float(visit.visit)
        self.client.zadd(SCHEDULE_KEY, {visit.site: started + self.interval(visit.site, started)},
                         xx=True)

    def matched(self, site: str, now: float | None = None) -> None:
        """A victim's picture was found on the site: visit it more often from now on."""
        now = time.time() if now is None else now
        self.client.hset(MATCHED_KEY, site, now)
        self.client.zadd(SCHEDULE_KEY, {site: now + self.interval(site, now)}, xx=True, lt=True)

    def next_due(self, site: str) -> float | None:
        return self.client.zscore(SCHEDULE_KEY, site)


class _FoundOnSite(Protocol):
    """What the feedback sink reads of a match event (matcher/events.py): where it was."""

    @property
    def site(self) -> str: ...


class ScheduleFeedbackSink:
    """A match-event sink (MATCH_EVENT_SINKS) that tells the schedule where victims' pictures
    were found, so those sites are visited more often: the matcher's events feed the crawl
    without the matcher writing into the crawler's schedule, nor the crawler importing the
    matcher (a sink is duck-typed)."""

    def __init__(self, schedule: SiteSchedule) -> None:
        self.schedule = schedule

    @classmethod
    def from_settings(cls, settings: Any) -> ScheduleFeedbackSink:
        return cls(SiteSchedule.from_env(redis_client(settings.get("REDIS_URL") or None)))

    def deliver(self, events: Sequence[_FoundOnSite]) -> None:
        for site in dict.fromkeys(event.site for event in events):
            self.schedule.matched(site)
