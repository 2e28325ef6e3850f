"""`haechi cases consume`: the takedown consumer group on the match-event stream.

Entries are acknowledged only after their cases are committed, so a consumer killed midway
loses nothing: its entries are claimed again by the next consumer. Handling an entry twice
is harmless, since repeated events join the open case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from matcher.streams import StreamConsumer
from takedown.cases import CaseStore

GROUP = "takedown"
log = logging.getLogger(__name__)


@dataclass
class ConsumeReport:
    entries: int = 0
    cases_opened: int = 0
    unreadable: int = 0


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
        events = [event for _, event in batch if event is not None]
        report.unreadable += len(batch) - len(events)
        report.cases_opened += len(store.open_cases(events))
        consumer.ack([entry_id for entry_id, _ in batch])
        report.entries += len(batch)
