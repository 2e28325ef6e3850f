"""What the review app tells browsers, and what it believes about where a request came from.

Every response carries a Content Security Policy that runs no script at all (the pages need
none) and allows only the page's own stylesheet by a per-response nonce, may not be framed
(clickjacking an Approve or Send button), may not be sniffed into another type, sends no
Referer (a case URL names a case) and is never stored by a browser or proxy (case pages and
previews show victims' pictures and names).

Cookies are HttpOnly and SameSite=Strict always, and Secure (with the `__Host-` prefix, which
browsers only accept on a Secure cookie for the whole host) when HAECHI_REVIEW_HTTPS=1 says the
app is reached over HTTPS. On AWS it is: the load balancer has only an HTTPS listener and
forwards plain HTTP to the task, so the app cannot tell from the request and is told instead.
Behind that load balancer every request comes from its own address; HAECHI_REVIEW_TRUST_PROXY=1
makes the client the address the load balancer appended to X-Forwarded-For (the last entry, as
the ALB appends it: what a client writes in the header itself comes before it), so that logins
are throttled per client and not for everyone at once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from engines.settings import current

# A year of HTTPS only, once a browser has seen the app over HTTPS (sent only then).
HSTS_SECONDS = 365 * 24 * 3600


@dataclass(frozen=True)
class ReviewSettings:
    https: bool = False
    trust_proxy: bool = False
    four_eyes: bool = False

    @classmethod
    def from_environment(cls) -> ReviewSettings:
        settings = current()
        return cls(https=settings.review_https, trust_proxy=settings.review_trust_proxy,
                   four_eyes=settings.four_eyes)

    def cookie_name(self, name: str) -> str:
        return f"__Host-{name}" if self.https else name

    def cookie_options(self) -> dict[str, Any]:
        return {"httponly": True, "samesite": "strict", "secure": self.https, "path": "/"}


def client_address(request: Request, trust_proxy: bool) -> str:
    """The client's address: the peer's, or behind a trusted proxy the one it appended."""
    peer = request.client.host if request.client else "unknown"
    if not trust_proxy:
        return peer
    forwarded = request.headers.getlist("x-forwarded-for")
    if not forwarded:
        return peer
    last = forwarded[-1].rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return peer


def security_headers(nonce: str, https: bool) -> dict[str, str]:
    """The headers of every response; `nonce` is the one the page's <style> carries."""
    policy = "; ".join([
        "default-src 'self'", "script-src 'none'", f"style-src 'nonce-{nonce}'",
        "img-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'none'"])
    headers = {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = f"max-age={HSTS_SECONDS}"
    return headers
