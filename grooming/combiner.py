"""The pair verdict: a logistic model over what was read in one writer's messages to one person.

The rules, the classifier and the people evidence each read one thing (a stage in a line, how
likely someone is a minor, whether a line is reported speech); how much each should weigh
against the others, in which combinations, is what a hand-set formula got wrong on chats it was
not written with. So these readings are features, and a logistic regression, trained by
`scripts/train_grooming.py` on the training split (`testkit/grooming_train/`: chats written
blind to the rules, with their lines annotated) and the suite's train part, gives the pair's
probability of being grooming. The alert threshold is chosen on the dev split, never on the
frozen eval. The weights live in `combiner.npz` beside this module, as the classifier's do.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from grooming.cues import STAGES
from grooming.lines import LINE_TOP

WEIGHTS = Path(__file__).with_name("combiner.npz")
STAGE_ORDER = tuple(sorted(STAGES))
# A stage below this weight is a hint the hand formula ignores; the model sees every weight.
STRONG = 0.5
COMBINATION = 0.25  # the hand formula: each distinct strong stage beyond the first adds 25%
FEATURES = (*(f"stage:{s}" for s in STAGE_ORDER), "strong_stages", "hand_score",
            "hand_score_x_target_minor", "target_minor", "target_minor_logit", "writer_minor",
            "addressed_as_parent", "reported_share", "meeting_with_place_or_time",
            "messages_log", "line_top", "line_max")


class PairReading(Protocol):
    """What the scorer has read of one pair (grooming.scoring.SpeakerState satisfies it)."""

    stages: dict
    messages: int
    lines: list[float]
    reported_speech: int
    addressed_as_parent: bool


def hand_score(weights: list[float]) -> float:
    """The sum of the strong stages' weights, raised by COMBINATION per further stage."""
    strong = [w for w in weights if w >= STRONG]
    return sum(strong) * (1 + COMBINATION * max(0, len(strong) - 1))


def features(state: PairReading, target_minor: float, writer_minor: float,
             concrete_meeting: bool) -> list[float]:
    """The pair's features, in FEATURES order."""
    weights = [state.stages[s].weight if s in state.stages else 0.0 for s in STAGE_ORDER]
    raw = hand_score(weights)
    clipped = min(max(target_minor, 1e-4), 1 - 1e-4)
    return [*weights, float(sum(w >= STRONG for w in weights)), raw, raw * target_minor,
            target_minor, math.log(clipped / (1 - clipped)), writer_minor,
            float(state.addressed_as_parent),
            min(state.reported_speech, max(state.messages, 1)) / max(state.messages, 1),
            float(concrete_meeting), math.log1p(state.messages), *line_summary(state.lines)]


def line_summary(probabilities: list[float]) -> tuple[float, float]:
    """The mean of the LINE_TOP most groomer-like lines, and the most (0 with none)."""
    if not probabilities:
        return 0.0, 0.0
    top = sorted(probabilities)[-LINE_TOP:]
    return sum(top) / len(top), top[-1]


@dataclass(frozen=True)
class PairModel:
    coef: tuple[float, ...]
    intercept: float
    threshold: float  # the probability at which a pair is put up for review
    mean: tuple[float, ...]  # features are standardised before the dot product
    scale: tuple[float, ...]

    def probability(self, values: list[float]) -> float:
        z = self.intercept + sum(c * (v - m) / s for c, v, m, s in
                                 zip(self.coef, values, self.mean, self.scale, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def save(self, path: Path = WEIGHTS) -> None:
        np.savez(path, features=np.array(FEATURES), coef=np.array(self.coef, np.float64),
                 intercept=np.float64(self.intercept), threshold=np.float64(self.threshold),
                 mean=np.array(self.mean), scale=np.array(self.scale))


@functools.cache
def load(path: Path = WEIGHTS) -> PairModel:
    """The trained model; one trained on other features is an error, never a silent guess."""
    data = np.load(path, allow_pickle=False)
    if tuple(str(x) for x in data["features"]) != FEATURES:
        raise ValueError(f"{path} was trained on other features: run scripts/train_grooming.py")
    return PairModel(tuple(float(x) for x in data["coef"]), float(data["intercept"]),
                     float(data["threshold"]), tuple(float(x) for x in data["mean"]),
                     tuple(float(x) for x in data["scale"]))
