"""Match events on a Redis stream: how the matcher hands hits to any case system in cluster mode.

Each entry of the stream `haechi:match-events` has two fields: `schema` (the schema name and
version, `haechi.match-event/1`) and `event` (the event as JSON, docs/match-event.schema.json).
Consumers read it in a consumer group and acknowledge an entry only once it is handled; an
entry whose consumer died unacknowledged is claimed again by another after CLAIM_IDLE_MS.

An entry that can never be handled (it does not parse, or handling it fails every time) must
not hold the group up for ever, nor be dropped without a trace: it goes to the dead-letter
stream `haechi:match-events:dead` with the reason, and is acknowledged. Its original fields go
with it, unchanged, so an operator can put it back once the cause is fixed. The consumer counts
the attempts it begins on each entry in Redis, not in its own memory, so an entry that kills
every consumer handling it (a crash, the OOM killer) is recognised as well as one that raises.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import redis

from engines.broker import MATCH_EVENTS_DEAD_LETTERS, MATCH_EVENTS_STREAM, redis_client
from matcher.events import SCHEMA, MatchEvent

STREAM = MATCH_EVENTS_STREAM
# Entries kept in the stream; consumers lagging further behind than this lose the oldest.
STREAM_MAXLEN = 1_000_000
CLAIM_IDLE_MS = 60_000
DEAD_LETTERS = MATCH_EVENTS_DEAD_LETTERS
# Dead letters kept; each one is an event someone must look at, so more than this many means
# the consumer is broken, not the entries, and the oldest are then the least useful to keep.
DEAD_LETTER_MAXLEN = 100_000
# Longest reason a dead letter carries (a parse error may quote the entry).
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class StreamEntry:
    """One entry as read: its fields as they are, and the event, or why there is none."""

    id: bytes
    fields: dict[bytes, bytes]
    event: MatchEvent | None
    unreadable: str | None = None


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
    """One consumer of a consumer group: read, handle, then acknowledge or bury."""

    def __init__(self, client: redis.Redis, group: str, name: str,
                 claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self.client = client
        self.group = group
        self.name = name
        self.claim_idle_ms = claim_idle_ms
        # Per entry still pending: attempts begun on it, and the last failure's reason.
        self.attempts_key = f"{STREAM}:attempts:{group}"
        self.errors_key = f"{STREAM}:errors:{group}"
        try:
            client.xgroup_create(STREAM, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int = 100, block_ms: int = 1000) -> list[StreamEntry]:
        """Entries to handle: first ones abandoned by dead consumers (or left to be tried
        again), then new ones. An entry that does not parse comes back with its reason.
        """
        _, claimed, _ = self.client.xautoclaim(STREAM, self.group, self.name,
                                               self.claim_idle_ms, "0-0", count=count)
        entries = list(claimed)
        if not entries:
            for _, batch in self.client.xreadgroup(self.group, self.name, {STREAM: ">"},
                                                   count=count, block=block_ms) or []:
                entries.extend(batch)
        # An entry trimmed from the stream while pending has no fields left to handle.
        self.ack([entry_id for entry_id, fields in entries if not fields])
        return [_entry(entry_id, fields) for entry_id, fields in entries if fields]

    def ack(self, entry_ids: list[bytes]) -> None:
        if entry_ids:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.xack(STREAM, self.group, *entry_ids)
                pipe.hdel(self.attempts_key, *entry_ids)
                pipe.hdel(self.errors_key, *entry_ids)
                pipe.execute()

    def attempts(self, entry_ids: list[bytes]) -> dict[bytes, int]:
        """Attempts begun on each entry so far (0 for one never tried)."""
        if not entry_ids:
            return {}
        counts = self.client.hmget(self.attempts_key, entry_ids)
        return {entry_id: int(n or 0) for entry_id, n in zip(entry_ids, counts, strict=True)}

    def begin_attempt(self, entry_ids: list[bytes]) -> dict[bytes, int]:
        """Count an attempt on each entry before handling it; the counts after."""
        return self._add_attempts(entry_ids, 1)

    def undo_attempt(self, entry_ids: list[bytes]) -> None:
        """Take back attempts that failed through no fault of the entries (an outage)."""
        self._add_attempts(entry_ids, -1)

    def _add_attempts(self, entry_ids: list[bytes], step: int) -> dict[bytes, int]:
        with self.client.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.hincrby(self.attempts_key, entry_id, step)
            return dict(zip(entry_ids, pipe.execute(), strict=True))

    def remember_failure(self, entry_id: bytes, reason: str) -> None:
        """Keep why the entry failed, for its dead letter if it never succeeds."""
        self.client.hset(self.errors_key, entry_id, reason[:MAX_REASON_CHARS])

    def last_failure(self, entry_id: bytes) -> str | None:
        reason = self.client.hget(self.errors_key, entry_id)
        return reason.decode("utf-8", "replace") if reason else None

    def bury(self, entry: StreamEntry, reason: str, attempts: int) -> bytes:
        """Move `entry` to the dead-letter stream with `reason`, and acknowledge it, at once
        (one MULTI): a dead letter is neither lost nor written twice. Its id there."""
        letter = {**entry.fields, "error": reason[:MAX_REASON_CHARS],
                  "entry_id": entry.id, "group": self.group, "consumer": self.name,
                  "attempts": attempts, "dead_at": dt.datetime.now(dt.UTC).isoformat()}
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(DEAD_LETTERS, letter, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
            pipe.xack(STREAM, self.group, entry.id)
            pipe.hdel(self.attempts_key, entry.id)
            pipe.hdel(self.errors_key, entry.id)
            return pipe.execute()[0]


def dead_letter_count(client: redis.Redis) -> int:
    """Entries in the dead-letter stream: each one a match event no case was opened for."""
    return int(client.xlen(DEAD_LETTERS))


# The fields a writer of the stream gave an entry; a dead letter adds its own beside them.
ORIGINAL_FIELDS = (b"schema", b"event")


@dataclass(frozen=True)
class DeadLetter:
    """A buried entry as an operator sees it: why it died, and what it was."""

    id: str
    error: str
    attempts: int
    dead_at: str
    fields: dict[bytes, bytes]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "error": self.error, "attempts": self.attempts,
                "dead_at": self.dead_at,
                "event": self.fields.get(b"event", b"").decode("utf-8", "replace")}


def dead_letters(client: redis.Redis, count: int = 1000) -> list[DeadLetter]:
    """The oldest `count` dead letters."""
    def text(fields: dict[bytes, bytes], name: bytes) -> str:
        return fields.get(name, b"").decode("utf-8", "replace")

    return [DeadLetter(letter_id.decode(), text(fields, b"error"),
                       int(fields.get(b"attempts") or 0), text(fields, b"dead_at"), fields)
            for letter_id, fields in client.xrange(DEAD_LETTERS, count=count)]


def replay_dead_letters(client: redis.Redis, letter_ids: list[str]) -> list[str]:
    """Put the named dead letters back on the stream as their writer sent them, once the cause
    is fixed; each is moved in one MULTI (added to the stream and deleted from the dead
    letters), so a replay is neither lost nor doubled. Returns the ids replayed; an id that is
    not a dead letter (already replayed, or never one) is left out, not an error."""
    replayed = []
    for letter_id in letter_ids:
        found = client.xrange(DEAD_LETTERS, letter_id, letter_id)
        if not found:
            continue
        original = {name: value for name, value in found[0][1].items()
                    if name in ORIGINAL_FIELDS}
        with client.pipeline(transaction=True) as pipe:
            pipe.xadd(STREAM, original, maxlen=STREAM_MAXLEN, approximate=True)
            pipe.xdel(DEAD_LETTERS, letter_id)
            pipe.execute()
        replayed.append(letter_id)
    return replayed


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> StreamEntry:
    try:
        return StreamEntry(entry_id, fields, MatchEvent.from_json(json.loads(fields[b"event"])))
    except Exception as exc:  # anything a writer of the stream put there: it is their error
        reason = f"unreadable: {type(exc).__name__}: {exc}"
        return StreamEntry(entry_id, fields, None, reason[:MAX_REASON_CHARS])
