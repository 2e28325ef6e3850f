"""A score per speaker per conversation, updated message by message, and its tier.

Grooming is a sequence, not a word: one cue ("send a photo?") is harmless between friends and
alarming after questions about age and whether the child is alone. So:

- each stage counts once per speaker, at its strongest message;
- several distinct stages multiply the sum (COMBINATION per stage beyond the first);
- the context decides whether the sum can alert at all: the other person must show signs of
  being a minor; a speaker who is a minor too (peers), or whom the other addresses as mum, dad
  or teacher, is damped;
- tiers: "review" once the score reaches REVIEW_SCORE with at least two distinct stages, one of
  them a risk stage; "urgent" when, on top of that, the speaker proposes a meeting with a place
  or a time.

The first message at which a speaker's tier becomes "review" or "urgent" is kept: the earlier
an agency hears of it, the better.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from grooming.cues import STAGES, Cue, rule_cues
from grooming.normalise import Normalised, normalise
from grooming.schema import Conversation, Message

COMBINATION = 0.25
REVIEW_SCORE = 2.4
RISK_STAGES = frozenset({"alone", "gifts", "secrecy", "media_request", "sexual", "meeting"})
# Multipliers of the context (see the module docstring).
PEER_FACTOR = 0.35
PARENT_FACTOR = 0.25
NO_MINOR_FACTOR = 0.4
# A place or time this many messages around a proposed meeting makes it concrete.
PLACE_TIME_WINDOW = 3
TIERS = ("none", "review", "urgent")

CueFinder = Callable[[list[Normalised]], list[list[Cue]]]


@dataclass
class StageHit:
    weight: float
    message: Message
    normalised: Normalised
    source: str


@dataclass
class SpeakerState:
    speaker: str
    stages: dict[str, StageHit] = field(default_factory=dict)
    minor: bool = False  # says what only a child says
    addressed_as_parent: bool = False
    place_time_at: list[int] = field(default_factory=list)
    meeting_at: list[int] = field(default_factory=list)
    score: float = 0.0
    tier: str = "none"
    first_alert_message: int | None = None


_BARE_AGE = re.compile(r"^(?:i am |난 |나 |저 )?(\d{1,2})(?: years old|살|세|yo)?[.!?~ㅋㅎ]*$")
_BARE_GRADE = re.compile(r"^(?:나 |저 |난 )?(?:중|고|초)[1-6](?:이야|이요|임|요)?[.!?~ㅋㅎ]*$|"
                         r"^(?:(?:6|7|8|9|10|11)th)(?: grade)?[.!?]*$")


def answers_as_minor(text: Normalised) -> bool:
    """A bare age or grade given in answer to an age question: "15", "중2", "8th grade"."""
    bare = text.text.strip()
    age = _BARE_AGE.match(bare)
    return bool((age and 8 <= int(age[1]) <= 17) or _BARE_GRADE.match(bare))


def rules_only(texts: list[Normalised]) -> list[list[Cue]]:
    return [rule_cues(t) for t in texts]


class ConversationScorer:
    """Feeds a conversation's messages through the cue finder and keeps every speaker's state.

    `cue_finder` takes a batch of normalised messages and returns their cues (rules, or rules
    and the classifier); batches let the classifier embed many messages at once."""

    def __init__(self, cue_finder: CueFinder = rules_only) -> None:
        self.cue_finder = cue_finder

    def tag(self, conversation: Conversation) -> list[tuple[Normalised, list[Cue]]]:
        """Each message normalised, with its cues."""
        normalised = [normalise(m.text) for m in conversation.messages]
        return list(zip(normalised, self.cue_finder(normalised), strict=True))

    def score(self, conversation: Conversation,
              tagged: list[tuple[Normalised, list[Cue]]] | None = None
              ) -> dict[str, SpeakerState]:
        """Every speaker's state after the last message (`tagged`: `tag`'s result, when the
        caller needs the cues too)."""
        states: dict[str, SpeakerState] = {}
        # Writers who addressed someone as mum, dad or teacher (in a chat of two: the other).
        addressers: set[str] = set()
        messages = conversation.messages
        tagged = self.tag(conversation) if tagged is None else tagged
        asked_age_by: str | None = None  # who asked an age or grade in the last message
        for message, (text, found) in zip(messages, tagged, strict=True):
            state = states.setdefault(message.speaker, SpeakerState(message.speaker))
            if asked_age_by not in (None, message.speaker) and answers_as_minor(text):
                state.minor = True  # "15", "중2", "8th" right after "how old are you?"
            asked_age_by = message.speaker if any(c.label == "age_probe" for c in found) \
                else asked_age_by if message.speaker == asked_age_by else None
            # A rule's age question ("are you in middle school?") is no sign of the asker's age.
            asking = any(c.label == "age_probe" and c.source == "rules" for c in found)
            for cue in found:
                if cue.label == "minor" and not asking:  # "are you in middle school?"
                    state.minor = True
                elif cue.label == "parent":
                    addressers.add(state.speaker)
                elif cue.label == "place_time":
                    state.place_time_at.append(message.index)
                elif cue.label in STAGES:
                    if cue.label == "meeting":
                        state.meeting_at.append(message.index)
                    best = state.stages.get(cue.label)
                    if best is None or cue.weight > best.weight:
                        state.stages[cue.label] = StageHit(cue.weight, message, text,
                                                           cue.source)
            for each in states.values():
                each.addressed_as_parent = bool(addressers - {each.speaker})
                self._update(each, states, message.index)
        return states

    @staticmethod
    def _update(state: SpeakerState, states: dict[str, SpeakerState], index: int) -> None:
        strong = {s: hit for s, hit in state.stages.items() if hit.weight >= 0.5}
        total = sum(hit.weight for hit in strong.values())
        raw = total * (1 + COMBINATION * max(0, len(strong) - 1))
        minor_other = any(o.minor for o in states.values() if o.speaker != state.speaker)
        factor = 1.0
        if not minor_other:
            factor *= NO_MINOR_FACTOR
        if state.minor:
            factor *= PEER_FACTOR
        if state.addressed_as_parent:
            factor *= PARENT_FACTOR
        state.score = round(raw * factor, 3)
        tier = "none"
        if (state.score >= REVIEW_SCORE and len(strong) >= 2 and RISK_STAGES & set(strong)
                and minor_other):
            tier = "review"
            if "meeting" in strong and any(
                    abs(m - p) <= PLACE_TIME_WINDOW for m in state.meeting_at
                    for p in state.place_time_at):
                tier = "urgent"
        if TIERS.index(tier) > TIERS.index(state.tier):
            state.tier = tier
            if state.first_alert_message is None:
                state.first_alert_message = index


def evidence(state: SpeakerState, lines: int = 5) -> list[dict]:
    """The lines that weighed most: each stage's strongest message, strongest first."""
    by_message: dict[int, dict] = {}
    for stage, hit in sorted(state.stages.items(), key=lambda kv: -kv[1].weight):
        entry = by_message.setdefault(hit.message.index, {
            "message": hit.message.index,
            "time": hit.message.time.isoformat() if hit.message.time else None,
            "text": hit.message.text, "normalised": hit.normalised.text,
            "slang": list(hit.normalised.slang), "stages": [], "weight": 0.0})
        entry["stages"].append(stage)
        entry["weight"] = round(max(entry["weight"], hit.weight), 3)
    ranked = sorted(by_message.values(), key=lambda e: (-e["weight"], e["message"]))
    return ranked[:lines]


def timeline(state: SpeakerState) -> list[dict]:
    """Each stage at the message where it first weighed most, in conversation order."""
    return [{"stage": stage, "message": hit.message.index,
             "time": hit.message.time.isoformat() if hit.message.time else None,
             "source": hit.source}
            for stage, hit in sorted(state.stages.items(), key=lambda kv: kv[1].message.index)]
