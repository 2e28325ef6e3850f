"""Scoring the scorer on a labelled suite (tests/grooming_suite): per-stage recall on the
suspect's labelled lines, the false-alert rate on the hard negatives, and how early alerts fire.

A suite the project wrote measures capability, not accuracy on real chats.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from typing import Any

from grooming.cues import STAGES
from grooming.schema import Conversation
from grooming.scoring import ConversationScorer


def to_conversation(labelled: dict[str, Any]) -> Conversation:
    conversation = Conversation(labelled["id"], "suite")
    for message in labelled["messages"]:
        when = dt.datetime.fromisoformat(message["time"]) if message.get("time") else None
        conversation.add(when, message["speaker"], message["text"])
    return conversation


def evaluate(suite: list[dict[str, Any]], scorer: ConversationScorer) -> dict[str, Any]:
    labelled, found = Counter(), Counter()
    negatives, false_alerts, by_kind = 0, [], Counter()
    grooming, alerted, urgent_expected, urgent_found, first = 0, 0, 0, 0, []
    for item in suite:
        conversation = to_conversation(item)
        tagged = scorer.tag(conversation)
        states = scorer.score(conversation, tagged)
        suspect = states.get("A")
        if item["kind"] == "grooming":
            grooming += 1
            # Recall per stage: a labelled line counts as found when the scorer tagged that
            # stage on it (tags are read per message, so look at every line, not the best).
            for message, (_, cues) in zip(item["messages"], tagged, strict=True):
                labels = {c.label for c in cues}
                for stage in message["stages"]:
                    labelled[stage] += 1
                    found[stage] += stage in labels
            if suspect and suspect.tier != "none":
                alerted += 1
                first.append(suspect.first_alert_message)
            if item["expected"] == "urgent":
                urgent_expected += 1
                urgent_found += bool(suspect and suspect.tier == "urgent")
        else:
            negatives += 1
            by_kind[item["kind"]] += 1
            tiers = {s.speaker: s.tier for s in states.values() if s.tier != "none"}
            if tiers:
                false_alerts.append(item["id"])
    recall = {stage: round(found[stage] / labelled[stage], 3) for stage in STAGES
              if labelled[stage]}
    return {
        "conversations": len(suite),
        "stage_recall": recall,
        "stage_recall_min": min(recall.values()) if recall else None,
        "grooming_conversations_alerted": f"{alerted}/{grooming}",
        "urgent_recall": round(urgent_found / urgent_expected, 3) if urgent_expected else None,
        "false_alert_rate": round(len(false_alerts) / negatives, 4) if negatives else None,
        "false_alerts": false_alerts,
        "negatives_by_kind": dict(by_kind),
        "median_first_alert_message": statistics.median(first) if first else None,
    }

