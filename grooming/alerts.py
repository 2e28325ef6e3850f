"""Alerts to support agencies, with their explanation, by webhook and by e-mail.

An alert says who (a pseudonym), how sure (score and tier), and why: the stage timeline, the
lines that weighed most with their times, and the slang read in them. It is delivered to
every configured sink: HAECHI_ALERT_WEBHOOK (a JSON POST, schema `haechi.grooming-alert/1`)
and HAECHI_ALERT_EMAIL (one or more addresses, comma-separated, sent through HAECHI_SMTP_URL).
A sink that fails is reported; the others still get the alert.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from engines.mail import SmtpServer
from engines.retry import with_backoff
from engines.settings import current
from grooming.cues import STAGES

SCHEMA = "haechi.grooming-alert/1"
ATTEMPTS = 3
# The first pause between tries (then 2 s): a receiver that is busy for a moment.
BACKOFF_SECONDS = 1.0


class AlertSink(Protocol):
    name: str

    def deliver(self, alert: dict[str, Any]) -> None: ...


@dataclass
class WebhookSink:
    url: str
    name: str = "webhook"

    def deliver(self, alert: dict[str, Any]) -> None:
        body = json.dumps(alert, ensure_ascii=False).encode()

        def post() -> None:
            request = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", "User-Agent": "Haechi/0.1"})
            with urllib.request.urlopen(request, timeout=15) as response:
                if not 200 <= response.status < 300:
                    raise OSError(f"webhook {self.url} did not accept the alert")

        with_backoff(post, attempts=ATTEMPTS, first_wait=BACKOFF_SECONDS, retry_on=(OSError,))


def describe(alert: dict[str, Any]) -> str:
    """The alert in plain words, for people."""
    lines = [
        f"Possible grooming ({alert['tier']}), score {alert['score']}: speaker "
        f"{alert['speaker']} in conversation {alert['conversation']}.",
        f"First alert at message {alert['first_alert_message']}.", "", "Stages, in order:"]
    lines += [f"  message {t['message']} ({t['time'] or 'no time'}): {STAGES[t['stage']]}"
              for t in alert["timeline"]]
    lines += ["", "Lines that weighed most:"]
    for line in alert["evidence"]:
        lines.append(f"  [{line['time'] or 'no time'}] #{line['message']}: {line['text']}")
        if line["slang"]:
            lines.append(f"      read as: {line['normalised']} ({'; '.join(line['slang'])})")
    lines += ["", "Speakers are pseudonyms; only these lines are kept, for a limited time."]
    return "\n".join(lines)


@dataclass
class EmailSink:
    recipients: list[str]
    server: SmtpServer
    sender: str = "haechi-alerts@localhost"
    name: str = "email"

    def deliver(self, alert: dict[str, Any]) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Subject"] = (f"[Haechi {alert['tier']}] possible grooming in conversation "
                              f"{alert['conversation']}")
        message.set_content(describe(alert))
        message.add_attachment(json.dumps(alert, ensure_ascii=False, indent=2).encode(),
                               maintype="application", subtype="json",
                               filename="alert.json")
        self.server.send(message)


def configured_sinks() -> list[AlertSink]:
    settings = current()
    sinks: list[AlertSink] = []
    if settings.alert_webhook:
        sinks.append(WebhookSink(settings.alert_webhook))
    if settings.alert_email:
        sinks.append(EmailSink(list(settings.alert_email), SmtpServer.from_url(),
                               settings.alert_from))
    return sinks


def send(alert: dict[str, Any], sinks: list[AlertSink]) -> dict[str, str]:
    """Deliver to every sink; returns sink name -> "sent" or the error, in plain words."""
    results = {}
    for sink in sinks:
        try:
            sink.deliver(alert)
            results[sink.name] = "sent"
        except Exception as exc:  # one failing sink never stops the others
            results[sink.name] = f"failed: {type(exc).__name__}: {exc}"
    return results
