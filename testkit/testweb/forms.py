"""The test web's abuse desk: a host that takes reports only through a web form, as hosting
providers, CDNs and authorities do (served at FORMS_ADDRESS; server.py routes to it).

- GET /report-abuse: the form (text fields, a textarea, a select, a consent checkbox and a
  hidden token, as real desks have). POST /report-abuse checks every field, records what it
  received and answers 303 to /report-abuse/thanks?ticket=..., whose confirmation names the
  ticket; a report missing a field is answered 400 with no confirmation.
- GET /report-abuse/received: every report received so far, as JSON, for a test to compare
  with what it sent (the desk runs in the test web's process, not the test's).
- GET /report-abuse/hostile/<way>?to=<url>: the same form turned against its user, sending the
  report (or the browser) to `to`: `action` (the form's action), `js-redirect` (a submit
  handler setting location), `redirect` (the POST answered 307 to `to`), `fetch` (a submit
  handler posting the fields to `to` with fetch()), `script` (a script the page loads from
  `to`, before anything is filled); and `busy`, a submit handler that never returns.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

from aiohttp import web

# The hidden field every real desk has (a CSRF token); the POST must carry it back unchanged.
FORM_TOKEN = "desk-7f3a"
# The fields the desk requires, as the form names them, and the choices of its two widgets.
TEXT_FIELDS = ("reference", "urls", "organisation", "email", "subject", "details", "site")
CATEGORIES = ("copyright", "ncii", "spam")
HOSTILE_WAYS = ("action", "js-redirect", "redirect", "fetch", "script", "busy")
TICKET_PREFIX = "ABUSE-"


def form_page(action: str, script: str = "") -> str:
    """The report form posting to `action`, with `script` (a hostile page's) after it."""
    options = "".join(f'<option value="{c}">{c.upper()}</option>' for c in CATEGORIES)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Report abuse</title></head>"
        "<body><h1>Report abuse</h1>"
        f'<form id="report" method="post" action="{escape(action)}">'
        f'<input type="hidden" name="token" value="{FORM_TOKEN}">'
        '<label>Case reference <input id="reference" name="reference"></label>'
        '<label>URLs, one per line <textarea id="urls" name="urls"></textarea></label>'
        '<label>Organisation <input id="organisation" name="organisation"></label>'
        '<label>E-mail <input id="email" name="email" type="email"></label>'
        '<label>Site <input id="site" name="site"></label>'
        '<label>Subject <input id="subject" name="subject" value="(your subject)"></label>'
        '<label>Details <textarea id="details" name="details"></textarea></label>'
        f'<select id="category" name="category"><option value="">choose</option>{options}'
        "</select>"
        '<label><input id="consent" name="consent" type="checkbox" value="yes"> '
        "I declare this report is accurate</label>"
        '<button id="send" type="submit">Send report</button></form>'
        f"{script}</body></html>")


def _hostile_script(way: str, to: str) -> str:
    """The submit handler of a hostile page (none for the ways the markup alone does)."""
    target = json.dumps(to).replace("</", "<\\/")
    body = {
        "js-redirect": f"location.href = {target};",
        "fetch": f"fetch({target}, {{method: 'POST', body: new FormData(event.target)}})"
                 ".catch(function () {});",
        "busy": "for (;;) {}",
    }.get(way)
    if way == "script":
        return f'<script src="{escape(to)}"></script>'
    if body is None:
        return ""
    return ("<script>document.getElementById('report').addEventListener('submit', "
            f"function (event) {{ event.preventDefault(); {body} }});</script>")


@dataclass
class AbuseDesk:
    """The desk's handlers and what it received (in the order the reports came)."""

    received: list[dict[str, str]] = field(default_factory=list)
    _tickets: itertools.count = field(default_factory=lambda: itertools.count(1001))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path == "/report-abuse":
            if request.method == "POST":
                return await self.report(request)
            return _html(form_page("/report-abuse"))
        if path == "/report-abuse/thanks":
            ticket = escape(request.query.get("ticket", ""))
            return _html("<!doctype html><html><body><h1>Thank you</h1>"
                         f'<div id="confirmation">Your report has been received. '
                         f"Ticket number: {ticket}</div></body></html>")
        if path == "/report-abuse/received":
            return web.json_response(self.received)
        if path == "/report-abuse/bounce":
            raise web.HTTPTemporaryRedirect(request.query.get("to", "/"))
        way = path.removeprefix("/report-abuse/hostile/")
        if way in HOSTILE_WAYS:
            to = request.query.get("to", "")
            bounce = f"/report-abuse/bounce?to={quote(to, safe='')}"
            action = {"action": to, "redirect": bounce}.get(way, "/report-abuse")
            return _html(form_page(action, _hostile_script(way, to)))
        raise web.HTTPNotFound()

    async def report(self, request: web.Request) -> web.Response:
        """Check the report as a desk would; record it only when it is whole."""
        form = await request.post()
        values = {key: str(value) for key, value in form.items()}
        missing = [name for name in (*TEXT_FIELDS, "category", "consent")
                   if not values.get(name, "").strip()]
        problems = [f"missing field: {name}" for name in missing]
        if values.get("token") != FORM_TOKEN:
            problems.append("the form token is wrong")
        if values.get("category", "") not in CATEGORIES:
            problems.append("choose a category")
        if problems:
            return _html("<!doctype html><html><body><h1>Your report was not sent</h1><ul>"
                         + "".join(f"<li>{escape(p)}</li>" for p in problems)
                         + "</ul></body></html>", status=400)
        self.received.append(values)
        raise web.HTTPSeeOther(f"/report-abuse/thanks?ticket={TICKET_PREFIX}"
                               f"{next(self._tickets)}")


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")
