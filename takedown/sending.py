"""Sending approved notices by SMTP, with retries, and remembering each Message-ID.

The server is named by HAECHI_SMTP_URL: `smtp://host:port` (plain, STARTTLS when offered),
`smtps://host:port` (TLS from the start), with optional `user:password@`. A message carries
the notice text and one X-ARF v4 JSON part per URL, never an image.

Nothing is sent on behalf of an institution the installation has not named: without
HAECHI_ORG_NAME and HAECHI_FROM, or with wording drafted before they were set, sending is
refused with a message saying what to set or reword. A host must be able to tell who asks.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import Connection, Engine, select

from engines.mail import MailConfigError, SmtpServer
from engines.retry import with_backoff
from takedown import audit
from takedown.notices import (
    SITE_RUNG,
    UNCONFIGURED_EMAIL,
    UNCONFIGURED_ORG,
    Reporter,
    notice_json,
    reference_of,
    render,
)
from takedown.schema import cases, escalations, notices
from takedown.status import transition

ATTEMPTS = 3
BACKOFF_SECONDS = 2.0
# The status of a notice a run has taken to send (send_notice) until it is sent or its
# sending failed (approved again).
SENDING = "sending"
# How long a claim may stand before it is taken for a run that stopped mid-send: far longer
# than three SMTP attempts with their backoff or a web form's steps take.
STALE_CLAIM = dt.timedelta(minutes=30)
BEING_SENT = ("notice {} is being sent by another run, or was just sent: nothing was sent "
              "twice")


class SendError(RuntimeError):
    """Sending failed after every retry; the message says why."""


class SenderNotConfigured(SendError):
    """Nothing can be sent by this installation as it is set up (no institution named, no
    usable mail server): a configuration problem, not one notice's."""


def smtp_server(url: str | None = None) -> SmtpServer:
    try:
        return SmtpServer.from_url(url)
    except MailConfigError as exc:
        raise SenderNotConfigured(str(exc)) from exc


def unconfigured_sender_error(reporter: Reporter) -> SenderNotConfigured | None:
    """Why nothing can be sent by this reporter, or None when the installation named itself."""
    if reporter.configured:
        return None
    return SenderNotConfigured(
        f"the sending institution is not configured: set {' and '.join(reporter.missing_settings)}"
        " (HAECHI_ORG_NAME: the institution that signs notices; HAECHI_FROM: the address hosts"
        " reply to). Nothing was sent.")


def check_sendable(notice: dict, reporter: Reporter) -> None:
    """Raise SendError unless `notice` names a real sender, in its headers and its text, and
    a recipient."""
    error = unconfigured_sender_error(reporter)
    if error is not None:
        raise error
    if not notice["cases"]:
        raise SendError(f"notice {notice['id']} lists no case: every case it named was "
                        "rejected as a false match. Nothing was sent.")
    if notice["channel"] == "form":
        if not notice["form_profile"]:
            raise SendError(
                f"notice {notice['id']} goes to {notice['party']} through a web form and no "
                "form profile names it: add one to the form profiles (HAECHI_FORM_PROFILES) "
                "and to the ladder file's rung, or write the address it should go to. "
                "Nothing was sent.")
    elif not notice["to"]:
        where = (f"set the contact or form_profile of {notice['party']} in the ladder file "
                 "(HAECHI_LADDER)" if notice["rung"] == "authority" else
                 "add one to the site registry, HAECHI_SITE_REGISTRY" if notice["rung"] ==
                 SITE_RUNG else f"RDAP named no address for {notice['party']}")
        raise SendError(
            f"notice {notice['id']} has no recipient: no usable address was found for "
            f"{notice['site']} ({where}). Nothing was sent.")
    if notice["text_has_sender_placeholders"]:
        raise SendError(
            f"notice {notice['id']} was drafted before HAECHI_ORG_NAME/HAECHI_FROM were set and"
            f" its text still says {UNCONFIGURED_ORG!r} or {UNCONFIGURED_EMAIL!r}: correct the"
            " wording (the review app's Save wording, then approve again). Nothing was sent.")


def build_message(notice: dict, reporter: Reporter, reminder_of: str | None = None
                  ) -> EmailMessage:
    message = EmailMessage()
    domain = reporter.domain
    # A header value holding a line break (U+2028 and NEL too, as str.splitlines splits) is
    # refused by the e-mail library with a ValueError: that is this notice's fault, said as
    # one, never an exception that stops the sending of every other notice.
    for header, value in (("From", f"{reporter.org} <{reporter.email}>"), ("To", notice["to"]),
                          ("Subject", ("[reminder] " if reminder_of else "") + notice["subject"])):
        try:
            message[header] = value
        except ValueError as exc:
            raise SendError(f"notice {notice['id']}: its {header.lower()} cannot be written as "
                            f"an e-mail header ({exc}): correct it (the review app's Save "
                            "wording, then approve again). Nothing was sent.") from None
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=domain)
    message["Content-Language"] = notice["language"]
    message["X-ARF"] = "YES"
    if reminder_of:
        message["In-Reply-To"] = reminder_of
        message["References"] = reminder_of
    message.set_content(notice["body"], charset="utf-8")
    for number, report in enumerate(notice["xarf"], 1):
        message.add_attachment(json.dumps(report, ensure_ascii=False, indent=2).encode(),
                               maintype="application", subtype="json",
                               filename=f"xarf-{number}.json")
    return message


