"""Who may do what in the review app, and the four-eyes rule.

A hotline's review app shows the intimate pictures of victims and sends, on the institution's
authority, requests that name those pictures to strangers. Before roles, any account could
look at every picture clearly, approve a notice and send it, alone. Now each account has one
role, and every action asks for the permission it needs (the pages only hide what a role
cannot do; the server refuses it):

| role       | view | reveal | edit | approve | reject | send | audit | alerts | dispose |
| ---------- | ---- | ------ | ---- | ------- | ------ | ---- | ----- | ------ | ------- |
| caseworker |  x   |        |  x   |         |        |      |       |        |         |
| reviewer   |  x   |   x    |  x   |    x    |   x    |      |       |   x    |    x    |
| sender     |  x   |        |      |         |        |  x   |       |        |         |
| auditor    |  x   |        |      |         |        |      |   x   |   x    |         |
| admin      |  x   |   x    |  x   |    x    |   x    |  x   |   x   |   x    |    x    |

`view` is the queue, a case's facts, its blurred grey preview and the notice's wording; only
`reveal` shows a picture clearly, because judging a match is the one job that needs it. The
reviewer is the one who judges, so approving and rejecting a false match go with it. The
sender checks that what goes out is what was approved and to whom, which needs no picture.

`alerts` is the alert desk (grooming/desk.py): the queue of grooming alerts and each alert's
flagged excerpt, which is chat text, often a child's, so it is not part of `view`: the person
who judges (reviewer) and the one who checks the judging (auditor) read it, nobody else. Only
the reviewer (and admin) `dispose` of an alert: false alert, confirmed, referred to the police
or to a support agency.

Four eyes (HAECHI_FOUR_EYES=1, the institution's choice): the person who approved a notice,
or saw any of its pictures clearly, cannot also send it, whatever their role, admin included.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from takedown.notices import listed_cases
from takedown.schema import audit_log, notices

VIEW = "view"
REVEAL = "reveal"
EDIT = "edit"
APPROVE = "approve"
REJECT = "reject"
SEND = "send"
AUDIT = "audit"
ALERTS = "alerts"
DISPOSE = "dispose"

# What each permission lets a person do, as a refusal names it.
PERMISSION_WORDS = {
    VIEW: "open cases",
    REVEAL: "see a picture clearly",
    EDIT: "change a notice's wording",
    APPROVE: "approve a notice",
    REJECT: "reject a false match",
    SEND: "send a notice",
    AUDIT: "read the audit log",
    ALERTS: "read grooming alerts",
    DISPOSE: "set a grooming alert's disposition",
}

ROLES: dict[str, frozenset[str]] = {
    "caseworker": frozenset({VIEW, EDIT}),
    "reviewer": frozenset({VIEW, REVEAL, EDIT, APPROVE, REJECT, ALERTS, DISPOSE}),
    "sender": frozenset({VIEW, SEND}),
    "auditor": frozenset({VIEW, AUDIT, ALERTS}),
    "admin": frozenset(PERMISSION_WORDS),
}

# A new account's role when none is named: the one that does the review (reveal, approve,
# reject) without sending or reading the audit log, so that giving either is a decision.
DEFAULT_ROLE = "reviewer"


# The audit actions that mean a person saw a case's picture clearly (the click, the picture).
CLEAR_VIEW_ACTIONS = ("evidence:reveal", "evidence:clear")


class RoleError(ValueError):
    """A role name that is not one of ROLES; says which are."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise RoleError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def may(role: str, permission: str) -> bool:
    return permission in ROLES.get(role, frozenset())


def refusal(role: str, permission: str) -> str:
    return (f"Your role ({role}) may not {PERMISSION_WORDS[permission]}; an admin can give "
            "your account another role (haechi users add NAME --role ROLE).")


def four_eyes_objection(conn: Connection, notice_id: int, person: str) -> str | None:
    """Why `person` may not send notice `notice_id` under four eyes, or None if they may."""
    approved_by, rung = conn.execute(select(notices.c.approved_by, notices.c.rung).where(
        notices.c.id == notice_id)).one()
    if approved_by == person:
        return ("You approved this notice; with four eyes (HAECHI_FOUR_EYES) another person "
                "sends it. Nothing was sent.")
    its_cases = select(listed_cases(notice_id, rung).subquery().c.id)
    saw = conn.execute(select(audit_log.c.id).where(
        audit_log.c.actor == person, audit_log.c.action.in_(CLEAR_VIEW_ACTIONS),
        audit_log.c.case_id.in_(its_cases)).limit(1)).first()
    if saw is not None:
        return ("You saw this notice's pictures clearly; with four eyes (HAECHI_FOUR_EYES) "
                "another person sends it. Nothing was sent.")
    return None
