"""Scanning chat exports: import, score every speaker, and for each conversation report the
speaker most at risk of grooming someone; alerts are kept (flagged excerpts) and sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grooming.alerts import SCHEMA, AlertSink, send
from grooming.excerpts import ExcerptStore
from grooming.importers import ChatImportError, load
from grooming.pseudonyms import Pseudonymiser
from grooming.schema import Conversation
from grooming.scoring import (
    TIERS,
    ConversationScorer,
    SpeakerState,
    evidence,
    timeline,
    together,
)


@dataclass
class FileError:
    file: str
    error: str


def default_scorer() -> ConversationScorer:
    from grooming.classifier import StageClassifier
    from grooming.lines import LineModel

    return ConversationScorer(together(StageClassifier.load().cues, LineModel.load().cues))


def report(conversation: Conversation, states: dict[str, SpeakerState]) -> dict[str, Any]:
    """The conversation's result: its riskiest speaker in full, every speaker in brief."""
    ranked = sorted(states.values(), key=lambda s: (-TIERS.index(s.tier), -s.score))
    top = ranked[0] if ranked else SpeakerState("none")
    lines = evidence(top)
    return {
        "schema": SCHEMA,
        "conversation": conversation.id,
        "source": conversation.source,
        "messages": len(conversation.messages),
        "speaker": top.speaker,
        "target": top.target,
        "minor_evidence": minor_evidence(conversation, top),
        "reported_speech": top.reported_speech,
        "score": top.score,
        "tier": top.tier,
        "stages": sorted(top.stages, key=lambda s: top.stages[s].message.index),
        "first_alert_message": top.first_alert_message,
        "timeline": timeline(top),
        "evidence": lines,
        "slang": sorted({note for line in lines for note in line["slang"]}),
        "speakers": [{"speaker": s.speaker, "target": s.target, "score": s.score,
                      "tier": s.tier, "first_alert_message": s.first_alert_message}
                     for s in ranked],
        "scanned_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def minor_evidence(conversation: Conversation, state: SpeakerState) -> dict[str, Any]:
    """How sure the reading is that the target is a minor (0..1), and the lines it rests on."""
    found = state.minor_evidence
    if found is None:
        return {"probability": None, "lines": []}
    # By each message's index, not its position: a live room's conversation is a window of
    # the room's latest messages, numbered from the room's first (see grooming.watch).
    text = {m.index: m.text for m in conversation.messages}
    return {"probability": round(found.probability, 3),
            "lines": [{"message": i, "text": text[i]} for i in sorted(found.lines)
                      if i in text]}


class ChatScanner:
    """One scan run over any number of files: the scorer, and the classifier behind it, are
    loaded once here and used for every file; the pseudonym key is read once too."""

    def __init__(self, scorer: ConversationScorer | None = None,
                 sinks: list[AlertSink] | None = None, store: ExcerptStore | None = None
                 ) -> None:
        self.scorer = scorer or default_scorer()
        self.pseudonym = Pseudonymiser()
        self.sinks = sinks
        self.store = store
        if store is not None:
            store.purge()

    def scan_file(self, path: Path) -> Iterator[dict[str, Any] | FileError]:
        """The file's results per conversation (or one FileError), alerting as it goes."""
        try:
            conversations = load(path, self.pseudonym)
        except ChatImportError as exc:
            yield FileError(str(path), str(exc))
            return
        for conversation in conversations:
            result = report(conversation, self.scorer.score(conversation))
            result["file"] = str(path)
            if result["tier"] != "none":
                # Alert once per speaker and tier: a conversation scanned again (a longer
                # export of the same chat) alerts again only when it became more urgent.
                tiers = TIERS[TIERS.index(result["tier"]):]
                if self.store is not None and self.store.alerted(
                        result["conversation"], result["speaker"], tiers):
                    result["alerts"] = {"all": "already alerted at this tier"}
                    yield result
                    continue
                if self.store is not None:
                    self.store.keep(result)
                if self.sinks:
                    result["alerts"] = send(result, self.sinks)
            yield result


def scan(paths: list[Path], scorer: ConversationScorer | None = None,
         sinks: list[AlertSink] | None = None, store: ExcerptStore | None = None
         ) -> Iterator[dict[str, Any] | FileError]:
    """Results per conversation (or a FileError per unreadable file), alerting as it goes."""
    scanner = ChatScanner(scorer, sinks, store)
    for path in paths:
        yield from scanner.scan_file(path)
