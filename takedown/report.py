"""`haechi report`: how fast notices go out and how fast hosts remove content, per host and
per rung of the escalation ladder, beside the figures hotlines publish.

Removal rate is removed cases over cases that were notified. Medians are taken over the
cases that reached each step: detection → notice drafted (the case's first move to "drafted"
in the audit log), detection → first notice sent, first notice → removal. A notice is past
its deadline when the deadline it gave the host (notices.deadline) has passed and a case it
listed is still online (sent or escalated).

Time to removal, the contract of the figures a takedown desk compares with the field:

- It runs from the first notice sent to the host (cases.first_sent_at) to cases.removed_at,
  as hotlines measure it from their report; it is also given from detection (detected_at),
  over the same cases. The cases counted are those notified and then removed (removed_at
  set, re-uploads included) or still online (sent, escalated); a case rejected as a false
  match after its notice is in neither.
- Cases still online are censored, not dropped. The share removed within 2.5 days (7 days)
  is the cases removed within 2.5 (7) days of the clock's start over every case whose clock
  started at least 2.5 (7) days ago, removed or not. Medians and p90 are over removed cases
  only, and say so, with the count still online beside them: a median of the fast ones is
  not the whole picture. p90 is the nearest-rank 90th percentile (the time within which 90%
  of removed cases came down), given only from P90_MIN_REMOVED removed cases, else "too few".
- The long tail lists the cases online for more than 42 days after their first notice:
  still online and notified at least 42 days ago, or removed after more than 42 days;
  oldest notice first, each with its reference (HAECHI-000123), host, the rung it reached
  and its days online. Its share is over the cases notified at least 42 days ago.
- Per rung (site → host → cdn → registrar → authority, LADDER): a removed case counts at
  the highest rung whose notice was sent (escalations.sent_at, the site's first_sent_at) no
  later than its removal, "site" if none was; its time runs from that rung's notice to the
  removal. A rung's reached cases are those whose notice at that rung was sent; its still
  online ones are those of them not removed yet (a case at "registrar" has reached "host").

The report is read by two audiences. `build_report` gives programs JSON whose keys are a
contract (times in seconds, ISO timestamps; keys are added, never renamed or dropped).
`render_html` and `render_text` give people the same figures in hours and days, cases by
status, the notices past their deadline, and empty states that say what has not happened
yet instead of a "0%" or an "n/a". Every human wording of a figure is made here, once.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Engine, func, select

from takedown.notices import reference_of
from takedown.schema import audit_log, cases, escalations, notices

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

DAY_S = 86400
# The windows hotlines publish their removal shares for, and where the long tail starts.
WITHIN_DAYS = (2.5, 7)
LONG_TAIL_DAYS = 42
# p90 of fewer removed cases is one or two cases' times, not a percentile.
P90_MIN_REMOVED = 10
# The escalation ladder's rungs, lowest first (takedown/ladder.py climbs them).
LADDER = ("site", "host", "cdn", "registrar", "authority")

# Published hotline figures, beside which Haechi's are shown (as quoted in issue 17).
# INHOPE, Annual Report 2023: the network removed 69% of reported URLs within 2.5 days.
INHOPE_WITHIN_2_5_DAYS = 0.69
INHOPE_WITHIN_2_5_DAYS_YEAR = 2023
# INHOPE, Annual Report 2019: 73% of reported URLs were removed within 7 days.
INHOPE_WITHIN_7_DAYS = 0.73
INHOPE_WITHIN_7_DAYS_YEAR = 2019
# Canadian Centre for Child Protection, Project Arachnid: it re-notices every 24 hours, yet
# 10% of its content took more than 42 days to come down.
ARACHNID_RENOTICE_S = 24 * 3600
ARACHNID_OVER_42_DAYS = 0.10
# Seoul Digital Sex Crime Victim Support Center: its desk prepares a removal request in
# 6 minutes.
SEOUL_REQUEST_S = 6 * 60

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


def draft_time_phrase(summary: dict[str, Any]) -> str:
    """Median detection → notice drafted, or that no notice was drafted yet."""
    seconds = summary["median_detection_to_draft_s"]
    return "no notice drafted yet" if seconds is None else human_duration(seconds)


def _p90_text(times: dict[str, Any]) -> str:
    """The p90 as a duration, or why there is none (too few removed cases)."""
    if times["p90_s"] is not None:
        return human_duration(times["p90_s"])
    return f"too few removed cases ({times['removed']}; {times['p90_min_removed']} needed)"


def times_phrase(times: dict[str, Any]) -> str:
    """Median and p90 over removed cases, naming them so, with the count still online."""
    removed, online = times["removed"], times["still_online"]
    if not removed:
        return (f"nothing removed yet, {online} still online" if online
                else "no notice sent yet")
    return (f"median {human_duration(times['median_s'])}, p90 {_p90_text(times)}, over "
            f"{removed} removed; {online} still online")


def share_phrase(part: int, counted: int, share: float | None, days: float) -> str:
    """`part` of the `counted` cases notified at least `days` days ago, or that none was."""
    since = f"notified at least {days:g} days ago"
    if not counted:
        return f"no case {since} yet"
    if not part:
        return f"none of {counted} {since}"
    return f"{part} of {counted} {since} ({share:.0%})"


def within_phrase(window: dict[str, Any]) -> str:
    """Removed within a window, over the cases notified at least that long ago."""
    return share_phrase(window["removed"], window["cases"], window["share"], window["days"])


def long_tail_phrase(tail: dict[str, Any]) -> str:
    """Online past the long tail's start, over the cases notified at least that long ago."""
    return share_phrase(tail["over"], tail["cases"], tail["share"], tail["days"])


