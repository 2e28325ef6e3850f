"""Frozen grooming eval: run ``haechi chats scan --json`` over testkit/grooming_eval and score it.

This is a frozen evaluation split. No rule, threshold or model may ever be tuned on it; figures
from it are reported as "frozen grooming eval".

Each file is scanned by its own ``haechi chats scan --json --no-alerts`` process with a fresh
``HAECHI_HOME`` in a temporary folder and a fixed ``HAECHI_PSEUDONYM_KEY``, so no alert is sent
and nothing is kept. A conversation counts as alerted when its tier is ``review`` or ``urgent``
(``urgent`` alone is reported too).

Message indices. Labels count real messages only (1-based): lines written by a participant
with text; photo, sticker, video, call and deleted-message placeholders and system lines
(joins, leaves, invites, pins) are not counted. Haechi's ``first_alert_message`` is 0-based and,
depending on the format, counts placeholders (KakaoTalk) or not (Telegram, Discord). Each
label carries ``items``, the rendered lines spelled ``m`` (real), ``p`` (placeholder), ``s``
(system); the script picks the reading whose length equals Haechi's ``messages`` and maps the
alert index to the number of real messages up to and including it.

Right suspect. Haechi prints speakers as ``P-`` + the first 10 hex digits of
HMAC-SHA256(key, speaker key) (found by comparing its output with known names, not by reading
its source): the lower-cased display name for KakaoTalk, the author id for Discord. Labels list
each speaker's possible keys (display name, Discord handle and id, Telegram ``from_id``); the
script recomputes their pseudonyms (as written, lower-cased and case-folded). Where every
speaker Haechi prints maps back to a labelled speaker, the alerted speaker is checked against
the labelled suspect; otherwise the file is reported as not checkable.

eSPD latency-weighted F1 (Vogt, Leser & Akbik 2021, "Early Detection of Sexual Predators in
Chats", following Sadeque et al. 2018's F_latency): for each true-positive chat the warning
latency k is the number of messages read when the first warning is raised (1-based);
penalty(k) = -1 + 2 / (1 + exp(-p * (k - 1))), with p chosen so that the penalty is 0.5 at the
median number of messages per chat of the dataset (p = ln 3 / (median - 1));
speed = 1 - median(penalty over true positives); F_latency = F1 * speed. F1 here is the
conversation-level F1 (a chat is positive when it is a grooming chat; a warning on a negative
chat is a false positive). Real messages are used for k and for the median.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The frozen split judges; the dev split (written the same way by another session, in the same
# formats) is the one rules, thresholds and the model may be tuned and trained on.
SPLITS = {"frozen": ROOT / "testkit" / "grooming_eval", "dev": ROOT / "testkit" / "grooming_dev"}
HAECHI = ROOT / ".venv" / "bin" / "haechi"
KEY = "frozen-grooming-eval"


def pseudonym(name: str, key: str = KEY) -> str:
    return "P-" + hmac.new(key.encode(), name.encode(), hashlib.sha256).hexdigest()[:10]


def scan(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """One fresh-home scan of one file: its JSON result, or the error it printed."""
    with tempfile.TemporaryDirectory(prefix="haechi-eval-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAECHI_")}
        env.update({"HAECHI_HOME": home, "HAECHI_PSEUDONYM_KEY": KEY})
        proc = subprocess.run([str(HAECHI), "chats", "scan", "--json", "--no-alerts", str(path)],
                              capture_output=True, text=True, env=env, timeout=600, check=False)
    results = [json.loads(x) for x in proc.stdout.splitlines() if x.strip().startswith("{")]
    if proc.returncode != 0 or not results:
        err = " ".join(x for x in proc.stderr.splitlines() if "scanned in" not in x).strip()
        return None, err or f"exit {proc.returncode}, no result"
    # A file is one conversation here; if an importer splits it, keep the riskiest reading.
    order = {"none": 0, "review": 1, "urgent": 2}
    best = max(results, key=lambda r: (order.get(str(r.get("tier")), 0), r.get("score") or 0))
    best["_conversations"] = len(results)
    return best, None


def reading(label: dict[str, Any], messages: int) -> tuple[str, str] | None:
    """How Haechi's `messages` line up with the label's rendered lines: real messages only,
    with placeholders, or every line; the name and the lines spelled, or None."""
    items: str = label["items"]
    readings = {"real": "m" * label["messages"], "with-placeholders": items.replace("s", ""),
                "all-lines": items}
    return next(((name, spelled) for name, spelled in readings.items()
                 if len(spelled) == messages), None)


def real_index(label: dict[str, Any], messages: int, index: int) -> tuple[int, str]:
    """Haechi's 0-based alert index as a 1-based count of real messages, and the reading used."""
    found = reading(label, messages)
    if found is None:
        return min(label["messages"], index + 1), "unaligned"
    name, spelled = found
    return max(1, spelled[: index + 1].count("m")), name


