"""Web forms (takedown/forms.py): a profile fills the test web's abuse desk in Debian's
Chromium and keeps the confirmation; a hostile form page cannot send the report, or the
browser, anywhere the outbound policy or the profile does not allow; every other ending is a
FormError naming the step; a malformed profiles file is refused with a sentence.

The desk (testkit/testweb/forms.py) runs in the test web's process and says what it received
at /report-abuse/received. The "private" server, on 127.0.0.1 (which HAECHI_FETCH_ALLOW does
not open), stands for the metadata service or the database inside the VPC: it must see no
request at all.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from PIL import Image

from crawler.browser import chromium_path
from engines.objects import LocalStore
from takedown.forms import (
    CONFIRM,
    FILL,
    OPEN,
    SUBMIT,
    FormError,
    FormProfile,
    ProfileError,
    keep_receipt,
    load_profiles,
    parse_profile,
    read_receipt,
    submit_form,
)
from testkit.testweb.forms import FORM_TOKEN, TICKET_PREFIX
from testkit.testweb.model import FORMS_ADDRESS, WebPlan, site_address
from testkit.testweb.server import RunningWeb, start_testweb
from tests.test_browser import _Server

needs_chromium = pytest.mark.skipif(chromium_path(None) is None,
                                    reason="Debian's chromium is not installed")

# What the sender hands over: a notice's values, with what a template must not re-read.
VALUES = {
    "reference": "HC-2026-000417",
    "urls": "http://bad.example/a.jpg\nhttp://bad.example/b.jpg",
    "reporter_org": "디지털성범죄피해자지원센터",
    "reporter_email": "takedown@desk.example.org",
    "subject": "Removal request HC-2026-000417",
    "body": "Please remove these pictures.\nA brace is text: {urls} {{site}}",
    "site": "bad.example",
}
FIELDS = [
    {"selector": "#reference", "value": "{reference}"},
    {"selector": "#urls", "value": "{urls}"},
    {"selector": "#organisation", "value": "{reporter_org}"},
    {"selector": "#email", "value": "{reporter_email}"},
    {"selector": "#site", "value": "{site}"},
    {"selector": "#subject", "value": "{subject}"},
    {"selector": "textarea#details", "value": "{body}\n\n-- {reporter_org}"},
    {"selector": "#category", "kind": "select", "value": "ncii"},
    {"selector": "#consent", "kind": "check"},
]
CONFIRMATION = {"selector": "#confirmation", "text": "Ticket number:"}


@pytest.fixture(scope="module")
def testweb() -> Iterator[RunningWeb]:
    web_ = start_testweb(WebPlan(sites=1, traps=False, hostile=False))
    try:
        yield web_
    finally:
        web_.stop()


@pytest.fixture(scope="module")
def private() -> Iterator[_Server]:
    async def secret(request: web.Request) -> web.Response:
        return web.Response(text="instance credentials")

    server = _Server("127.0.0.1", secret)
    try:
        yield server
    finally:
        server.stop()


def desk(testweb: RunningWeb, path: str = "/report-abuse") -> str:
    return f"http://{FORMS_ADDRESS}:{testweb.port}{path}"


def received(testweb: RunningWeb) -> list[dict[str, str]]:
    """What the desk received so far (asked directly, not through the policy)."""
    return httpx.get(desk(testweb, "/report-abuse/received"), timeout=10).json()


def desk_profile(url: str, **changes: Any) -> dict[str, Any]:
    """A profiles file's entry for the test web's abuse desk at `url` (its every field)."""
    return {"url": url, "fields": FIELDS, "submit": "#send", "confirmation": CONFIRMATION,
            "timeout": 10, **changes}


def profile(url: str, **changes: Any) -> FormProfile:
    return parse_profile("desk", desk_profile(url, **changes))


@needs_chromium
def test_a_profile_fills_the_form_and_the_confirmation_is_kept(
        testweb: RunningWeb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = len(received(testweb))
    receipt = submit_form(profile(desk(testweb)), VALUES)
    assert receipt.profile == "desk"
    assert receipt.confirmation_text.startswith("Your report has been received. Ticket number: "
                                                f"{TICKET_PREFIX}")
    assert receipt.final_url.startswith(desk(testweb, "/report-abuse/thanks?ticket="))
    assert receipt.submitted_at.tzinfo is not None
    screenshot = Image.open(io.BytesIO(receipt.screenshot))
    assert screenshot.format == "PNG" and screenshot.size == (1280, 1024)
    # Every field arrived exactly, the page's own hidden token with them, and nothing else
    # (a textarea's lines are sent CRLF-separated, as HTML says every browser sends them).
    reports = received(testweb)
    assert len(reports) == before + 1
    assert reports[-1] == {
        "token": FORM_TOKEN, "reference": VALUES["reference"],
        "urls": VALUES["urls"].replace("\n", "\r\n"),
        "organisation": VALUES["reporter_org"], "email": VALUES["reporter_email"],
        "site": VALUES["site"], "subject": VALUES["subject"],
        "details": f"{VALUES['body']}\n\n-- {VALUES['reporter_org']}".replace("\n", "\r\n"),
        "category": "ncii", "consent": "yes"}

    # Kept as evidence: in the clear without the evidence key, sealed with it.
    store = LocalStore(tmp_path / "store")
    monkeypatch.delenv("HAECHI_EVIDENCE_STORE", raising=False)
    monkeypatch.delenv("HAECHI_EVIDENCE_KEY", raising=False)
    key = keep_receipt(receipt, store)
    assert key.startswith("form-receipts/") and key.endswith(".png")
    assert store.get(key) == receipt.screenshot == read_receipt(key, store)
    assert keep_receipt(receipt, store) == key
    monkeypatch.setenv("HAECHI_EVIDENCE_KEY", Fernet.generate_key().decode())
    sealed = keep_receipt(receipt, store)
    assert sealed == key + ".enc"
    assert not store.get(sealed).startswith(b"\x89PNG")
    assert read_receipt(sealed, store) == receipt.screenshot


@needs_chromium
@pytest.mark.parametrize(("way", "target"), [
    ("action", "private"), ("action", "http://10.0.0.1/collect"),
    ("action", "http://169.254.169.254/latest/meta-data/"),
    ("js-redirect", "private"), ("js-redirect", "http://169.254.169.254/latest/meta-data/"),
    ("js-redirect", "http://10.0.0.1/"),
    ("redirect", "private"), ("redirect", "http://localhost:{port}/by-name"),
    ("fetch", "private"), ("script", "private"), ("script", "http://10.0.0.1/app.js"),
])
def test_a_hostile_form_cannot_reach_a_private_address(
        testweb: RunningWeb, private: _Server, way: str, target: str) -> None:
    to = private.url + "/collect" if target == "private" else target.format(port=private.port)
    before = len(received(testweb))
    url = desk(testweb, f"/report-abuse/hostile/{way}?to={quote(to, safe='')}")
    with pytest.raises(FormError) as failed:
        submit_form(profile(url), VALUES)
    assert failed.value.profile == "desk"
    assert failed.value.step == (OPEN if way == "script" else CONFIRM)
    assert "blocked-address" in str(failed.value), str(failed.value)
    assert private.seen == []
    assert len(received(testweb)) == before


@needs_chromium
def test_a_form_cannot_send_the_report_to_another_allowed_host(testweb: RunningWeb) -> None:
    # Site 0 of the test web is allowed by the policy, but is not the desk the profile names.
    elsewhere = f"http://{site_address(0)}:{testweb.port}/report-abuse"
    with pytest.raises(FormError) as failed:
        submit_form(profile(desk(testweb, f"/report-abuse/hostile/action?to={elsewhere}")),
                    VALUES)
    assert failed.value.step == CONFIRM
    assert "not the profile's host" in str(failed.value)
    # A profile that names the other host lets it receive the report.
    allowed = profile(desk(testweb, f"/report-abuse/hostile/action?to={elsewhere}"),
                      hosts=[site_address(0)], timeout=3)
    with pytest.raises(FormError) as failed:  # the site has no desk: no confirmation
        submit_form(allowed, VALUES)
    assert "not the profile's host" not in str(failed.value)


@needs_chromium
def test_no_confirmation_is_an_error_naming_the_step(testweb: RunningWeb) -> None:
    never = profile(desk(testweb), confirmation={"selector": "#confirmation",
                                                 "text": "Report closed"}, timeout=3)
    with pytest.raises(FormError) as failed:
        submit_form(never, VALUES)
    assert failed.value.step == CONFIRM
    assert "'desk', step confirm" in str(failed.value)
    assert "may have reached the party" in str(failed.value)


@needs_chromium
def test_a_page_whose_script_never_returns_is_an_error_not_a_hang(
        testweb: RunningWeb) -> None:
    started = time.monotonic()
    with pytest.raises(FormError) as failed:
        submit_form(profile(desk(testweb, "/report-abuse/hostile/busy"), timeout=2), VALUES)
    # The page froze in the click's handler: the press may have sent it, and it says so.
    assert failed.value.step == SUBMIT and "may have reached the party" in str(failed.value)
    assert time.monotonic() - started < 60


@needs_chromium
def test_a_confirmation_already_shown_before_sending_is_refused(testweb: RunningWeb) -> None:
    before = len(received(testweb))
    with pytest.raises(FormError) as failed:
        submit_form(profile(desk(testweb), confirmation={"text": "Report abuse"}), VALUES)
    assert failed.value.step == SUBMIT and "already shown" in str(failed.value)
    assert len(received(testweb)) == before


@needs_chromium
@pytest.mark.parametrize(("changes", "step", "says"), [
    ({"fields": [*FIELDS, {"selector": "#no-such-field", "value": "{site}"}], "timeout": 2},
     FILL, "'#no-such-field' is not on the page"),
    # Several URLs into a single-line input: the field does not keep them.
    ({"fields": [{"selector": "#reference", "value": "{urls}"}]}, FILL,
     "did not keep the value"),
    ({"submit": "#no-such-button", "timeout": 2}, SUBMIT,
     "the submit button '#no-such-button' is not on the page"),
])
def test_a_form_not_as_the_profile_says_is_an_error_before_sending(
        testweb: RunningWeb, changes: dict[str, Any], step: str, says: str) -> None:
    before = len(received(testweb))
    with pytest.raises(FormError) as failed:
        submit_form(profile(desk(testweb), **changes), VALUES)
    assert failed.value.step == step and says in str(failed.value), str(failed.value)
    assert len(received(testweb)) == before


@needs_chromium
def test_a_page_that_is_not_there_is_an_error_at_open(testweb: RunningWeb) -> None:
    with pytest.raises(FormError) as failed:
        submit_form(profile(desk(testweb, "/no-such-form")), VALUES)
    assert failed.value.step == OPEN and "status 404" in str(failed.value)


def test_values_the_profile_needs_must_be_given() -> None:
    with pytest.raises(FormError) as failed:
        submit_form(profile("http://desk.example/report"), {"reference": "x"})
    assert failed.value.step == FILL and "reporter_email" in str(failed.value)


# --- the profiles file ---------------------------------------------------------------------

GOOD = {"url": "https://abuse.example.net/report", "fields": FIELDS, "submit": "#send",
        "confirmation": CONFIRMATION}


def test_profiles_load_from_the_setting_or_the_data_folder(
        tmp_path: Path, haechi_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_profiles() == {}  # no file in the data folder: e-mail only
    path = tmp_path / "forms.json"
    path.write_text(json.dumps({"cloudflare": GOOD, "kcsc": {**GOOD, "timeout": 60,
                                                             "hosts": ["API.example.net"]}}))
    monkeypatch.setenv("HAECHI_FORM_PROFILES", str(path))
    profiles = load_profiles()
    assert sorted(profiles) == ["cloudflare", "kcsc"]
    assert profiles["kcsc"].timeout == 60.0
    assert profiles["kcsc"].recipients == {"abuse.example.net", "api.example.net"}
    assert profiles["cloudflare"].fields[-1].kind == "check"
    monkeypatch.setenv("HAECHI_FORM_PROFILES", str(tmp_path / "missing.json"))
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profiles()


@pytest.mark.parametrize(("text", "says"), [
    ("{not json", "is not JSON"),
    ("[]", "give an object of profiles by name"),
    ('{"a": ' + json.dumps(GOOD) + ', "a": ' + json.dumps(GOOD) + "}",
     "'a' given more than once"),
    (json.dumps({"a": {**GOOD, "fields": [{"selector": "#x", "value": "{victim_name}"}]}}),
     "profile 'a': fields[0].value: {victim_name} is not a notice value"),
    (json.dumps({"a": {**GOOD, "fields": [{"selector": "#x", "value": "{body!r}"}]}}),
     "fields[0].value: {body} may not have a format"),
    (json.dumps({"a": {**GOOD, "fields": [{"value": "{body}"}]}}), "fields[0].selector: missing"),
    (json.dumps({"a": {**GOOD, "fields": [{"selector": "  ", "value": "{body}"}]}}),
     "fields[0].selector: give a non-empty string"),
    (json.dumps({"a": {**GOOD, "fields": [{"selector": "#x", "kind": "radio", "value": "y"}]}}),
     "fields[0].kind: 'radio' is not one of"),
    (json.dumps({"a": {**GOOD, "fields": [{"selector": "#x", "kind": "check", "value": "y"}]}}),
     "a check field is ticked and takes no value"),
    (json.dumps({"a": {**GOOD, "fields": []}}), "fields: give a list of at least one field"),
    (json.dumps({"a": {k: v for k, v in GOOD.items() if k != "submit"}}), "submit: missing"),
    (json.dumps({"a": {**GOOD, "confirmation": {}}}), "confirmation: give a selector, a text"),
    (json.dumps({"a": {**GOOD, "confirmation": {"selector": "#ok", "txt": "x"}}}),
     "unknown key(s) 'txt'"),
    (json.dumps({"a": {**GOOD, "url": "file:///etc/passwd"}}), "is not an http(s) URL"),
    (json.dumps({"a": {**GOOD, "timeout": 0}}), "timeout: give seconds per step"),
    (json.dumps({"a": {**GOOD, "sumbit": "#send"}}), "unknown key(s) 'sumbit'"),
    (json.dumps({"a": {**GOOD, "hosts": "api.example.net"}}), "hosts: give a list"),
    (json.dumps({"a": {**GOOD, "parties": "Example Hosting"}}), "parties: give a list"),
    (json.dumps({"a": {**GOOD, "parties": ["  "]}}), "parties: give a list"),
])
def test_a_malformed_profiles_file_is_refused_with_a_sentence(
        tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "forms.json"
    path.write_text(text)
    with pytest.raises(ProfileError) as failed:
        load_profiles(path)
    assert says in str(failed.value) and str(path) in str(failed.value), str(failed.value)
