"""A score per directed pair (speaker → addressee), updated message by message, and its tier.

Grooming is a sequence, not a word, and it is one person working on another: one cue ("send a
photo?") is harmless between friends and alarming after questions about age and whether the
child is alone. So:

- every message is credited to its writer and the person it is said to (`grooming.addressing`:
  replies, mentions, turn-taking), so in a group room one adult's approach to one child is
  scored as that pair, not spread over the room;
- each stage counts once per pair, at its strongest message;
- a stage said in reported or quoted speech (`grooming.speech`) counts REPORTED_FACTOR of its
  weight;
- whether the addressee (and the writer) is a minor is evidence, not a gate
  (`grooming.people`);
- the verdict is the pair model's (`grooming.combiner`): a probability from the stages' weights,
  their combination, both people's minor evidence, a parent's address and the share of reported
  speech; a pair is put up for "review" at the model's threshold when at least one risk stage
  weighs, and "urgent" when, on top of that, the writer proposes a meeting with a place or a
  time.

The first message at which a pair's tier becomes "review" or "urgent" is kept: the earlier an
agency hears of it, the better. A speaker's result is their riskiest pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from grooming import combiner
from grooming.addressing import addressees
from grooming.combiner import STRONG, PairModel
from grooming.cues import STAGES, Cue, rule_cues
from grooming.lines import LABEL as LINE
from grooming.normalise import Normalised, normalise
from grooming.people import MinorEvidence, People
from grooming.schema import Conversation, Message
from grooming.speech import REPORTED_FACTOR, reported

RISK_STAGES = frozenset({"alone", "gifts", "secrecy", "media_request", "sexual", "meeting",
                         "isolation", "threat"})
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
    """One writer's state towards one addressee (`target`; None when nobody can be named)."""

    speaker: str
    target: str | None = None
    stages: dict[str, StageHit] = field(default_factory=dict)
    messages: int = 0  # the writer's text messages to the target
    lines: list[float] = field(default_factory=list)  # their line-model probabilities
    place_time_at: list[int] = field(default_factory=list)
    meeting_at: list[int] = field(default_factory=list)
    reported_speech: int = 0  # the writer's messages to the target read as reported speech
    addressed_as_parent: bool = False  # the target calls the writer mum, dad or teacher
    minor_evidence: MinorEvidence | None = None  # the target's, when last scored
    score: float = 0.0  # the pair model's probability
    tier: str = "none"
    first_alert_message: int | None = None
    features: list[float] = field(default_factory=list)  # the model's input, last scored


def rules_only(texts: list[Normalised]) -> list[list[Cue]]:
    return [rule_cues(t) for t in texts]


def together(*finders: CueFinder) -> CueFinder:
    """One cue finder from several (rules and classifier, the line model): every message's
    cues from each of them."""
    def find(texts: list[Normalised]) -> list[list[Cue]]:
        found = [list(cues) for cues in finders[0](texts)]
        for finder in finders[1:]:
            for mine, more in zip(found, finder(texts), strict=True):
                mine += more
        return found
    return find


class ConversationScorer:
    """Feeds a conversation's messages through the cue finder and keeps every pair's state.

    `cue_finder` takes a batch of normalised messages and returns their cues (rules, or rules
    and the classifier); batches let the classifier embed many messages at once."""

    def __init__(self, cue_finder: CueFinder = rules_only, model: PairModel | None = None
                 ) -> None:
        self.cue_finder = cue_finder
        self.model = model or combiner.load()

    def tag(self, conversation: Conversation) -> list[tuple[Normalised, list[Cue]]]:
        """Each message normalised, with its cues (none for media placeholders)."""
        messages = conversation.messages
        normalised = [normalise(m.text if m.kind == "text" else "") for m in messages]
        texts = [i for i, m in enumerate(messages) if m.kind == "text"]
        found = self.cue_finder([normalised[i] for i in texts]) if texts else []
        cues: list[list[Cue]] = [[] for _ in messages]
        for i, each in zip(texts, found, strict=True):
            cues[i] = each
        return list(zip(normalised, cues, strict=True))

    def pairs(self, conversation: Conversation,
              tagged: list[tuple[Normalised, list[Cue]]] | None = None
              ) -> tuple[dict[tuple[str, str | None], SpeakerState], People]:
        """Every pair's state after the last message, and everyone's minor evidence."""
        pairs: dict[tuple[str, str | None], SpeakerState] = {}
        people = People()
        messages = conversation.messages
        tagged = self.tag(conversation) if tagged is None else tagged
        to = addressees(messages)
        asked_age_by: str | None = None  # who asked an age or grade in the last message
        for message, addressee, (text, found) in zip(messages, to, tagged, strict=True):
            if message.kind != "text":
                continue
            writer = message.speaker
            answering = asked_age_by not in (None, writer)
            people.read(message.index, writer, addressee, text, found, answering)
            asked_age_by = writer if any(c.label == "age_probe" for c in found) \
                else asked_age_by if writer == asked_age_by else None
            state = pairs.setdefault((writer, addressee), SpeakerState(writer, addressee))
            state.messages += 1
            discount = REPORTED_FACTOR if reported(text, message.text) else 1.0
            state.reported_speech += discount < 1.0
            for cue in found:
                if cue.label == "parent" and addressee is not None:
                    # The writer calls the addressee mum, dad or teacher: that pair's other
                    # direction is a parent's.
                    parental = pairs.setdefault((addressee, writer),
                                                SpeakerState(addressee, writer))
                    parental.addressed_as_parent = True
                elif cue.label == "place_time":
                    state.place_time_at.append(message.index)
                elif cue.label == LINE:
                    state.lines.append(cue.weight)
                elif cue.label in STAGES:
                    if cue.label == "meeting":
                        state.meeting_at.append(message.index)
                    weight = cue.weight * discount
                    best = state.stages.get(cue.label)
                    if best is None or weight > best.weight:
                        state.stages[cue.label] = StageHit(weight, message, text, cue.source)
            # A message changes its own pair (and, for a parent's address, the reverse one)
            # and the evidence of its writer and addressee: only pairs of those two people can
            # score differently, so a busy room costs its active pairs, not all of them.
            touched = {writer, addressee}
            for each in pairs.values():
                if each.speaker in touched or each.target in touched:
                    self._update(each, people, message.index)
        return pairs, people

    def score(self, conversation: Conversation,
              tagged: list[tuple[Normalised, list[Cue]]] | None = None
              ) -> dict[str, SpeakerState]:
        """Every speaker's riskiest pair after the last message (`tagged`: `tag`'s result,
        when the caller needs the cues too)."""
        pairs, _ = self.pairs(conversation, tagged)
        best: dict[str, SpeakerState] = {}
        for state in pairs.values():
            held = best.get(state.speaker)
            if held is None or (TIERS.index(state.tier), state.score) > (
                    TIERS.index(held.tier), held.score):
                best[state.speaker] = state
        return best

    def _update(self, state: SpeakerState, people: People, index: int) -> None:
        strong = {s for s, hit in state.stages.items() if hit.weight >= STRONG}
        state.minor_evidence = people.evidence(state.target)
        concrete = "meeting" in strong and any(
            abs(m - p) <= PLACE_TIME_WINDOW for m in state.meeting_at for p in state.place_time_at)
        state.features = combiner.features(state, state.minor_evidence.probability,
                                           people.evidence(state.speaker).probability, concrete)
        state.score = round(self.model.probability(state.features), 3)
        tier = "none"
        if state.score >= self.model.threshold and RISK_STAGES & strong:
            tier = "urgent" if concrete else "review"
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