class NoticeSender:
    """Sends notices and moves their cases to `sent`."""

    def __init__(self, engine: Engine, server: SmtpServer | None = None,
                 reporter: Reporter | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 attempts: int = ATTEMPTS, backoff: float = BACKOFF_SECONDS) -> None:
        self.engine = engine
        self.server = server or smtp_server()
        self._reporter = reporter
        self.clock = clock
        self.attempts = attempts
        self.backoff = backoff

    @property
    def reporter(self) -> Reporter:
        """The reporter given, else the environment's, read at each use as notice_json reads
        it, so what a notice is signed with, shown with and sent with always agree."""
        return self._reporter or Reporter.from_environment()

    def _deliver(self, message: EmailMessage) -> None:
        failures = (OSError, smtplib.SMTPException)
        try:
            with_backoff(lambda: self.server.send(message), attempts=self.attempts,
                         first_wait=self.backoff, retry_on=failures)
        except failures as error:
            raise SendError(f"could not send to {message['To']} via {self.server.host}:"
                            f"{self.server.port} after {self.attempts} attempts: {error}"
                            ) from error

    def send_notice(self, notice_id: int, actor: str = "system") -> str:
        """Send one approved notice; returns its Message-ID."""
        reporter = self.reporter
        notice = notice_json(self.engine, notice_id, reporter)
        if notice["status"] == SENDING:
            raise SendError(BEING_SENT.format(notice_id))
        if notice["status"] != "approved":
            raise SendError(f"notice {notice_id} is {notice['status']}; only approved notices "
                            "are sent")
        check_sendable(notice, reporter)
        at = self.clock()
        self._claim(notice_id, at)
        confirmation_key = None
        try:
            if notice["channel"] == "form":
                message_id, confirmation_key = self._submit(notice, reporter)
                to = f"form:{notice['form_profile']}"
            else:
                message = build_message(notice, reporter)
                self._deliver(message)
                message_id, to = str(message["Message-ID"]), notice["to"]
        except SendError as exc:
            with self.engine.begin() as conn:
                conn.execute(notices.update().where(notices.c.id == notice_id).values(
                    status="approved", last_error=str(exc),
                    attempts=notices.c.attempts + self.attempts))
                audit.append(conn, actor=actor, action="notice:send-failed", at=at,
                             notice_id=notice_id, detail={"error": str(exc)})
            raise
        with self.engine.begin() as conn:
            conn.execute(notices.update().where(notices.c.id == notice_id).values(
                status="sent", sent_at=at, message_id=message_id,
                attempts=notices.c.attempts + 1, last_error=None,
                confirmation_key=confirmation_key))
            audit.append(conn, actor=actor, action="notice:sent", at=at, notice_id=notice_id,
                         detail={"message_id": message_id, "to": to, "rung": notice["rung"],
                                 "confirmation_key": confirmation_key})
            if notice["rung"] == SITE_RUNG:
                for case_id in conn.execute(select(cases.c.id).where(
                        cases.c.notice_id == notice_id, cases.c.status == "approved")
                        ).scalars():
                    transition(conn, case_id, "sent", actor=actor, at=at,
                               detail={"message_id": message_id}, first_sent_at=at,
                               last_sent_at=at, sent_count=1)
            else:  # a rung of the ladder: its deadline runs from now (takedown/ladder.py)
                conn.execute(escalations.update().where(
                    escalations.c.notice_id == notice_id, escalations.c.sent_at.is_(None))
                    .values(sent_at=at))
                for case_id in notice["cases"]:
                    audit.append(conn, actor=actor, action="ladder:sent", at=at,
                                 case_id=case_id, notice_id=notice_id,
                                 detail={"rung": notice["rung"], "party": notice["party"],
                                         "message_id": message_id, "to": to})
        return message_id

    def _claim(self, notice_id: int, at: dt.datetime) -> None:
        """Take the approved notice for this run (status SENDING), so that two runs (the
        review app and `haechi notices send`, two nodes) never both send it."""
        with self.engine.begin() as conn:
            taken = conn.execute(notices.update().where(
                notices.c.id == notice_id, notices.c.status == "approved").values(
                status=SENDING, updated_at=at)).rowcount
        if taken != 1:
            raise SendError(BEING_SENT.format(notice_id))

    def release_stale_claims(self, actor: str = "system") -> list[int]:
        """Notices a run took more than STALE_CLAIM ago and never finished (it stopped
        mid-send): approved again, so they go out, each with an audit line saying it may
        already have reached its party."""
        at = self.clock()
        with self.engine.begin() as conn:
            stale = conn.execute(select(notices.c.id).where(
                notices.c.status == SENDING, notices.c.updated_at < at - STALE_CLAIM)
                ).scalars().all()
            for notice_id in stale:
                conn.execute(notices.update().where(notices.c.id == notice_id).values(
                    status="approved", updated_at=at))
                audit.append(conn, actor=actor, action="notice:claim-released", at=at,
                             notice_id=notice_id,
                             detail={"why": "the run sending it stopped; it may have been "
                                            "sent already"})
        return list(stale)

    def _submit(self, notice: dict, reporter: Reporter) -> tuple[str, str]:
        """Fill the party's web form with the notice (takedown/forms.py): (the receipt's
        reference, the evidence key of the confirmation's screenshot)."""
        from takedown.forms import (
            FormError,
            ProfileError,
            keep_receipt,
            load_profiles,
            submit_form,
        )

        try:
            profile = load_profiles().get(notice["form_profile"])
        except ProfileError as exc:
            # The form notices' problem: the e-mail ones, sent in the same run, need no form.
            raise SendError(f"notice {notice['id']}: {exc}. Nothing was sent.") from exc
        try:
            if profile is None:
                raise SendError(f"notice {notice['id']}: no form profile "
                                f"{notice['form_profile']!r} (HAECHI_FORM_PROFILES). "
                                "Nothing was sent.")
            receipt = submit_form(profile, {
                "reference": reference_of(notice["cases"][0]), "urls": "\n".join(notice["urls"]),
                "reporter_org": reporter.org, "reporter_email": reporter.email,
                "subject": notice["subject"], "body": notice["body"], "site": notice["site"]})
            key = keep_receipt(receipt)
        except FormError as exc:
            raise SendError(f"notice {notice['id']}: the form was not submitted: {exc}") from exc
        return f"form:{profile.name}:{receipt.submitted_at.isoformat()}", key

    def send_approved(self, actor: str = "system",
                      hold: Callable[[Connection, int], str | None] | None = None
                      ) -> dict[str, list]:
        """Send every approved notice; failures are reported, not raised, except an
        unconfigured sender, which would fail them all alike (SendError). `hold(conn, id)`
        says why a notice must wait for someone else (four eyes), or None: held notices stay
        approved and are listed under `held`."""
        error = unconfigured_sender_error(self.reporter)
        if error is not None:
            raise error
        self.release_stale_claims(actor)
        with self.engine.connect() as conn:
            pending = conn.execute(select(notices.c.id).where(notices.c.status == "approved")
                                   .order_by(notices.c.id)).scalars().all()
            held = {notice_id: reason for notice_id in pending
                    if hold is not None and (reason := hold(conn, notice_id))}
        result: dict[str, list] = {"sent": [], "failed": [],
                                   "held": [{"notice": n, "reason": r} for n, r in held.items()]}
        for notice_id in pending:
            if notice_id in held:
                continue
            try:
                result["sent"].append({"notice": notice_id,
                                       "message_id": self.send_notice(notice_id, actor)})
            except SendError as exc:
                result["failed"].append({"notice": notice_id, "error": str(exc)})
        return result

    def _reminder_text(self, notice: dict, case_ids: list[int]) -> tuple[str, str]:
        """The reminder's wording, listing `case_ids` alone: rendered again from the notice's
        template (its language, legal basis, deadline and reference), since the sent text
        lists every case of the notice, among them those no longer pursued (a victim who
        withdrew), and a reviewer's edited wording may too."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(cases).where(cases.c.id.in_(case_ids))
                                .order_by(cases.c.id)).mappings().all()
            deadline = conn.execute(select(notices.c.deadline).where(
                notices.c.id == notice["id"])).scalar()
        return render(notice["language"], site=notice["site"], reporter=self.reporter,
                      legal=notice["legal_basis"], reference=reference_of(notice["cases"][0]),
                      deadline=deadline or self.clock(), rows=list(rows))

    def resend(self, notice_id: int, case_ids: list[int], actor: str = "tracker") -> str:
        """A reminder for the cases of a sent notice that are still online."""
        reporter = self.reporter
        notice = notice_json(self.engine, notice_id, reporter)
        check_sendable(notice, reporter)
        notice["xarf"] = [r for r, cid in zip(notice["xarf"], notice["cases"], strict=True)
                          if cid in case_ids]
        notice["subject"], notice["body"] = self._reminder_text(notice, case_ids)
        message = build_message(notice, reporter, reminder_of=notice["message_id"])
        self._deliver(message)
        at = self.clock()
        with self.engine.begin() as conn:
            audit.append(conn, actor=actor, action="notice:resent", at=at, notice_id=notice_id,
                         detail={"message_id": message["Message-ID"], "cases": case_ids})
            for case_id in case_ids:
                status = conn.execute(select(cases.c.status).where(cases.c.id == case_id)
                                      ).scalar()
                transition(conn, case_id, status, actor=actor, at=at,
                           detail={"resent": message["Message-ID"]}, last_sent_at=at,
                           sent_count=cases.c.sent_count + 1)
        return str(message["Message-ID"])