def hotline_phrase(figure: dict[str, Any]) -> str:
    """A published figure as '<source>: 69% (2023)', with what stands behind it."""
    if "seconds" in figure:
        return f"{figure['source']}: a request prepared in {human_duration(figure['seconds'])}"
    text = f"{figure['source']}: {figure['share']:.0%}"
    if "year" in figure:
        text += f" ({figure['year']})"
    if "renotice_s" in figure:
        text += f", re-noticing every {figure['renotice_s'] / 3600:g} h"
    return text


def rung_phrase(rung: dict[str, Any]) -> str:
    """How far a rung got: the cases it reached, those still online, and its removals."""
    if not rung["reached"]:
        return "not reached yet"
    reached = f"reached by {_plural(rung['reached'], 'case')}, {rung['still_online']} still online"
    if not rung["removed"]:
        return f"{reached}; nothing removed at this rung yet"
    return (f"{reached}; {rung['removed']} removed at this rung, median "
            f"{human_duration(rung['median_s'])} from its notice, p90 {_p90_text(rung)}")


def statuses_in_order(by_status: dict[str, int]) -> list[dict[str, Any]]:
    """The statuses that have cases, in lifecycle order, each with its meaning and count."""
    known = [s for s in STATUS_MEANINGS if by_status.get(s)]
    unknown = sorted(s for s in by_status if s not in STATUS_MEANINGS and by_status[s])
    return [{"status": s, "meaning": STATUS_MEANINGS.get(s, s), "count": by_status[s]}
            for s in known + unknown]


