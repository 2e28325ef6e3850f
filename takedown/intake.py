"""The takedown side's match-event sink on the embedded default: events straight into cases
(and, through them, into drafted notices)."""

from __future__ import annotations

from scrapy.settings import BaseSettings

from engines.objects import open_store
from matcher.events import MatchEvent
from takedown.cases import CaseStore


class CaseIntake:
    """A MatchEventSink that opens cases in this installation's case store."""

    def __init__(self, store: CaseStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CaseIntake:
        media = open_store(settings.get("HAECHI_STORE") or None)
        return cls(CaseStore.open(settings.get("DATABASE_URL") or None, store=media))

    def deliver(self, events: list[MatchEvent]) -> None:
        self.store.open_cases(events)
