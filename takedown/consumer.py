"""`haechi cases consume`: the takedown consumer group on the match-event stream.

Entries are acknowledged only after their cases are committed, so a consumer killed midway
loses nothing: its entries are claimed again by the next consumer. Handling an entry twice
is harmless, since repeated events join the open case.

No entry may stop the consumer. One that does not parse goes to the dead-letter stream at once
(reading it again will not change it). One whose event fails (CaseStore.intake says which) is
left pending to be tried again after the claim delay, and buried with its last error once
MAX_ATTEMPTS attempts have begun on it, including attempts whose consumer died before it could
say how they ended. An entry tried before is tried alone, so the entry that killed a consumer
cannot take a batch of others down with it again. Only a database that does not answer at all
stops the consumer (the attempts are taken back, as it is no entry's fault); restarting it is
the service manager's job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from matcher.streams import StreamConsumer, StreamEntry
from takedown.cases import CaseStore

GROUP = "takedown"
# Attempts on one entry before it goes to the dead-letter stream: one retry for a passing
# conflict (a deadlock, a lock timeout), a second to be sure, and no more, since a value that
# failed three times will fail the fourth and each attempt waits out the claim delay.
MAX_ATTEMPTS = 3
log = logging.getLogger(__name__)


@dataclass
class ConsumeReport:
    entries: int = 0
    cases_opened: int = 0
    unreadable: int = 0
    # Attempts that failed and are left to be tried again.
    failed: int = 0
    # Entries moved to the dead-letter stream (unreadable ones included).
    dead_lettered: int = 0
    # Sites whose notice could not be drafted (their cases are open, as detected).
    drafts_failed: int = 0


def consume(consumer: StreamConsumer, store: CaseStore, once: bool = False,
            block_ms: int = 1000) -> ConsumeReport:
    """Handle entries until the stream is drained (`once`) or for ever."""
    report = ConsumeReport()
    while True:
        batch = consumer.read(block_ms=block_ms)
        if not batch:
            if once:
                return report
            continue
        report.entries += len(batch)
        handle(consumer, store, batch, report)


def handle(consumer: StreamConsumer, store: CaseStore, batch: list[StreamEntry],
           report: ConsumeReport) -> None:
    """Open the cases of one batch; acknowledge, leave or bury each entry."""
    readable = []
    for entry in batch:
        if entry.event is None:
            report.unreadable += 1
            _bury(consumer, entry, entry.unreadable or "unreadable", 0, report)
        else:
            readable.append(entry)
    tried = consumer.attempts([entry.id for entry in readable])
    fresh = []
    for entry in readable:
        if tried[entry.id] >= MAX_ATTEMPTS:  # its consumers died each time before saying
            reason = consumer.last_failure(entry.id) or (
                f"its consumer stopped while handling it, {tried[entry.id]} times")
            _bury(consumer, entry, reason, tried[entry.id], report)
        elif tried[entry.id]:
            _attempt(consumer, store, [entry], report)
        else:
            fresh.append(entry)
    if fresh:
        _attempt(consumer, store, fresh, report)


def _attempt(consumer: StreamConsumer, store: CaseStore, entries: list[StreamEntry],
             report: ConsumeReport) -> None:
    ids = [entry.id for entry in entries]
    attempts = consumer.begin_attempt(ids)
    try:
        # Every entry here is readable (`handle` buried the others): positions line up.
        result = store.intake([entry.event for entry in entries if entry.event is not None])
    except Exception:
        consumer.undo_attempt(ids)  # the database does not answer: the entries stay pending
        raise
    report.cases_opened += len(result.opened)
    report.drafts_failed += len(result.drafts_failed)
    consumer.ack([entry.id for index, entry in enumerate(entries)
                  if index not in result.failed])
    for index, reason in result.failed.items():
        entry = entries[index]
        if attempts[entry.id] >= MAX_ATTEMPTS:
            _bury(consumer, entry, reason, attempts[entry.id], report)
        else:
            consumer.remember_failure(entry.id, reason)
            report.failed += 1
            log.warning("stream entry %s failed (attempt %d of %d), tried again later: %s",
                        entry.id.decode(), attempts[entry.id], MAX_ATTEMPTS, reason)


def _bury(consumer: StreamConsumer, entry: StreamEntry, reason: str, attempts: int,
          report: ConsumeReport) -> None:
    consumer.bury(entry, reason, attempts)
    report.dead_lettered += 1
    log.error("stream entry %s moved to the dead-letter stream after %d attempts: %s",
              entry.id.decode(), attempts, reason)
