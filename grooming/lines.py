"""The line model: how much one line reads like a groomer's, from its characters.

Stages are what a groomer does; the way he writes while doing it ("good girl", "ur so mature",
"this stays between us ok?", "문상 보내줄게 대신") is a signal of its own that no list of words
holds. A logistic regression over hashed character n-grams (2 to 4 characters, within words:
spelling, slang and Korean endings without a morphology step), trained by
`scripts/train_grooming.py` on the training split (the suspect's lines from the fair point on,
against every line of the hard negatives), gives each line a probability. It costs
microseconds a line, so every line is read, unlike the embeddings.

The scorer keeps, per pair, the line probabilities of the writer's messages to the addressee;
the pair model (`grooming.combiner`) reads the mean of the highest LINE_TOP of them. Measured
when it was added (2026-12-02): area under the ROC curve 0.85 for single lines of the dev
split, against 0.77 for a logistic regression on the e5 embeddings of the same lines.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from grooming.cues import Cue
from grooming.normalise import Normalised

WEIGHTS = Path(__file__).with_name("lines.npz")
FEATURES = 2**18  # hashed n-gram columns: few collisions among a few hundred thousand n-grams
LINE_TOP = 3  # the pair model reads the mean of the writer's this many most groomer-like lines
C = 3.0  # inverse regularisation (1 to 10 scored 0.84 to 0.86 on dev lines)
NGRAMS = (2, 4)
LABEL = "line"  # the cue that carries a line's probability (a signal, never a stage)


@functools.cache
def _vectoriser():  # scikit-learn's hashing is stateless: the same columns in training and use
    from sklearn.feature_extraction.text import HashingVectorizer

    # Binary and l2-normalised: which n-grams a line has, not how often (idf weighting and
    # counts scored alike on the dev split, 0.85).
    return HashingVectorizer(analyzer="char_wb", ngram_range=NGRAMS, n_features=FEATURES,
                             alternate_sign=False, binary=True, norm="l2", dtype=np.float32)


def vectors(texts: list[str]):  # a sparse matrix, one row per text
    return _vectoriser().transform(texts)


class LineModel:
    def __init__(self, coef: np.ndarray, intercept: float) -> None:
        self.coef, self.intercept = coef.astype(np.float32), float(intercept)

    @classmethod
    @functools.cache
    def load(cls, path: Path = WEIGHTS) -> LineModel:
        data = np.load(path, allow_pickle=False)
        return cls(data["coef"], float(data["intercept"]))

    def save(self, path: Path = WEIGHTS) -> None:
        np.savez_compressed(path, coef=self.coef, intercept=np.float32(self.intercept))

    def probabilities(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, np.float32)
        z = vectors(texts) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def cues(self, texts: list[Normalised]) -> list[list[Cue]]:
        """Each text's probability as a `line` cue."""
        return [[Cue(LABEL, round(float(p), 4), "lines")]
                for p in self.probabilities([t.text for t in texts])]