def _median_seconds(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _p90_seconds(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile (a real case's time), or None below P90_MIN_REMOVED."""
    if len(values) < P90_MIN_REMOVED:
        return None
    return round(sorted(values)[math.ceil(0.9 * len(values)) - 1], 1)


def _still_online(row: Any) -> bool:
    return row["removed_at"] is None and row["status"] in STILL_ONLINE


def _followed(rows: list[Any]) -> list[Any]:
    """Notified cases that were removed or are still online: the ones removal times cover."""
    return [r for r in rows if r["first_sent_at"] is not None
            and (r["removed_at"] is not None or _still_online(r))]


def _seconds(start: dt.datetime, end: dt.datetime) -> float:
    return (end - start).total_seconds()


def _times(removed_after: list[float], still_online: int) -> dict[str, Any]:
    """Median and p90 over removed cases, with the count still online beside them."""
    return {"removed": len(removed_after), "still_online": still_online,
            "median_s": _median_seconds(removed_after), "p90_s": _p90_seconds(removed_after),
            "p90_min_removed": P90_MIN_REMOVED}


def _window(followed: list[Any], start: str, days: float, now: dt.datetime
            ) -> tuple[int, int]:
    """(cases whose clock started at least `days` ago, those of them removed within it)."""
    window = days * DAY_S
    counted = [r for r in followed if _seconds(r[start], now) >= window]
    removed = [r for r in counted if r["removed_at"] is not None
               and _seconds(r[start], r["removed_at"]) <= window]
    return len(counted), len(removed)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _clock(followed: list[Any], start: str, now: dt.datetime) -> dict[str, Any]:
    """Time to removal from `start` (first_sent_at or detected_at), still-online censored."""
    removed_after = [_seconds(r[start], r["removed_at"]) for r in followed
                     if r["removed_at"] is not None]
    within = []
    for days in WITHIN_DAYS:
        counted, removed = _window(followed, start, days, now)
        within.append({"days": days, "cases": counted, "removed": removed,
                       "share": _share(removed, counted)})
    counted, removed = _window(followed, start, LONG_TAIL_DAYS, now)
    return {**_times(removed_after, len(followed) - len(removed_after)),
            "removed_within": within,
            "online_over_long_tail": {"days": LONG_TAIL_DAYS, "cases": counted,
                                      "over": counted - removed,
                                      "share": _share(counted - removed, counted)}}


def _removal_times(rows: list[Any], now: dt.datetime) -> dict[str, Any]:
    followed = _followed(rows)
    return {"from_notice": _clock(followed, "first_sent_at", now),
            "from_detection": _clock(followed, "detected_at", now)}


def _summary(rows: list[Any], drafted: dict[int, dt.datetime], now: dt.datetime
             ) -> dict[str, Any]:
    notified = [r for r in rows if r["first_sent_at"] is not None]
    removed = [r for r in notified if r["removed_at"] is not None]
    to_notice = [(r["first_sent_at"] - r["detected_at"]).total_seconds()
                 for r in notified]
    to_removal = [(r["removed_at"] - r["first_sent_at"]).total_seconds()
                  for r in removed]
    to_draft = [_seconds(r["detected_at"], drafted[r["id"]]) for r in rows
                if r["id"] in drafted]
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
        "median_detection_to_draft_s": _median_seconds(to_draft),
        "removal_times": _removal_times(rows, now),
    }


def _rungs_sent(followed: list[Any], climbs: list[Any]) -> dict[int, dict[str, dt.datetime]]:
    """When each followed case's notice at each rung was sent, the site's being its first.

    Escalation rows are the rungs above the site's; a row naming the site or a rung not on
    the ladder would shift the site's clock or rank nowhere, so it is not read."""
    sent = {r["id"]: {"site": r["first_sent_at"]} for r in followed}
    for climb in climbs:
        if climb["case_id"] in sent and climb["rung"] in LADDER[1:] and climb["sent_at"]:
            sent[climb["case_id"]][climb["rung"]] = climb["sent_at"]
    return sent


def _rung_of(sent: dict[str, dt.datetime], until: dt.datetime | None) -> str:
    """The highest rung sent no later than `until` (a removal; None: now, any sent)."""
    return max((rung for rung, at in sent.items() if until is None or at <= until),
               key=LADDER.index, default="site")


def _per_rung(followed: list[Any], sent: dict[int, dict[str, dt.datetime]]
              ) -> list[dict[str, Any]]:
    """Per rung: removals attributed to it and their times from its notice, and its reach."""
    removed_after: dict[str, list[float]] = defaultdict(list)
    for r in followed:
        if r["removed_at"] is not None:
            rung = _rung_of(sent[r["id"]], r["removed_at"])
            removed_after[rung].append(_seconds(sent[r["id"]][rung], r["removed_at"]))
    result = []
    for rung in LADDER:
        reached = [r for r in followed if rung in sent[r["id"]]]
        online = sum(1 for r in reached if _still_online(r))
        result.append({"rung": rung, "reached": len(reached),
                       **_times(removed_after[rung], online)})
    return result


def _long_tail(followed: list[Any], sent: dict[int, dict[str, dt.datetime]],
               now: dt.datetime) -> list[dict[str, Any]]:
    """Cases online more than LONG_TAIL_DAYS after their first notice, oldest notice first."""
    tail_s = LONG_TAIL_DAYS * DAY_S
    tail = []
    for r in sorted(followed, key=lambda r: (r["first_sent_at"], r["id"])):
        end = r["removed_at"] or now
        online_s = _seconds(r["first_sent_at"], end)
        if online_s > tail_s or (r["removed_at"] is None and online_s >= tail_s):
            tail.append({
                "case": r["id"], "reference": reference_of(r["id"]), "site": r["site"],
                "rung": _rung_of(sent[r["id"]], r["removed_at"]), "status": r["status"],
                "still_online": r["removed_at"] is None,
                "first_sent_at": r["first_sent_at"].isoformat(),
                "removed_at": r["removed_at"].isoformat() if r["removed_at"] else None,
                "online_s": round(online_s, 1),
                "online_since_detection_s": round(_seconds(r["detected_at"], end), 1),
            })
    return tail


def hotline_figures() -> list[dict[str, Any]]:
    """The published figures Haechi's are shown beside, each with what it measures."""
    return [
        {"key": "inhope_within_2_5_days", "source": "INHOPE network",
         "year": INHOPE_WITHIN_2_5_DAYS_YEAR, "share": INHOPE_WITHIN_2_5_DAYS, "days": 2.5,
         "measures": "reported URLs removed within 2.5 days"},
        {"key": "inhope_within_7_days", "source": "INHOPE network",
         "year": INHOPE_WITHIN_7_DAYS_YEAR, "share": INHOPE_WITHIN_7_DAYS, "days": 7,
         "measures": "reported URLs removed within 7 days"},
        {"key": "arachnid_over_42_days", "source": "Project Arachnid",
         "share": ARACHNID_OVER_42_DAYS, "days": LONG_TAIL_DAYS,
         "renotice_s": ARACHNID_RENOTICE_S,
         "measures": "content that took more than 42 days to come down, "
                     "re-noticed every 24 hours"},
        {"key": "seoul_request_prepared", "source": "Seoul's desk", "seconds": SEOUL_REQUEST_S,
         "measures": "time to prepare a removal request"},
    ]


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
        rows = list(conn.execute(select(cases)).mappings().all())
        sent_notices = conn.execute(select(notices).where(notices.c.status == "sent")
                                    ).mappings().all()
        climbs = list(conn.execute(select(escalations)).mappings().all())
        drafted = dict(conn.execute(
            select(audit_log.c.case_id, func.min(audit_log.c.at))
            .where(audit_log.c.action == "status:drafted", audit_log.c.case_id.isnot(None))
            .group_by(audit_log.c.case_id)).all())
    by_host: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_host[row["site"]].append(row)
    followed = _followed(rows)
    sent = _rungs_sent(followed, climbs)
    return {
        "generated_at": now.isoformat(),
        "overall": _summary(rows, drafted, now),
        "hosts": {host: _summary(host_rows, drafted, now)
                  for host, host_rows in sorted(by_host.items())},
        "notices_past_deadline": _notices_past_deadline(rows, list(sent_notices), now),
        "rungs": _per_rung(followed, sent),
        "long_tail": _long_tail(followed, sent, now),
        "hotline_figures": hotline_figures(),
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
        "times_text": times_phrase(h["removal_times"]["from_notice"]),
        "within_texts": [within_phrase(w)
                         for w in h["removal_times"]["from_notice"]["removed_within"]],
    } for host, h in report["hosts"].items()]
    from_notice = overall["removal_times"]["from_notice"]
    from_detection = overall["removal_times"]["from_detection"]
    published = {f["key"]: hotline_phrase(f) for f in report["hotline_figures"]}
    inhope = [published["inhope_within_2_5_days"], published["inhope_within_7_days"]]
    comparisons = [{"figure": f"removed within {w['days']:g} days of first notice",
                    "haechi": within_phrase(w), "published": figure}
                   for w, figure in zip(from_notice["removed_within"], inhope, strict=True)]
    comparisons += [
        {"figure": f"online more than {LONG_TAIL_DAYS} days after first notice",
         "haechi": long_tail_phrase(from_notice["online_over_long_tail"]),
         "published": published["arachnid_over_42_days"]},
        {"figure": "detection → notice drafted, and sent (medians)",
         "haechi": f"drafted: {draft_time_phrase(overall)}; sent: {notice_time_phrase(overall)}",
         "published": published["seoul_request_prepared"]},
    ]
    tail = [{**c, "online_text": human_duration(c["online_s"]),
             "state_text": "still online" if c["still_online"]
             else f"removed {human_time(c['removed_at'])}"} for c in report["long_tail"]]
    tail_counted = from_notice["online_over_long_tail"]["cases"]
    return {
        "clocks": [{"label": "from first notice", "text": times_phrase(from_notice)},
                   {"label": "from detection", "text": times_phrase(from_detection)}],
        "comparisons": comparisons,
        "rungs": [{"rung": r["rung"], "text": rung_phrase(r)} for r in report["rungs"]],
        "tail": tail,
        "tail_empty_text": (f"None: no case has been online more than {LONG_TAIL_DAYS} days "
                            "after its first notice." if tail_counted else
                            f"No case was notified {LONG_TAIL_DAYS} days ago or more yet."),
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


def _removal_time_lines(view: dict[str, Any]) -> list[str]:
    """Time to removal beside the hotlines' figures, per rung, and the long tail."""
    lines = ["Time to removal (median and p90 over removed cases, cases still online beside):"]
    lines += [f"  {c['label']}: {c['text']}" for c in view["clocks"]]
    lines += ["", "Beside the published hotline figures:"]
    lines += [f"  {c['figure']}: {c['haechi']}  [{c['published']}]"
              for c in view["comparisons"]]
    lines += ["", "Per rung of the ladder (time from that rung's notice to removal):"]
    lines += [f"  {r['rung']}: {r['text']}" for r in view["rungs"]]
    lines.append("")
    if not view["tail"]:
        lines.append(f"Long tail: {view['tail_empty_text']}")
    else:
        lines.append(f"Long tail, online more than {LONG_TAIL_DAYS} days after first notice "
                     f"({len(view['tail'])}), oldest notice first:")
        lines += [f"  {c['reference']}  {c['site']}  rung {c['rung']}  {c['online_text']} "
                  f"online after notice, {c['state_text']}" for c in view["tail"]]
    return [*lines, ""]


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
    lines += _removal_time_lines(view)
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
        lines.append(f"      time to removal: {h['times_text']}; within "
                     + "; within ".join(f"{w['days']:g} days: {text}" for w, text in zip(
                         h["removal_times"]["from_notice"]["removed_within"],
                         h["within_texts"], strict=True)))
    return "\n".join(lines) + "\n"