def rate(num: int, den: int) -> float | None:
    return round(num / den, 3) if den else None


def wilson(num: int, den: int, z: float = 1.96) -> list[float] | None:
    """95% Wilson score interval of a rate: the set is small, so the figures are wide."""
    if not den:
        return None
    ph = num / den
    mid = (ph + z * z / (2 * den)) / (1 + z * z / den)
    half = z * math.sqrt(ph * (1 - ph) / den + z * z / (4 * den * den)) / (1 + z * z / den)
    return [round(max(0.0, mid - half), 3), round(min(1.0, mid + half), 3)]


def f_beta(p: float, r: float, beta: float) -> float:
    if p == 0 and r == 0:
        return 0.0
    return (1 + beta**2) * p * r / (beta**2 * p + r)


def espd(rows: list[dict[str, Any]], median_messages: float) -> dict[str, Any]:
    tp = [r for r in rows if r["grooming"] and r["alerted"]]
    fp = sum(1 for r in rows if not r["grooming"] and r["alerted"])
    pos = sum(1 for r in rows if r["grooming"])
    precision = len(tp) / (len(tp) + fp) if tp or fp else 0.0
    recall = len(tp) / pos if pos else 0.0
    f1 = f_beta(precision, recall, 1.0)
    p = math.log(3) / (median_messages - 1) if median_messages > 1 else 1.0
    penalties = [-1 + 2 / (1 + math.exp(-p * (r["alert_at"] - 1))) for r in tp]
    speed = 1 - statistics.median(penalties) if penalties else 0.0
    return {"p": round(p, 4), "median_messages_per_chat": median_messages,
            "median_penalty_tp": round(statistics.median(penalties), 3) if penalties else None,
            "speed": round(speed, 3), "f1": round(f1, 3),
            "latency_weighted_f1": round(f1 * speed, 3)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pos = [r for r in rows if r["grooming"]]
    neg = [r for r in rows if not r["grooming"]]
    tp = sum(r["alerted"] for r in pos)
    fp = sum(r["alerted"] for r in neg)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / len(pos) if pos else 0.0
    return {"grooming": len(pos), "negatives": len(neg), "alerted_grooming": tp,
            "false_alerts": fp, "recall": rate(tp, len(pos)),
            "urgent_recall": rate(sum(r["tier"] == "urgent" for r in pos), len(pos)),
            "recall_95ci": wilson(tp, len(pos)),
            "false_alert_rate": rate(fp, len(neg)), "false_alert_rate_95ci": wilson(fp, len(neg)),
            "precision": round(precision, 3),
            "f0.5": round(f_beta(precision, recall, 0.5), 3)}


def group_rate(rows: list[dict[str, Any]], key: str, grooming: bool) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["grooming"] != grooming:
            continue
        values = r[key] if isinstance(r[key], list) else [r[key]]
        for v in values:
            groups[v].append(r)
    return {k: {"n": len(v), "alerted": sum(x["alerted"] for x in v),
                "rate": rate(sum(x["alerted"] for x in v), len(v))}
            for k, v in sorted(groups.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", action="store_true", help="also print one row per file")
    ap.add_argument("--split", choices=sorted(SPLITS), default="frozen",
                    help="frozen: the eval split (never tune on it); dev: the tuning split")
    args = ap.parse_args()
    split = SPLITS[args.split]
    labels: dict[str, dict[str, Any]] = json.loads((split / "labels.json").read_text("utf-8"))
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for name, label in sorted(labels.items()):
        result, error = scan(split / "chats" / name)
        row: dict[str, Any] = {"file": name, "grooming": label["grooming"],
                               "language": label["language"], "format": label["format"],
                               "kind": label["kind"], "messages": label["messages"],
                               "fair_point": label["fair_point"], "imported": result is not None,
                               "alerted": False, "tier": "none", "alert_at": None,
                               "index_reading": None, "right_suspect": None}
        if result is None:
            failed[name] = error or "unknown error"
            rows.append(row)
            continue
        row["tier"] = result.get("tier", "none")
        row["alerted"] = row["tier"] in ("review", "urgent")
        row["haechi_messages"] = result.get("messages")
        first = result.get("first_alert_message")
        if row["alerted"] and first is not None:
            row["alert_at"], row["index_reading"] = real_index(
                label, int(result.get("messages") or 0), int(first))
        elif row["alerted"]:
            row["alert_at"], row["index_reading"] = label["messages"], "no-index"
        known = {pseudonym(variant): display for display, keys in label["speaker_keys"].items()
                 for key in keys for variant in {key, key.lower(), key.casefold()}}
        printed = {s.get("speaker") for s in result.get("speakers", [])} | {result.get("speaker")}
        printed.discard(None)
        if row["alerted"] and label["grooming"]:
            if printed and printed <= set(known):
                row["right_suspect"] = known.get(result.get("speaker", "")) == label["suspect"]
            else:
                row["right_suspect"] = "not checkable"
        rows.append(row)

    median_messages = statistics.median(label["messages"] for label in labels.values())
    imported = [r for r in rows if r["imported"]]
    alerted_pos = [r for r in rows if r["grooming"] and r["alerted"]]
    after = [r["alert_at"] - r["fair_point"] for r in alerted_pos if r["alert_at"] is not None]
    checked = [r for r in alerted_pos if isinstance(r["right_suspect"], bool)]
    report: dict[str, Any] = {
        "eval": "frozen grooming eval" if args.split == "frozen" else "grooming dev split",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, check=False).stdout.strip(),
        "files": len(rows),
        "all_files": summarise(rows),
        "imported_files_only": summarise(imported),
        "recall_by_language": group_rate(rows, "language", True),
        "recall_by_kind": group_rate(rows, "kind", True),
        "recall_by_format": group_rate(rows, "format", True),
        "false_alerts_by_kind": group_rate(rows, "kind", False),
        "false_alerts_by_language": group_rate(rows, "language", False),
        "espd_latency_weighted_f1": espd(rows, median_messages),
        "espd_latency_weighted_f1_imported_only": espd(imported, statistics.median(
            labels[r["file"]]["messages"] for r in imported) if imported else 0),
        "messages_after_fair_point": {
            "median": statistics.median(after) if after else None,
            "alerts_before_fair_point": sum(1 for a in after if a < 0),
            "values": sorted(after)},
        "index_readings": dict(sorted({r["index_reading"]: sum(
            x["index_reading"] == r["index_reading"] for x in alerted_pos + [
                y for y in rows if not y["grooming"] and y["alerted"]])
            for r in rows if r["index_reading"]}.items())),
        "right_suspect": {"checkable": len(checked),
                          "not_checkable": len(alerted_pos) - len(checked),
                          "right": sum(r["right_suspect"] is True for r in checked),
                          "rate": rate(sum(r["right_suspect"] is True for r in checked),
                                       len(checked))},
        "failed_imports": failed,
        "false_alert_files": [r["file"] for r in rows if not r["grooming"] and r["alerted"]],
        "missed_grooming_files": [r["file"] for r in rows if r["grooming"] and not r["alerted"]],
    }
    if args.rows:
        report["rows"] = rows
    json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
    print()


if __name__ == "__main__":
    main()
