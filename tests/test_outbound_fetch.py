"""The one fetch outside a crawl (engines/fetch.py's Fetcher), against a loopback server that
misbehaves the ways a hostile host can: redirects to local files and in circles, a redirect
with an endless body of its own, a body over the cap, a cookie meant to follow us around."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engines.fetch import BLOCKED_ADDRESS, Fetcher, FetchLimits, OutboundPolicy

CAP = 1000
SMALL = FetchLimits(timeout=5, max_bytes=CAP, max_redirects=3, user_agent="HaechiTest/1")
LOOPBACK = OutboundPolicy.from_setting("127.0.0.1/32")
# What the endless redirect offers to send before it gives up on a reader that is gone.
ENDLESS = 64 * 1024 * 1024


@dataclass
class Host:
    port: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    redirect_body_sent: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def host() -> Iterator[Host]:
    served = Host()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append((self.path, self.headers.get("Cookie")))
            if self.path == "/to-file":
                self._redirect("file:///etc/passwd")
            elif self.path == "/to-internal":
                self._redirect("http://169.254.169.254/latest/meta-data/")
            elif self.path == "/circle":
                self._redirect("/circle")
            elif self.path == "/cookie":
                self.send_response(302)
                self.send_header("Location", "/file")
                self.send_header("Set-Cookie", "track=me; Path=/")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/endless-redirect":
                self.send_response(302)
                self.send_header("Location", "/file")
                self.send_header("Content-Length", str(ENDLESS))
                self.end_headers()
                chunk = bytes(64 * 1024)
                try:
                    while served.redirect_body_sent < ENDLESS:
                        self.wfile.write(chunk)
                        served.redirect_body_sent += len(chunk)
                except OSError:
                    pass  # the reader hung up: what it should do
            elif self.path == "/large":
                self._body(200, bytes(CAP + 1))
            elif self.path == "/file":
                self._body(200, b"the file")
            else:
                self._body(404, b"not here")

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _body(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served
    httpd.shutdown()
    httpd.server_close()


def test_an_answer_says_its_status_final_url_and_body(host: Host) -> None:
    with Fetcher(SMALL, LOOPBACK) as fetch:
        got = fetch(host.url("/cookie"))
        missing = fetch(host.url("/nothing"))
    assert (got.status, got.body, got.error, got.final_url) == (
        200, b"the file", None, host.url("/file"))
    assert got.whole
    assert (missing.status, missing.body, missing.whole) == (404, b"not here", False)


@pytest.mark.parametrize(("path", "reason"), [
    ("/to-file", "a file URL"), ("/to-internal", "link-local")])
def test_every_redirect_hop_is_checked_by_the_policy(host: Host, path: str,
                                                     reason: str) -> None:
    with Fetcher(SMALL, LOOPBACK) as fetch:
        got = fetch(host.url(path))
    assert got.status is None and got.error.startswith(f"{BLOCKED_ADDRESS}: "), got
    assert reason in got.error
    assert [p for p, _ in host.requests] == [path]


def test_redirects_stop_at_the_limit(host: Host) -> None:
    with Fetcher(SMALL, LOOPBACK) as fetch:
        got = fetch(host.url("/circle"))
    assert got.status is None and "TooManyRedirects" in got.error
    assert len(host.requests) == SMALL.max_redirects + 1


def test_a_body_over_the_cap_is_an_answer_without_its_body(host: Host) -> None:
    with Fetcher(SMALL, LOOPBACK) as fetch:
        got = fetch(host.url("/large"))
    assert (got.status, got.body, got.whole) == (200, b"", False)
    assert got.error == f"larger than {CAP} bytes"


def test_a_redirects_own_body_is_never_read(host: Host) -> None:
    with Fetcher(SMALL, LOOPBACK) as fetch:
        got = fetch(host.url("/endless-redirect"))
    assert got.status == 200 and got.body == b"the file"
    assert host.redirect_body_sent < ENDLESS


def test_no_cookie_rides_along(host: Host) -> None:
    with Fetcher(SMALL, LOOPBACK) as fetch:
        fetch(host.url("/cookie"))
        fetch(host.url("/file"))
    assert [cookie for _, cookie in host.requests] == [None, None, None]


def test_a_url_that_does_not_parse_is_an_answer_not_an_exception() -> None:
    with Fetcher(SMALL, LOOPBACK) as fetch:
        got = fetch("http://[not-an-address/x.jpg")
    assert got.status is None and got.error
