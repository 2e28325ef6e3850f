"""`haechi report`: how fast notices go out and how fast hosts remove content, per host.

Removal rate is removed cases over cases that were notified. Medians are taken over the
cases that reached each step: detection → first notice sent, first notice → removal.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Engine, select

from takedown.schema import cases

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=jinja2.select_autoescape(["html"]),
)


def _median_seconds(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _summary(rows: list[Any]) -> dict[str, Any]:
    notified = [r for r in rows if r["first_sent_at"] is not None]
    removed = [r for r in notified if r["removed_at"] is not None]
    to_notice = [(r["first_sent_at"] - r["detected_at"]).total_seconds()
                 for r in notified]
    to_removal = [(r["removed_at"] - r["first_sent_at"]).total_seconds()
                  for r in removed]
    by_status: dict[str, int] = defaultdict(int)
    for r in rows:
        by_status[r["status"]] += 1
    return {
        "cases": len(rows),
        "notified": len(notified),
        "removed": len(removed),
        "removal_rate": round(len(removed) / len(notified), 3) if notified else None,
        "median_detection_to_notice_s": _median_seconds(to_notice),
        "median_notice_to_removal_s": _median_seconds(to_removal),
        "by_status": dict(sorted(by_status.items())),
    }


def build_report(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(cases)).mappings().all()
    by_host: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_host[row["site"]].append(row)
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "overall": _summary(rows),
        "hosts": {host: _summary(host_rows) for host, host_rows in sorted(by_host.items())},
    }


def render_html(report: dict[str, Any]) -> str:
    hosts = report["hosts"]
    longest = max([h["median_notice_to_removal_s"] or 0 for h in hosts.values()] + [1])
    return _templates.get_template("report.html").render(report=report, longest=longest)
