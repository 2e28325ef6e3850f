"""The reviewer web app (FastAPI, pages rendered on the server).

A reviewer logs in, takes the queue oldest-first, opens a case (its picture blurred and grey),
edits the drafted notice if needed, approves, rejects a false match, or sends. Seeing the
picture clearly takes an explicit click, which is written to the audit log, and lasts a few
minutes. Every form carries a per-session CSRF token; sessions are signed cookies.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, select
from starlette.middleware.sessions import SessionMiddleware

from crawler.store import ObjectStore
from haechi.home import data_folder_key
from matcher.decode import UnreadableImage
from takedown import audit
from takedown.cases import CaseStore, system_clock
from takedown.evidence import EvidenceError
from takedown.notices import (
    NoticeError,
    approve_notice,
    edit_notice,
    notice_json,
    reference_of,
)
from takedown.review.accounts import check_password
from takedown.review.previews import case_picture, render_preview
from takedown.schema import cases
from takedown.sending import NoticeSender, SendError
from takedown.status import TransitionError

QUEUE_STATUSES = ("detected", "drafted", "approved")
CLEAR_VIEW_SECONDS = 300

templates = Jinja2Templates(directory=str(Path(__file__).parents[1] / "templates" / "review"))


def session_secret() -> str:
    """HAECHI_SECRET_KEY, else a random key kept (mode 600) in the data folder."""
    configured = os.environ.get("HAECHI_SECRET_KEY")
    if configured:
        return configured
    return data_folder_key("review-secret", lambda: secrets.token_urlsafe(32).encode()
                           ).decode().strip()


def create_app(case_store: CaseStore, media: ObjectStore, sender: NoticeSender,
               secret: str | None = None) -> FastAPI:
    engine: Engine = case_store.engine
    clock = case_store.clock
    app = FastAPI(title="Haechi review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=secret or session_secret(),
                       same_site="strict", max_age=8 * 3600, session_cookie="haechi_review")

    def user_of(request: Request) -> str:
        user = request.session.get("user")
        if not user:
            raise HTTPException(303, headers={"Location": "/login"})
        return user

    def csrf_token(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(24)
        return request.session["csrf"]

    def check_csrf(request: Request, token: str) -> None:
        if not secrets.compare_digest(token, request.session.get("csrf", "")):
            raise HTTPException(403, "the form expired or did not come from this site; "
                                     "reload the page and try again")

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {
            "user": request.session.get("user"), "csrf": csrf_token(request), **context})

    def back_to(case_id: int, message: str = "") -> RedirectResponse:
        suffix = f"?message={message}" if message else ""
        return RedirectResponse(f"/cases/{case_id}{suffix}", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, error: str = "") -> HTMLResponse:
        return page(request, "login.html", error=error)

    @app.post("/login")
    def login(request: Request, name: str = Form(...), password: str = Form(...),
              csrf: str = Form(...)) -> Response:
        check_csrf(request, csrf)
        if not check_password(engine, name, password):
            return page(request, "login.html", error="Wrong name or password.")
        request.session.clear()
        request.session["user"] = name
        with engine.begin() as conn:
            audit.append(conn, actor=name, action="reviewer:login", at=clock())
        return RedirectResponse("/", status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form(...)) -> Response:
        check_csrf(request, csrf)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def queue(request: Request) -> HTMLResponse:
        user_of(request)
        now = clock()
        with engine.connect() as conn:
            rows = conn.execute(select(cases).where(cases.c.status.in_(QUEUE_STATUSES))
                                .order_by(cases.c.detected_at, cases.c.id)).mappings().all()
        items = [{"id": r["id"], "reference": reference_of(r["id"]), "site": r["site"],
                  "victim": r["victim"], "status": r["status"], "url": r["image_url"],
                  "waiting": str(now - r["detected_at"]).split(".")[0]}
                 for r in rows]
        return page(request, "queue.html", items=items)

    def load_case(case_id: int) -> dict[str, Any]:
        case = case_store.get(case_id)
        if case is None:
            raise HTTPException(404, f"no case {case_id}")
        return case

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    def case_page(request: Request, case_id: int, message: str = "") -> HTMLResponse:
        user_of(request)
        case = load_case(case_id)
        notice = notice_json(engine, case["notice_id"]) if case["notice_id"] else None
        clear_until = request.session.get("clear", {}).get(str(case_id), 0)
        return page(request, "case.html", case=case, notice=notice, message=message,
                    clear=clear_until > clock().timestamp(), reference=reference_of(case_id))

    def picture_response(request: Request, case_id: int, clear: bool) -> Response:
        user = user_of(request)
        case = load_case(case_id)
        try:
            picture = case_picture(media, case)
        except (UnreadableImage, EvidenceError, OSError) as exc:
            raise HTTPException(404, f"no picture to show: {exc}") from exc
        with engine.begin() as conn:
            audit.append(conn, actor=user, action="evidence:clear" if clear else
                         "evidence:preview", at=clock(), case_id=case_id)
        return Response(render_preview(picture, clear), media_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})

    @app.get("/cases/{case_id}/preview")
    def preview(request: Request, case_id: int) -> Response:
        return picture_response(request, case_id, clear=False)

    @app.post("/cases/{case_id}/reveal")
    def reveal(request: Request, case_id: int, csrf: str = Form(...)) -> Response:
        check_csrf(request, csrf)
        user = user_of(request)
        with engine.begin() as conn:
            audit.append(conn, actor=user, action="evidence:reveal", at=clock(),
                         case_id=case_id)
        grants = dict(request.session.get("clear", {}))
        grants[str(case_id)] = clock().timestamp() + CLEAR_VIEW_SECONDS
        request.session["clear"] = grants
        return back_to(case_id)

    @app.get("/cases/{case_id}/clear")
    def clear_picture(request: Request, case_id: int) -> Response:
        user_of(request)
        if request.session.get("clear", {}).get(str(case_id), 0) <= clock().timestamp():
            raise HTTPException(403, "ask for the clear view on the case page first")
        return picture_response(request, case_id, clear=True)

    def act(request: Request, case_id: int, csrf: str, action: Callable[[str], str],
            errors: tuple[type[Exception], ...]) -> Response:
        """Run a reviewer's action and come back to the case page with its outcome."""
        check_csrf(request, csrf)
        try:
            return back_to(case_id, action(user_of(request)))
        except errors as exc:
            return back_to(case_id, str(exc))

    @app.post("/notices/{notice_id}/edit")
    def edit(request: Request, notice_id: int, case_id: int = Form(...),
             subject: str = Form(...), body: str = Form(...), csrf: str = Form(...)
             ) -> Response:
        def save(user: str) -> str:
            edit_notice(engine, notice_id, subject, body, user, clock())
            return "Notice saved."

        return act(request, case_id, csrf, save, (NoticeError,))

    @app.post("/notices/{notice_id}/approve")
    def approve(request: Request, notice_id: int, case_id: int = Form(...),
                csrf: str = Form(...)) -> Response:
        def approve_it(user: str) -> str:
            approve_notice(engine, notice_id, user, clock())
            return "Approved."

        return act(request, case_id, csrf, approve_it, (NoticeError, TransitionError))

    @app.post("/notices/{notice_id}/send")
    def send(request: Request, notice_id: int, case_id: int = Form(...),
             csrf: str = Form(...)) -> Response:
        def send_it(user: str) -> str:
            return f"Sent ({sender.send_notice(notice_id, actor=user)})."

        return act(request, case_id, csrf, send_it, (SendError,))

    @app.post("/cases/{case_id}/reject")
    def reject(request: Request, case_id: int, csrf: str = Form(...)) -> Response:
        check_csrf(request, csrf)
        try:
            case_store.reject_false_match(case_id, user_of(request))
        except TransitionError as exc:
            return back_to(case_id, str(exc))
        return RedirectResponse("/", status_code=303)

    return app


def default_app() -> FastAPI:
    """The app on this installation's database, object store and SMTP server."""
    from crawler.store import open_store
    from takedown.database import takedown_engine

    media = open_store()
    store = CaseStore(takedown_engine(), store=media, clock=system_clock)
    return create_app(store, media, NoticeSender(store.engine))
