"""Dead letters are put back once their cause is fixed: listed with why, replayed as their
writer sent them, neither lost nor doubled, through the real CLI against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from matcher.streams import (
    DEAD_LETTERS,
    STREAM,
    RedisStreamSink,
    StreamConsumer,
    dead_letters,
    replay_dead_letters,
)
from takedown.cases import CaseStore
from takedown.consumer import GROUP, MAX_ATTEMPTS, consume
from tests.conftest import REDIS
from tests.takedown_helpers import FakeClock, event

HAECHI = str(Path(sys.executable).with_name("haechi"))


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([HAECHI, "cases", *argv], env={**os.environ, "REDIS_URL": REDIS},
                          capture_output=True, text=True, timeout=120)


def bury_one_failing_event(stream: redis.Redis, store: CaseStore) -> None:
    """Two events; intake fails for one of them every time (a bug since fixed)."""
    RedisStreamSink(stream).deliver([event("a.example", 1), event("b.example", 1)])
    consumer = StreamConsumer(stream, GROUP, "consumer-1", claim_idle_ms=50)
    real_intake = store.intake

    def broken_for_b(events):
        """As intake reports an event it could not take: by its position, with why."""
        keep = [i for i, e in enumerate(events) if e.site != "b.example"]
        report = real_intake([events[i] for i in keep])
        report.failed = {i: "a bug in intake for b.example"
                         for i, e in enumerate(events) if e.site == "b.example"}
        return report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "intake", broken_for_b)
        for _ in range(MAX_ATTEMPTS * 4):
            consume(consumer, store, once=True, block_ms=50)
            if stream.xlen(DEAD_LETTERS):
                break
            time.sleep(0.08)
    assert [c["site"] for c in store.list()] == ["a.example"]
    assert stream.xlen(DEAD_LETTERS) == 1


def test_a_dead_letter_is_listed_replayed_and_becomes_a_case(stream) -> None:
    store = CaseStore.open(clock=FakeClock())
    bury_one_failing_event(stream, store)

    listed = cli("dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    [letter] = json.loads(listed.stdout)
    assert "a bug in intake for b.example" in letter["error"]
    assert letter["attempts"] == MAX_ATTEMPTS and json.loads(letter["event"])["site"] == "b.example"

    replayed = cli("replay", letter["id"], "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == {"replayed": [letter["id"]], "not_found": []}
    assert stream.xlen(DEAD_LETTERS) == 0

    consume(StreamConsumer(stream, GROUP, "consumer-2"), store, once=True, block_ms=50)
    assert sorted(c["site"] for c in store.list()) == ["a.example", "b.example"]
    # Replaying the same id again finds nothing: the event is not put back twice.
    again = cli("replay", letter["id"], "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["not_found"] == [letter["id"]]
    assert stream.xlen(STREAM) == 3  # the two delivered and the one replay, no more


def test_replay_keeps_only_what_the_writer_sent_and_asks_which(stream) -> None:
    stream.xadd(DEAD_LETTERS, {"schema": "haechi.match-event/1", "event": "{}",
                               "error": "unreadable", "attempts": 1, "entry_id": "1-0"})
    [letter] = dead_letters(stream)
    assert replay_dead_letters(stream, [letter.id, "9-9"]) == [letter.id]
    [(_, fields)] = stream.xrange(STREAM)
    assert fields == {b"schema": b"haechi.match-event/1", b"event": b"{}"}
    neither = cli("replay")
    assert neither.returncode == 2 and "--all" in neither.stderr
    assert cli("dead-letters").stdout.startswith("no dead letters")
