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
from grooming.scoring import TIERS, ConversationScorer, SpeakerState, evidence, timeline


@dataclass
class FileError:
    file: str
    error: str


def default_scorer() -> ConversationScorer:
    from grooming.classifier import StageClassifier

    return ConversationScorer(StageClassifier.load().cues)


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
        "score": top.score,
        "tier": top.tier,
        "stages": sorted(top.stages, key=lambda s: top.stages[s].message.index),
        "first_alert_message": top.first_alert_message,
        "timeline": timeline(top),
        "evidence": lines,
        "slang": sorted({note for line in lines for note in line["slang"]}),
        "speakers": [{"speaker": s.speaker, "score": s.score, "tier": s.tier,
                      "first_alert_message": s.first_alert_message} for s in ranked],
        "scanned_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def scan(paths: list[Path], scorer: ConversationScorer | None = None,
         sinks: list[AlertSink] | None = None, store: ExcerptStore | None = None
         ) -> Iterator[dict[str, Any] | FileError]:
    """Results per conversation (or a FileError per unreadable file), alerting as it goes."""
    scorer = scorer or default_scorer()
    pseudonym = Pseudonymiser()
    if store is not None:
        store.purge()
    for path in paths:
        try:
            conversations = load(path, pseudonym)
        except ChatImportError as exc:
            yield FileError(str(path), str(exc))
            continue
        for conversation in conversations:
            result = report(conversation, scorer.score(conversation))
            result["file"] = str(path)
            if result["tier"] != "none":
                # Alert once per speaker and tier: a conversation scanned again (a longer
                # export of the same chat) alerts again only when it became more urgent.
                tiers = TIERS[TIERS.index(result["tier"]):]
                if store is not None and store.alerted(result["conversation"],
                                                       result["speaker"], tiers):
                    result["alerts"] = {"all": "already alerted at this tier"}
                    yield result
                    continue
                if store is not None:
                    store.keep(result)
                if sinks:
                    result["alerts"] = send(result, sinks)
            yield result
