"""The alert desk: grooming alerts in the review app, to be read and given a disposition.

The queue (/alerts) holds the alerts nobody has disposed of yet, urgent first, then the one
waiting longest; an alert's page (/alerts/N) shows why it was raised, from its flagged excerpt
and from nothing else: the stage timeline (stage, message number, time, rules or classifier),
the lines that weighed most (the suspect's pseudonym, the words, their times), how sure the
reading is that the target is a minor with the target's lines it rests on, and how many of the
suspect's lines read as reported speech. A person whose role may `dispose` sets one of
grooming/excerpts.py's DISPOSITIONS with a short note; that is stored with the alert (who,
when, what) and written to the audit log in the same transaction, and it is labelled data
for the next training run (`haechi chats dispositions --json`).

This module belongs to grooming, which may import nothing of takedown; the review app belongs
to takedown. So the desk is mounted onto the app by haechi/commands/review.py and reaches the
app only through the host it is given (takedown.review.app.ReviewHost, whose shape DeskHost
spells out here): its sessions, roles, CSRF check, templates and audit log, the same code as
the case pages', never a copy. The permission names are given by the caller too (roles.py's).

The alert is JSON stored by whatever scorer ran, or by anyone with the database: every field
is read defensively and bounded (`alert_view`), so a huge stage list or a field of the wrong
type shows as less, never as an error; Jinja escapes every word of chat text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection, Engine

from grooming.cues import STAGES
from grooming.excerpts import (
    DISPOSITIONS,
    MAX_NOTE,
    PSEUDONYM_CHARS,
    STAGE_CHARS,
    DispositionError,
    count_open,
    dispose,
    excerpt,
    label_features,
    open_alerts,
)

# Alerts shown on the queue page (the rest wait their turn behind them).
QUEUE_ALERTS = 200
# What an alert's page shows at most: the scorer writes eleven stages, five evidence lines and
# a handful of the target's lines; more than these is not an alert the scorer wrote.
MAX_TIMELINE = 64
MAX_LINES = 32
MAX_LINE_CHARS = 2000
MAX_SLANG = 16
TIME_CHARS = 40
SOURCES = ("rules", "classifier")


class DeskSession(Protocol):
    user: str
    role: str
    csrf: str


class DeskHost(Protocol):
    """What the desk needs of the app it is mounted on (takedown.review.app.ReviewHost)."""

    engine: Engine
    clock: Callable[[], dt.datetime]
    require: Callable[[Request, str | None, str | None], DeskSession]
    page: Callable[..., HTMLResponse]

    def allowed(self, session: DeskSession, permission: str) -> bool: ...

    def audit(self, conn: Connection, *, actor: str, action: str,
              detail: dict[str, Any] | None = None) -> str: ...


def _text(value: Any, limit: int) -> str:
    """A string field as shown: numbers as written, anything else (lists, objects) as nothing;
    cut at `limit` characters."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return ""
    return value if len(value) <= limit else value[:limit] + "…"


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _items(value: Any, limit: int) -> tuple[list[Mapping[str, Any]], int]:
    """The objects among the first `limit` entries of a list field, and how many entries are
    not shown (past the limit, or not objects)."""
    if not isinstance(value, list):
        return [], 0
    shown = [item for item in value[:limit] if isinstance(item, Mapping)]
    return shown, len(value) - len(shown)


def _stage(name: Any) -> dict[str, str]:
    stage = _text(name, STAGE_CHARS)
    return {"stage": stage, "meaning": STAGES.get(stage, "")}


