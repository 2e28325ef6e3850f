"""Match events on a Redis stream: how the matcher hands hits to any case system in cluster mode.

Each entry of the stream `haechi:match-events` has two fields: `schema` (the schema name and
version, `haechi.match-event/1`) and `event` (the event as JSON, docs/match-event.schema.json).
Consumers read it in a consumer group and acknowledge an entry only once it is handled; an
entry whose consumer died unacknowledged is claimed again by another after CLAIM_IDLE_MS.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from haechi.home import redis_client
from matcher.events import SCHEMA, MatchEvent

STREAM = "haechi:match-events"
# Entries kept in the stream; consumers lagging further behind than this lose the oldest.
STREAM_MAXLEN = 1_000_000
CLAIM_IDLE_MS = 60_000


class RedisStreamSink:
    """A MatchEventSink that appends events to the stream."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Any) -> RedisStreamSink:
        return cls(redis_client(settings.get("REDIS_URL") or None))

    def deliver(self, events: list[MatchEvent]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(STREAM, {"schema": SCHEMA, "event": json.dumps(event.to_json())},
                          maxlen=STREAM_MAXLEN, approximate=True)
            pipe.execute()


class StreamConsumer:
    """One consumer of a consumer group: read, handle, then acknowledge."""

    def __init__(self, client: redis.Redis, group: str, name: str,
                 claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self.client = client
        self.group = group
        self.name = name
        self.claim_idle_ms = claim_idle_ms
        try:
            client.xgroup_create(STREAM, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int = 100, block_ms: int = 1000
             ) -> list[tuple[bytes, MatchEvent | None]]:
        """Entries to handle: first ones abandoned by dead consumers, then new ones.

        An entry that does not parse comes back with None, to be acknowledged and logged
        rather than block the group for ever.
        """
        _, claimed, _ = self.client.xautoclaim(STREAM, self.group, self.name,
                                               self.claim_idle_ms, "0-0", count=count)
        entries = list(claimed)
        if not entries:
            for _, batch in self.client.xreadgroup(self.group, self.name, {STREAM: ">"},
                                                   count=count, block=block_ms) or []:
                entries.extend(batch)
        return [(entry_id, _parse(fields)) for entry_id, fields in entries if fields]

    def ack(self, entry_ids: list[bytes]) -> None:
        if entry_ids:
            self.client.xack(STREAM, self.group, *entry_ids)


def _parse(fields: dict[bytes, bytes]) -> MatchEvent | None:
    try:
        return MatchEvent.from_json(json.loads(fields[b"event"]))
    except (KeyError, ValueError, TypeError):
        return None
