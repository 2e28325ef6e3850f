"""`haechi report`: how fast notices go out and how fast hosts remove content, per host.

Removal rate is removed cases over cases that were notified. Medians are taken over the
cases that reached each step: detection → first notice sent, first notice → removal. A notice
is past its deadline when the deadline it gave the host (notices.deadline) has passed and a
case it listed is still online (sent or escalated).

The report is read by two audiences. `build_report` gives programs JSON whose keys are a
contract (times in seconds, ISO timestamps; keys are added, never renamed or dropped).
`render_html` and `render_text` give people the same figures in hours and days, cases by
status, the notices past their deadline, and empty states that say what has not happened
yet instead of a "0%" or an "n/a". Every human wording of a figure is made here, once.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Engine, select

from takedown.schema import cases, notices

# Statuses in the order a case moves through them, with what each means to a person.
STATUS_MEANINGS: dict[str, str] = {
    "detected": "found, no notice drafted yet",
    "drafted": "notice drafted, waiting for review",
    "approved": "notice approved, not sent yet",
    "sent": "notice sent, still online",
    "escalated": "escalated, still online",
    "removed": "taken down",
    "reuploaded": "taken down, then uploaded again",
    "rejected": "rejected as a false match",
}
# Case statuses whose content is still online after its host was notified.
STILL_ONLINE = ("sent", "escalated")
# The width in pixels of a 100% bar, where bars start (after the host name), and the chart's
# width with room for the label after a full bar.
BAR_WIDTH = 400
BAR_X = 220
SVG_WIDTH = BAR_X + BAR_WIDTH + 240

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _plural(count: float, word: str) -> str:
    return f"{count:g} {word}" + ("" if count == 1 else "s")


def human_duration(seconds: float) -> str:
    """A duration as a person reads it: '40 s', '12 min', '5 h', '1.5 h', '2 days (48 h)'."""
    if seconds < 59.5:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = seconds / 3600
    if round(hours, 1) < 24:
        return f"{round(hours, 1) if hours < 10 else round(hours):g} h"
    days = round(hours / 24, 1)
    if days < 7:
        return f"{_plural(days, 'day')} ({round(hours)} h)"
    return _plural(round(days), "day")


def human_time(moment: str | dt.datetime) -> str:
    """A timestamp (ISO text or datetime) as '2026-11-27 09:00 UTC'."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def removal_phrase(summary: dict[str, Any]) -> str:
    """How many notified cases were removed, or that no notice was sent yet."""
    notified, removed = summary["notified"], summary["removed"]
    if not notified:
        return "no notice sent yet"
    if not removed:
        return f"none of {notified} notified yet"
    return f"{removed} of {notified} notified ({summary['removal_rate']:.0%})"


def notice_time_phrase(summary: dict[str, Any]) -> str:
    """Median detection → first notice, or that no notice was sent yet."""
    seconds = summary["median_detection_to_notice_s"]
    return "no notice sent yet" if seconds is None else human_duration(seconds)


def removal_time_phrase(summary: dict[str, Any]) -> str:
    """Median first notice → removal, or why there is none yet."""
    seconds = summary["median_notice_to_removal_s"]
    if seconds is not None:
        return human_duration(seconds)
    return "no notice sent yet" if not summary["notified"] else "nothing removed yet"


def statuses_in_order(by_status: dict[str, int]) -> list[dict[str, Any]]:
    """The statuses that have cases, in lifecycle order, each with its meaning and count."""
    known = [s for s in STATUS_MEANINGS if by_status.get(s)]
    unknown = sorted(s for s in by_status if s not in STATUS_MEANINGS and by_status[s])
    return [{"status": s, "meaning": STATUS_MEANINGS.get(s, s), "count": by_status[s]}
            for s in known + unknown]


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


def _notices_past_deadline(rows: list[Any], sent_notices: list[Any], now: dt.datetime
                           ) -> list[dict[str, Any]]:
    """Sent notices whose deadline has passed with a listed case still online, oldest first."""
    online: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row["status"] in STILL_ONLINE and row["notice_id"] is not None:
            online[row["notice_id"]].append(row["id"])
    overdue = [n for n in sent_notices
               if n["deadline"] is not None and n["deadline"] < now and online[n["id"]]]
    return [{
        "notice": n["id"], "site": n["site"], "to": n["recipient"],
        "sent_at": n["sent_at"].isoformat() if n["sent_at"] else None,
        "deadline": n["deadline"].isoformat(),
        "overdue_s": round((now - n["deadline"]).total_seconds(), 1),
        "cases_online": sorted(online[n["id"]]),
    } for n in sorted(overdue, key=lambda n: (n["deadline"], n["id"]))]