def alert_view(alert: Any) -> dict[str, Any]:
    """What the alert's page shows of the stored alert JSON, every field checked and bounded:
    nothing but the timeline, the evidence lines, the minor evidence and the counts."""
    alert = alert if isinstance(alert, Mapping) else {}
    steps, steps_left = _items(alert.get("timeline"), MAX_TIMELINE)
    timeline = [{**_stage(step.get("stage")), "message": _number(step.get("message")),
                 "time": _text(step.get("time"), TIME_CHARS),
                 "source": step.get("source") if step.get("source") in SOURCES else ""}
                for step in steps]
    lines, lines_left = _items(alert.get("evidence"), MAX_LINES)
    evidence = []
    for line in lines:
        slang = line.get("slang") if isinstance(line.get("slang"), list) else []
        stages = line.get("stages") if isinstance(line.get("stages"), list) else []
        evidence.append({
            "message": _number(line.get("message")), "time": _text(line.get("time"), TIME_CHARS),
            "text": _text(line.get("text"), MAX_LINE_CHARS),
            "normalised": _text(line.get("normalised"), MAX_LINE_CHARS),
            "slang": [_text(s, 200) for s in slang[:MAX_SLANG] if _text(s, 200)],
            "stages": [_stage(s) for s in stages[:MAX_TIMELINE] if _text(s, STAGE_CHARS)]})
    minor = alert.get("minor_evidence")
    minor = minor if isinstance(minor, Mapping) else {}
    minor_lines, minor_left = _items(minor.get("lines"), MAX_LINES)
    features = label_features(alert)
    return {
        "target": features["target"] or "",
        "stages": [_stage(s) for s in features["stages"]],
        "first_alert_message": _number(alert.get("first_alert_message")),
        "messages": _number(alert.get("messages")),
        "timeline": timeline, "timeline_left": steps_left,
        "evidence": evidence, "evidence_left": lines_left,
        "minor_probability": features["minor_probability"],
        "minor_lines": [{"message": _number(line.get("message")),
                         "text": _text(line.get("text"), MAX_LINE_CHARS)} for line in minor_lines],
        "minor_left": minor_left,
        "reported_speech": features["reported_speech"],
    }


def _row(stored: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A queue row: the excerpt's columns and the few fields of its alert the queue shows."""
    features = label_features(stored["alert"])
    return {"id": stored["id"], "tier": stored["tier"], "score": stored["score"],
            "conversation": _text(stored["conversation"], PSEUDONYM_CHARS),
            "speaker": _text(stored["speaker"], PSEUDONYM_CHARS),
            "target": features["target"] or "", "stages": features["stages"],
            "alerted_at": stored["created_at"],
            "waiting": str(now - stored["created_at"]).split(".")[0]}


def desk_routes(host: DeskHost, *, read: str, disposing: str) -> APIRouter:
    """The desk's pages on `host`: `read` is the permission to see alerts, `disposing` the one
    to set a disposition (takedown/review/roles.py's ALERTS and DISPOSE)."""
    router = APIRouter()

    def back(path: str, message: str) -> RedirectResponse:
        return RedirectResponse(f"{path}?{urlencode({'message': message})}", status_code=303)

    @router.get("/alerts", response_class=HTMLResponse)
    def alert_queue(request: Request, message: str = "") -> HTMLResponse:
        host.require(request, read, None)
        now = host.clock()
        with host.engine.connect() as conn:
            rows = open_alerts(conn, now, QUEUE_ALERTS)
            waiting = count_open(conn, now)
        return host.page(request, "alerts.html", alerts=[_row(r, now) for r in rows],
                         waiting=waiting, message=message[:300])

    @router.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_page(request: Request, alert_id: int, message: str = "") -> HTMLResponse:
        session = host.require(request, read, None)
        with host.engine.begin() as conn:
            stored = excerpt(conn, alert_id, host.clock())
            if stored is None:
                raise HTTPException(404, f"no alert {alert_id} (it may have expired)")
            # Chat text, often a child's: who read which alert is on the record, as who saw
            # which picture is.
            host.audit(conn, actor=session.user, action="alert:view",
                       detail={"alert": alert_id})
        return host.page(request, "alert.html", alert=_row(stored, host.clock()),
                         view=alert_view(stored["alert"]), given=stored["disposition"],
                         dispositions=DISPOSITIONS, max_note=MAX_NOTE, message=message[:300],
                         may_dispose=host.allowed(session, disposing))

    @router.post("/alerts/{alert_id}/dispose")
    def set_disposition(request: Request, alert_id: int,
                        disposition: str = Form(..., max_length=32),
                        note: str = Form("", max_length=MAX_NOTE),
                        csrf: str = Form(...)) -> RedirectResponse:
        session = host.require(request, disposing, csrf)
        try:
            with host.engine.begin() as conn:
                given = dispose(conn, alert_id, disposition, session.user, host.clock(), note)
                host.audit(conn, actor=session.user, action="alert:disposed", detail={
                    "alert": alert_id, "conversation": given["conversation"],
                    "speaker": given["speaker"], "disposition": disposition})
        except DispositionError as exc:
            return back(f"/alerts/{alert_id}", str(exc))
        return back("/alerts", f"Alert {alert_id}: {DISPOSITIONS[disposition]}.")

    return router
