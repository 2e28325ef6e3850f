"""Sending e-mail by SMTP, for every part that sends it (takedown notices, grooming alerts).

The server is named by HAECHI_SMTP_URL: `smtp://host:port` (plain, STARTTLS when offered),
`smtps://host:port` (TLS from the start), with optional `user:password@`.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from engines.settings import current


class MailConfigError(ValueError):
    """HAECHI_SMTP_URL cannot be used; the message says why."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool = False
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str | None = None) -> SmtpServer:
        url = url or current().smtp_url
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise MailConfigError(f"HAECHI_SMTP_URL must start with smtp:// or smtps://: {url!r}")
        return cls(parts.hostname or "127.0.0.1", parts.port or (465 if parts.scheme ==
                                                                  "smtps" else 25),
                   parts.scheme == "smtps", unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)

    def send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        if self.tls:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=30, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=30)
        with client:
            if not self.tls and client.has_extn("starttls"):
                client.starttls(context=context)
            if self.user:
                client.login(self.user, self.password or "")
            client.send_message(message)


