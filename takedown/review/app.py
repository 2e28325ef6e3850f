"""The reviewer web app (FastAPI, pages rendered on the server).

A person logs in, takes the queue oldest-first, opens a case (its picture blurred and grey) and
does what their role allows (takedown/review/roles.py): see the picture clearly (an explicit
click, written to the audit log, lasting CLEAR_VIEW_SECONDS), edit the drafted notice, approve
the version of it they read, reject a false match, send, read the audit log.

What protects it, each in its own module with why: sessions kept in the database, which logout
ends (sessions.py); logins throttled per name and per address (throttle.py) and argon2 checks
bounded per process (passwords.py); roles and four eyes (roles.py); the Content Security
Policy and the other headers, and Secure cookies behind HTTPS (security.py); approvals bound
to the draft version read (takedown/notices.py's draft_version). Every form carries a CSRF
token: the session's, or before login a signed one in a cookie of its own (so that the login
page, which the load balancer's health check asks for every few seconds, writes nothing).

Other parts of Haechi add pages of their own (the grooming alert desk, grooming/desk.py) as
extensions: `create_app(..., extensions=[...])`, wired by haechi/commands/review.py, the one
place that may import both. An extension's routes get a ReviewHost, which is this app's
sessions, roles, CSRF check, templates (with the security headers of every response) and audit
log, so that its pages are guarded exactly as the case pages are, by the same code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Connection, Engine, select

from engines.home import data_folder_key
from engines.objects import ObjectStore
from engines.sealed import SealedMediaError
from engines.settings import current
from matcher.decode import UnreadableImage
from takedown import audit
from takedown.cases import CaseStore, system_clock
from takedown.ladder import awaiting_people, current_notice, history
from takedown.notices import (
    NoticeError,
    approve_notice,
    edit_notice,
    notice_json,
    notice_version,
    reference_of,
)
from takedown.review.accounts import MAX_NAME, MAX_PASSWORD, check_password
from takedown.review.passwords import PASSWORDS, SLOT_WAIT_SECONDS, PasswordPool, PasswordPoolBusy
from takedown.review.previews import case_picture, render_preview
from takedown.review.roles import (
    APPROVE,
    AUDIT,
    EDIT,
    REJECT,
    REVEAL,
    ROLES,
    SEND,
    VIEW,
    four_eyes_objection,
    may,
    refusal,
)
from takedown.review.security import ReviewSettings, client_address, security_headers
from takedown.review.sessions import Session, Sessions
from takedown.review.throttle import LoginThrottle
from takedown.schema import audit_log, cases
from takedown.sending import NoticeSender, SendError
from takedown.status import TransitionError

QUEUE_STATUSES = ("detected", "drafted", "approved")
# How long one click on "Show the clear picture" lets its session see that case clearly.
CLEAR_VIEW_SECONDS = 300
# The session cookie and the login form's CSRF cookie (with `__Host-` in front over HTTPS).
SESSION_COOKIE = "haechi_review"
LOGIN_COOKIE = "haechi_login"
# Audit entries per page of /audit, newest first.
AUDIT_PAGE_ENTRIES = 200
# Who the audit log names for a failed login: no account logged in.
ANONYMOUS = "anonymous"

templates = Jinja2Templates(directory=str(Path(__file__).parents[1] / "templates" / "review"))


def session_secret() -> str:
    """The key the login form's CSRF token is signed with (sessions themselves are rows in the
    database): HAECHI_SECRET_KEY, shared by every review task so a form shown by one is
    accepted by another, else a random key kept (mode 600) in the data folder."""
    configured = current().secret_key
    if configured:
        return configured
    return data_folder_key("review-secret", lambda: secrets.token_urlsafe(32).encode()
                           ).decode().strip()


class LoginTokens:
    """The login form's CSRF token: a nonce and its HMAC under the app's secret, in a cookie
    and in the form alike. Signed, so a cookie planted by another site on the same domain is
    refused; kept in no table, so showing the login page stores nothing."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _mac(self, nonce: str) -> str:
        return hmac.new(self._key, b"login-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def new(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._mac(nonce)}"

    def valid(self, token: str | None) -> bool:
        nonce, _, mac = (token or "").partition(".")
        return bool(nonce) and hmac.compare_digest(mac.encode(), self._mac(nonce).encode())


def same_token(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class ReviewHost:
    """What an extension's routes use of the review app, and all they may: the database the
    audit log is in, the app's clock, `require` (the session, if its role has the permission
    and, for a form, the CSRF token is its own; else the redirect to the login page or a 403),
    `page` (a template of takedown/templates/review/ rendered as the case pages are) and
    `audit` (an entry in the one audit chain, inside the caller's transaction)."""

    engine: Engine
    clock: Callable[[], dt.datetime]
    require: Callable[[Request, str | None, str | None], Session]
    page: Callable[..., HTMLResponse]

    def allowed(self, session: Session, permission: str) -> bool:
        return may(session.role, permission)

    def audit(self, conn: Connection, *, actor: str, action: str,
              detail: dict[str, Any] | None = None) -> str:
        return audit.append(conn, actor=actor, action=action, at=self.clock(), detail=detail)


@dataclass(frozen=True)
class Extension:
    """Pages another part of Haechi adds to the app: its routes, made with the ReviewHost, and
    its link in the header (`label` to `path`) for the roles with `permission`."""

    label: str
    path: str
    permission: str
    routes: Callable[[ReviewHost], APIRouter]


def create_app(case_store: CaseStore, media: ObjectStore, sender: NoticeSender,
               secret: str | None = None, *, settings: ReviewSettings | None = None,
               passwords: PasswordPool = PASSWORDS, extensions: Sequence[Extension] = ()
               ) -> FastAPI:
    engine: Engine = case_store.engine
    clock = case_store.clock
    settings = settings or ReviewSettings.from_environment()
    sessions = Sessions(engine, clock)
    throttle = LoginThrottle(engine, clock)
    login_tokens = LoginTokens(secret or session_secret())
    session_cookie = settings.cookie_name(SESSION_COOKIE)
    login_cookie = settings.cookie_name(LOGIN_COOKIE)
    app = FastAPI(title="Haechi review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                      ) -> Response:
        request.state.nonce = secrets.token_urlsafe(16)
        response = await call_next(request)
        response.headers.update(security_headers(request.state.nonce, settings.https))
        return response

    def current(request: Request) -> Session | None:
        """The request's live session (looked up once per request), or None."""
        if not hasattr(request.state, "session"):
            token = request.cookies.get(session_cookie)
            request.state.session = sessions.load(token) if token else None
        return request.state.session

    def require(request: Request, permission: str | None, csrf: str | None = None
                ) -> Session:
        """The session, if it may do `permission` (any role, for None) and `csrf` is its
        token (for a form)."""
        session = current(request)
        if session is None:
            raise HTTPException(303, headers={"Location": "/login"})
        if csrf is not None and not same_token(csrf, session.csrf):
            raise HTTPException(403, "the form expired or did not come from this site; "
                                     "reload the page and try again")
        if permission is not None and not may(session.role, permission):
            raise HTTPException(403, refusal(session.role, permission))
        return session

    def page(request: Request, name: str, status_code: int = 200,
             headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        session = current(request)
        return templates.TemplateResponse(request, name, {
            "user": session.user if session else None,
            "role": session.role if session else None,
            "can": ROLES.get(session.role, frozenset()) if session else frozenset(),
            "csrf": session.csrf if session else "", "nonce": request.state.nonce,
            "links": [(e.label, e.path) for e in extensions
                      if session and may(session.role, e.permission)],
            **context}, status_code=status_code, headers=headers)

    def back_to(case_id: int, message: str = "") -> RedirectResponse:
        suffix = f"?{urlencode({'message': message})}" if message else ""
        return RedirectResponse(f"/cases/{case_id}{suffix}", status_code=303)

    def login_page(request: Request, error: str = "", status_code: int = 200,
                   retry_after: int | None = None) -> HTMLResponse:
        token = request.cookies.get(login_cookie)
        fresh = not login_tokens.valid(token)
        if fresh:
            token = login_tokens.new()
        response = page(request, "login.html", status_code=status_code,
                        headers={"Retry-After": str(retry_after)} if retry_after else None,
                        error=error, login_csrf=token)
        if fresh:
            response.set_cookie(login_cookie, token, **settings.cookie_options())
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> HTMLResponse:
        return login_page(request)

    @app.post("/login")
    def login(request: Request, name: str = Form(..., max_length=MAX_NAME),
              password: str = Form(..., max_length=MAX_PASSWORD),
              csrf: str = Form(...)) -> Response:
        cookie = request.cookies.get(login_cookie)
        if not (login_tokens.valid(cookie) and same_token(csrf, cookie or "")):
            raise HTTPException(403, "the login form expired or did not come from this site; "
                                     "reload the page and try again")
        address = client_address(request, settings.trust_proxy)
        refused = throttle.admit(name, address)
        if refused is not None:
            return login_page(request, refused.message, 429, refused.seconds)
        try:
            right = check_password(engine, name, password, passwords)
        except PasswordPoolBusy:
            throttle.not_checked(name, address)
            return login_page(request, "The server is busy checking other logins: try again "
                                       "in a few seconds.", 503, int(SLOT_WAIT_SECONDS))
        if not right:
            with engine.begin() as conn:
                audit.append(conn, actor=ANONYMOUS, action="reviewer:login-failed", at=clock(),
                             detail={"name": name, "address": address})
            return login_page(request, "Wrong name or password.")
        earlier = current(request)
        if earlier is not None:
            sessions.end(earlier)
        with engine.begin() as conn:
            throttle.succeeded(conn, name, address)
            token = sessions.start(conn, name)
            audit.append(conn, actor=name, action="reviewer:login", at=clock(),
                         detail={"address": address})
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(session_cookie, token, **settings.cookie_options())
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form(...)) -> Response:
        session = require(request, None, csrf)
        sessions.end(session)
        with engine.begin() as conn:
            audit.append(conn, actor=session.user, action="reviewer:logout", at=clock())
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(session_cookie, **settings.cookie_options())
        return response

    @app.get("/", response_class=HTMLResponse)
    def queue(request: Request) -> HTMLResponse:
        require(request, VIEW)
        now = clock()
        with engine.connect() as conn:
            rows = conn.execute(select(cases).where(
                cases.c.status.in_(QUEUE_STATUSES) | cases.c.id.in_(awaiting_people(conn)))
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
        session = require(request, VIEW)
        case = load_case(case_id)
        notice_id = current_notice(engine, case_id)
        notice = notice_json(engine, notice_id) if notice_id else None
        objection = None
        if notice and settings.four_eyes and notice["status"] == "approved":
            with engine.connect() as conn:
                objection = four_eyes_objection(conn, notice["id"], session.user)
        return page(request, "case.html", case=case, notice=notice, message=message,
                    version=notice_version(notice) if notice else None,
                    send_objection=objection, ladder=history(engine, case_id),
                    clear=session.clear_until(case_id) > clock().timestamp(),
                    reference=reference_of(case_id))

    def picture_response(session: Session, case_id: int, clear: bool) -> Response:
        case = load_case(case_id)
        try:
            picture = case_picture(media, case)
        except (UnreadableImage, SealedMediaError, OSError) as exc:
            raise HTTPException(404, f"no picture to show: {exc}") from exc
        with engine.begin() as conn:
            audit.append(conn, actor=session.user, action="evidence:clear" if clear else
                         "evidence:preview", at=clock(), case_id=case_id)
        return Response(render_preview(picture, clear), media_type="image/jpeg")

    @app.get("/cases/{case_id}/preview")
    def preview(request: Request, case_id: int) -> Response:
        return picture_response(require(request, VIEW), case_id, clear=False)

    @app.post("/cases/{case_id}/reveal")
    def reveal(request: Request, case_id: int, csrf: str = Form(...)) -> Response:
        session = require(request, REVEAL, csrf)
        load_case(case_id)
        with engine.begin() as conn:
            audit.append(conn, actor=session.user, action="evidence:reveal", at=clock(),
                         case_id=case_id)
        sessions.grant_clear_view(session, case_id, clock().timestamp() + CLEAR_VIEW_SECONDS)
        return back_to(case_id)

    @app.get("/cases/{case_id}/clear")
    def clear_picture(request: Request, case_id: int) -> Response:
        session = require(request, REVEAL)
        if session.clear_until(case_id) <= clock().timestamp():
            raise HTTPException(403, "ask for the clear view on the case page first")
        return picture_response(session, case_id, clear=True)

    def act(request: Request, case_id: int, csrf: str, permission: str,
            action: Callable[[Session], str], errors: tuple[type[Exception], ...]) -> Response:
        """Run a person's action, if their role allows it, and come back to the case page
        with its outcome."""
        session = require(request, permission, csrf)
        try:
            return back_to(case_id, action(session))
        except errors as exc:
            return back_to(case_id, str(exc))

    @app.post("/notices/{notice_id}/edit")
    def edit(request: Request, notice_id: int, case_id: int = Form(...),
             subject: str = Form(...), body: str = Form(...), csrf: str = Form(...)
             ) -> Response:
        def save(session: Session) -> str:
            edit_notice(engine, notice_id, subject, body, session.user, clock())
            return "Notice saved."

        return act(request, case_id, csrf, EDIT, save, (NoticeError,))

    @app.post("/notices/{notice_id}/approve")
    def approve(request: Request, notice_id: int, case_id: int = Form(...),
                version: str = Form(..., max_length=64), csrf: str = Form(...)) -> Response:
        def approve_it(session: Session) -> str:
            approve_notice(engine, notice_id, session.user, clock(), version=version)
            return "Approved."

        return act(request, case_id, csrf, APPROVE, approve_it, (NoticeError, TransitionError))

    @app.post("/notices/{notice_id}/send")
    def send(request: Request, notice_id: int, case_id: int = Form(...),
             csrf: str = Form(...)) -> Response:
        def send_it(session: Session) -> str:
            if settings.four_eyes:
                with engine.connect() as conn:
                    objection = four_eyes_objection(conn, notice_id, session.user)
                if objection:
                    return objection
            return f"Sent ({sender.send_notice(notice_id, actor=session.user)})."

        return act(request, case_id, csrf, SEND, send_it, (SendError,))

    @app.post("/cases/{case_id}/reject")
    def reject(request: Request, case_id: int, csrf: str = Form(...)) -> Response:
        session = require(request, REJECT, csrf)
        try:
            case_store.reject_false_match(case_id, session.user)
        except TransitionError as exc:
            return back_to(case_id, str(exc))
        return RedirectResponse("/", status_code=303)

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request, before: int | None = None) -> HTMLResponse:
        require(request, AUDIT)
        query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(AUDIT_PAGE_ENTRIES)
        if before is not None:
            query = query.where(audit_log.c.seq < before)
        with engine.connect() as conn:
            entries = conn.execute(query).mappings().all()
        older = entries[-1]["seq"] if len(entries) == AUDIT_PAGE_ENTRIES else None
        return page(request, "audit.html", entries=entries, older=older,
                    reference_of=reference_of)

    host = ReviewHost(engine=engine, clock=clock, require=require, page=page)
    for extension in extensions:
        app.include_router(extension.routes(host))
    return app


def default_app(extensions: Sequence[Extension] = ()) -> FastAPI:
    """The app on this installation's database, object store and SMTP server."""
    from engines.objects import open_store
    from takedown.database import takedown_engine

    media = open_store()
    store = CaseStore(takedown_engine(), store=media, clock=system_clock)
    return create_app(store, media, NoticeSender(store.engine), extensions=extensions)
