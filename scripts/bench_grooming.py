"""Grooming early warning: capability on the project's labelled suite, and speed on one core.

Capability (tests/grooming_suite, eval part: wordings the classifier never saw; a suite the
project wrote measures capability, not real-world accuracy): per-stage recall on the suspect's
labelled lines, the false-alert rate on the hard negatives, the share of grooming conversations
alerted, urgent recall, and the median message index of the first alert; for rules alone, the
classifier alone (recall on labelled lines) and both.

Speed: every message of both suite parts, scored as a scan scores them (rules, classifier, line
model), on one core (OMP_NUM_THREADS=1), the embedding cache cleared before each conversation;
messages per second (target 200 or more) and the share of messages embedded.

    python scripts/bench_grooming.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grooming import classifier  # noqa: E402
from grooming.evaluation import evaluate, to_conversation  # noqa: E402
from grooming.scan import default_scorer  # noqa: E402
from grooming.scoring import ConversationScorer  # noqa: E402
from tests.grooming_suite.build import load  # noqa: E402


def main() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    model = classifier.StageClassifier.load()
    eval_part = load("eval")
    both = evaluate(eval_part, default_scorer())
    rules = evaluate(eval_part, ConversationScorer())  # no classifier, no line model

    def classifier_alone(texts):  # the rules' context signals, the classifier's stages
        context = [[c for c in classifier.rule_cues(t) if c.label not in classifier.STAGES]
                   for t in texts]
        return [a + b for a, b in zip(context, model.classify(texts), strict=True)]

    alone = evaluate(eval_part, ConversationScorer(classifier_alone))
    conversations = [to_conversation(c) for c in load("train") + eval_part]
    messages = sum(len(c.messages) for c in conversations)
    # Real chats repeat few lines: the embedding cache is cleared before every conversation,
    # so each message worth embedding is embedded.
    scorer = default_scorer()
    classifier.embedded = 0
    started = time.perf_counter()
    for conversation in conversations:
        classifier._cache.clear()
        scorer.score(conversation)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "suite": {"conversations": both["conversations"], "part": "eval",
                  "rules_classifier_and_line_model": both,
                  "rules_only": {k: rules[k] for k in ("stage_recall_min",
                                                       "false_alert_rate",
                                                       "grooming_conversations_alerted")},
                  "classifier_only_stage_recall": alone["stage_recall"]},
        "targets": {"stage_recall": 0.9, "false_alert_rate": 0.02},
        "speed": {"messages": messages, "seconds": round(seconds, 2),
                  "messages_per_s_one_core": round(messages / seconds),
                  "embedded_share": round(classifier.embedded / messages, 3),
                  "target": 200},
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