def build_report(engine: Engine, now: dt.datetime | None = None) -> dict[str, Any]:
    """The figures as JSON: overall, per host, and the notices past their deadline."""
    now = now or dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        rows = conn.execute(select(cases)).mappings().all()
        sent_notices = conn.execute(select(notices).where(notices.c.status == "sent")
                                    ).mappings().all()
    by_host: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_host[row["site"]].append(row)
    return {
        "generated_at": now.isoformat(),
        "overall": _summary(rows),
        "hosts": {host: _summary(host_rows) for host, host_rows in sorted(by_host.items())},
        "notices_past_deadline": _notices_past_deadline(rows, list(sent_notices), now),
    }


def _bars(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One chart row per host: a bar only where there is a figure, else what is missing."""
    hosts = report["hosts"]
    longest = max((h["median_notice_to_removal_s"] for h in hosts.values()
                   if h["median_notice_to_removal_s"]), default=None)
    rate_rows, time_rows = [], []
    for host, h in hosts.items():
        rate_width = BAR_WIDTH * h["removal_rate"] if h["removed"] else 0
        rate_rows.append({"host": host, "width": rate_width, "label": removal_phrase(h)})
        seconds = h["median_notice_to_removal_s"]
        time_width = BAR_WIDTH * seconds / longest if seconds and longest else 0
        time_rows.append({"host": host, "width": time_width, "label": removal_time_phrase(h)})
    return {"rate": rate_rows, "time": time_rows}


def _view(report: dict[str, Any]) -> dict[str, Any]:
    """What both renderings show, worded for people."""
    overall = report["overall"]
    overdue_by_host: dict[str, int] = defaultdict(int)
    overdue = []
    for n in report["notices_past_deadline"]:
        overdue_by_host[n["site"]] += 1
        overdue.append({**n, "deadline_text": human_time(n["deadline"]),
                        "sent_text": human_time(n["sent_at"]) if n["sent_at"] else "unknown",
                        "overdue_text": human_duration(n["overdue_s"])})
    hosts = [{
        "host": host, **h, "statuses": statuses_in_order(h["by_status"]),
        "removal_text": removal_phrase(h), "notice_time_text": notice_time_phrase(h),
        "removal_time_text": removal_time_phrase(h), "past_deadline": overdue_by_host[host],
    } for host, h in report["hosts"].items()]
    return {
        "generated_text": human_time(report["generated_at"]),
        "overall": overall, "statuses": statuses_in_order(overall["by_status"]),
        "removal_text": removal_phrase(overall),
        "notice_time_text": notice_time_phrase(overall),
        "removal_time_text": removal_time_phrase(overall),
        "hosts": hosts, "overdue": overdue, "any_sent": overall["notified"] > 0,
    }


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page with charts."""
    return _templates.get_template("report.html").render(
        report=report, view=_view(report), bars=_bars(report), bar_x=BAR_X,
        svg_width=SVG_WIDTH)


def render_text(report: dict[str, Any]) -> str:
    """The report as plain text for a terminal."""
    view = _view(report)
    overall = view["overall"]
    lines = [f"Takedown report, {view['generated_text']}", ""]
    if not overall["cases"]:
        lines.append("No cases yet: no registered victim's picture has been found.")
        return "\n".join(lines) + "\n"
    lines += [f"{_plural(overall['cases'], 'case')}, by status:"]
    width = max(len(s["status"]) for s in view["statuses"])
    lines += [f"  {s['status']:<{width}}  {s['count']:>5}  {s['meaning']}"
              for s in view["statuses"]]
    lines += ["",
              f"Removed after notice: {view['removal_text']}",
              f"Median time from detection to first notice: {view['notice_time_text']}",
              f"Median time from first notice to removal: {view['removal_time_text']}", ""]
    if not view["any_sent"]:
        lines.append("Past their deadline: no notice sent yet.")
    elif not view["overdue"]:
        lines.append("Past their deadline: none.")
    else:
        lines.append(f"Past their deadline ({len(view['overdue'])}):")
        for n in view["overdue"]:
            lines.append(f"  notice {n['notice']} to {n['to']} ({n['site']}): deadline "
                         f"{n['deadline_text']}, passed {n['overdue_text']} ago; "
                         f"{_plural(len(n['cases_online']), 'case')} still online "
                         f"({', '.join(f'#{c}' for c in n['cases_online'])})")
    lines += ["", "Per host:"]
    for h in view["hosts"]:
        statuses = ", ".join(f"{s['count']} {s['status']}" for s in h["statuses"])
        lines.append(f"  {h['host']}: {_plural(h['cases'], 'case')} ({statuses})"
                     + (f", {_plural(h['past_deadline'], 'notice')} past deadline"
                        if h["past_deadline"] else ""))
        lines.append(f"      removed after notice: {h['removal_text']}; "
                     f"first notice to removal: {h['removal_time_text']}")
    return "\n".join(lines) + "\n"
