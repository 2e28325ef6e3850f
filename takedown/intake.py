"""The takedown side's match-event sink on the embedded default: events straight into cases."""

from __future__ import annotations

from scrapy.settings import BaseSettings

from matcher.events import MatchEvent
from takedown.cases import CaseStore


class CaseIntake:
    """A MatchEventSink that opens cases in this installation's case store."""

    def __init__(self, store: CaseStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CaseIntake:
        return cls(CaseStore.open(settings.get("DATABASE_URL") or None))

    def deliver(self, events: list[MatchEvent]) -> None:
        self.store.open_cases(events)
