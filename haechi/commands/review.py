"""`haechi review serve` and `haechi users add`: the reviewer web app and its accounts.

The app is takedown's (takedown/review/app.py) with grooming's alert desk (grooming/desk.py)
mounted on it here: the command line is the one floor that may import both stages, so this is
where the desk is handed the app's sessions, roles, CSRF check and audit log (`desk`).

The app (FastAPI, uvicorn) and the accounts (argon2, SQLAlchemy) are imported when a command
runs, not when the parser is built; the role names are spelled here for the same reason and
checked against takedown/review/roles.py's by the tests.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from engines.inputs import port_number
from haechi.commands import ConfigurationError

# takedown/review/roles.py's ROLES and DEFAULT_ROLE, without importing the review app.
ROLE_NAMES = ("caseworker", "reviewer", "sender", "auditor", "admin")
DEFAULT_ROLE_NAME = "reviewer"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    review = subparsers.add_parser("review", help="the reviewer web app")
    commands = review.add_subparsers(dest="review_command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the review app on this machine")
    serve.add_argument("--port", type=port_number, default=8600)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: this machine only)")
    serve.set_defaults(run=run_serve)

    users = subparsers.add_parser("users", help="reviewer accounts")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    add = user_commands.add_parser(
        "add", help="add a reviewer (or set a new password); the password is asked for, or "
                    "read from the first line of standard input when it is not a terminal")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLE_NAMES, default=None,
                     help="what the account may do in the review app: caseworker (edit "
                          "wording), reviewer (see pictures clearly, edit, approve, reject; "
                          "read grooming alerts and set their disposition), sender (send "
                          "approved notices), auditor (read the audit log and grooming "
                          "alerts), admin (all of it); default: "
                          f"{DEFAULT_ROLE_NAME} for a new account, an existing one keeps its "
                          "role")
    add.set_defaults(run=run_add_user)


def desk():
    """The alert desk as an extension of the review app: its pages under /alerts, seen by the
    roles with `alerts`, disposed of by those with `dispose` (takedown/review/roles.py)."""
    from grooming.desk import desk_routes
    from takedown.review.app import Extension
    from takedown.review.roles import ALERTS, DISPOSE

    return Extension(label="Alerts", path="/alerts", permission=ALERTS,
                     routes=lambda host: desk_routes(host, read=ALERTS, disposing=DISPOSE))


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from takedown.review.app import default_app

    try:
        app = default_app(extensions=[desk()])
    except ValueError as exc:  # a review setting that is neither 1 nor 0
        raise ConfigurationError(str(exc)) from None
    print(f"Review app on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    # uvicorn's own X-Forwarded-For handling is off: it trusts 127.0.0.1, so any local
    # process could pick its address for the login throttle. HAECHI_REVIEW_TRUST_PROXY is
    # the one way (takedown/review/security.py).
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                proxy_headers=False)
    return 0


def run_add_user(args: argparse.Namespace) -> int:
    from takedown.database import takedown_engine
    from takedown.review.accounts import AccountError, add_reviewer

    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("haechi users: the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        role = add_reviewer(takedown_engine(), args.name, password, role=args.role)
    except AccountError as exc:
        raise SystemExit(f"haechi users: {exc}") from None
    print(f"Account {args.name} can log in as {role}.")
    return 0
