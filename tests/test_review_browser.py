"""The reviewer web app in real headless Chromium (Debian's), driven by Playwright: a reviewer
logs in, opens the queue, opens a case (picture blurred and grey), sees it clearly and approves,
and has no Send button; she logs out and a sender sends; a real SMTP server receives the notice
in the site's language with every URL of that host. The pages keep their look under the
Content Security Policy (its nonce admits their stylesheet) and the browser reports no
violation of it."""

from __future__ import annotations

import email
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from email import policy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from engines.objects import LocalStore, media_key
from takedown import audit
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb.server import free_port
from tests.takedown_helpers import event, site_facts, start_smtp

if TYPE_CHECKING:
    from playwright.sync_api import Page

HAECHI = str(Path(sys.executable).with_name("haechi"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery"


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.fixture
def review_site(haechi_home: Path, monkeypatch: pytest.MonkeyPatch):
    # The institution is named: an unnamed one's notices are refused at sending.
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")
    media = LocalStore(haechi_home / "objects")
    store = CaseStore(takedown_engine(), store=media)
    site = "galerie.example"
    site_facts(store.engine, site, language="de", contacts=["mailto:abuse@galerie.example"])
    events = []
    for number in range(2):
        data = encode(synthetic_picture(seed=300 + number))
        e = event(site, number, data=data)
        media.put(media_key(e.sha256), data)
        events.append(e.__class__(**{**e.__dict__, "store_key": media_key(e.sha256)}))
    store.open_cases(events)
    # Alice with the default role (a reviewer), Bob a sender.
    for account in (["alice"], ["bob", "--role", "sender"]):
        subprocess.run([HAECHI, "users", "add", *account], input=PASSWORD + "\n", text=True,
                       check=True, capture_output=True)
    smtp, mailbox = start_smtp(free_port())
    port = free_port()
    env = {**os.environ, "HAECHI_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"}
    server = subprocess.Popen([HAECHI, "review", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        yield {"url": f"http://127.0.0.1:{port}", "mailbox": mailbox, "store": store}
    finally:
        server.terminate()
        server.wait(10)
        smtp.stop()


def log_in(page: Page, name: str) -> None:
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    assert page.inner_text("#who").startswith(name)


def high_frequency_energy(image: Image.Image) -> float:
    pixels = np.asarray(image.convert("L"), dtype=np.float32)
    return float(np.abs(np.diff(pixels, axis=1)).mean())


def test_login_queue_blurred_case_approve_and_send(review_site) -> None:
    from playwright.sync_api import sync_playwright

    base = review_site["url"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--headless=new"])
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(f"{base}/")
        assert page.url.endswith("/login")
        page.fill("#name", "alice")
        page.fill("#password", "wrong password!")
        page.click("#login")
        assert "Wrong name or password" in page.inner_text("#error")
        log_in(page, "alice")
        # The stylesheet applied: the CSP let the page's own <style> through by its nonce.
        assert page.evaluate("getComputedStyle(document.querySelector('header'))"
                             ".backgroundColor") == "rgb(35, 57, 91)"
        links = page.locator("a.case-link")
        assert links.count() == 2
        links.first.click()
        preview = page.locator("#preview")
        preview.wait_for()
        # The element is there before its picture has loaded: wait for the picture itself.
        # Polled from here, not with wait_for_function: its predicate is compiled in the page,
        # which the page's CSP (script-src 'none') refuses once the first check has failed.
        deadline = time.monotonic() + 60
        while not page.evaluate("document.querySelector('#preview').complete"):
            assert time.monotonic() < deadline, "the preview never loaded"
            time.sleep(0.1)
        assert page.evaluate("document.querySelector('#preview').naturalWidth") > 0
        blurred = Image.open(io.BytesIO(page.request.get(
            base + preview.get_attribute("src")).body()))
        assert blurred.mode == "L"
        # The clear view needs the explicit, logged click first.
        case_id = page.url.rstrip("/").rsplit("/", 1)[1]
        assert page.request.get(f"{base}/cases/{case_id}/clear").status == 403
        page.click("#reveal")
        clear = Image.open(io.BytesIO(page.request.get(f"{base}/cases/{case_id}/clear").body()))
        assert clear.mode == "RGB"
        assert high_frequency_energy(clear) > 2 * high_frequency_energy(blurred)
        page.click("#approve")
        assert "Approved" in page.inner_text("#message")
        assert page.locator("#send").count() == 0  # a reviewer does not send
        page.click("#logout")
        assert page.url.endswith("/login")
        log_in(page, "bob")
        page.goto(f"{base}/cases/{case_id}")
        assert page.locator("#reveal").count() == 0  # a sender sees no picture clearly
        page.click("#send")
        assert "Sent" in page.inner_text("#message")
        browser.close()
    assert not [line for line in console if "Content Security Policy" in line], console
    messages = review_site["mailbox"].messages
    assert len(messages) == 1
    message = email.message_from_bytes(messages[0].content, policy=policy.default)
    assert message["To"] == "abuse@galerie.example"
    assert "Löschaufforderung" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "http://galerie.example/img/0.jpg" in body
    assert "http://galerie.example/img/1.jpg" in body
    actions = [e["action"] for e in audit.entries_for_case(review_site["store"].engine,
                                                          int(case_id))]
    assert "evidence:reveal" in actions and "evidence:clear" in actions
    assert audit.verify(review_site["store"].engine).ok
