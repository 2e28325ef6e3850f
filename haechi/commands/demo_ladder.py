"""The demo's escalation ladder: one case whose site ignores its notice climbs, on a simulated
clock, to the site's hosting network and then to the authority, each rung drafted in its
party's language, approved by a (demo) reviewer and sent.

Everything it talks to runs here and stands in for the world as the test web stands in for
sites: a local RDAP server (testkit/rdap/) names the hosting network of the test web's
addresses, a local SMTP server keeps every message, and the tracker re-checks the file on the
still-running test web through the outbound policy. The institution it signs with and every
party are made up and say so. All of it reads and writes only the demo's folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

# A made-up institution, hosting network and authority: nothing leaves this machine.
DEMO_ORG = "Demo Victim Support Centre (made up)"
DEMO_FROM = "takedown@support.example"
DEMO_HOST = "Demo Hosting GmbH (made up)"
DEMO_HOST_ABUSE = "abuse@demo-hosting.example"
DEMO_AUTHORITY = "Korea Communications Standards Commission (KCSC; demo address)"
DEMO_AUTHORITY_ADDRESS = "blocking-requests@authority.example"
REVIEWER = "demo-reviewer"
# The demo's ladder: short deadlines, so the climb reads in a few lines.
LADDER = {"rungs": [
    {"rung": "site", "deadline_days": 2}, {"rung": "host", "deadline_days": 3},
    {"rung": "cdn", "deadline_days": 3}, {"rung": "registrar", "deadline_days": 5},
    {"rung": "authority", "deadline_days": 7, "name": DEMO_AUTHORITY,
     "contact": DEMO_AUTHORITY_ADDRESS, "language": "ko"}]}


class SimulatedClock:
    """The demo's days pass in a call."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, days: float) -> None:
        self.now += dt.timedelta(days=days)


@contextlib.contextmanager
def demo_environment(folder: Path, database: str, extra: dict[str, str]) -> Iterator[None]:
    """This process's settings pointed at the demo folder for the climb, then restored."""
    changes = {"HAECHI_HOME": str(folder), "DATABASE_URL": database,
               "HAECHI_ORG_NAME": DEMO_ORG, "HAECHI_FROM": DEMO_FROM,
               "HAECHI_LADDER": str(folder / "ladder.json"), **extra}
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def climb_one_case(folder: Path, database: str, engine: Engine, case: dict[str, Any],
                   judge: Any, extra_env: dict[str, str]) -> list[dict[str, Any]]:
    """Send the case's site notice, then climb until nobody is left; returns each rung as
    {"day", "rung", "party", "language", "to", "subject", "skipped"}."""
    from aiosmtpd.controller import Controller

    from engines.mail import SmtpServer
    from takedown.ladder import Climber, Ladder
    from takedown.notices import NoticeDrafter, approve_notice, notice_json
    from takedown.published import write_refreshed
    from takedown.sending import NoticeSender
    from takedown.tracking import Tracker
    from testkit.rdap.server import Canned, RdapServer, entity, ip_network
    from testkit.testweb.server import free_port

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 kept"

    (folder / "ladder.json").write_text(json.dumps(LADDER))
    clock = SimulatedClock()
    steps: list[dict[str, Any]] = []
    mail = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    mail.start()
    try:
        with RdapServer() as rdap, demo_environment(folder, database, extra_env):
            address = case["server_ip"]
            rdap.answers[f"/registry/ip/{address}"] = Canned(ip_network(
                address, "DEMO-NET", "DE", [entity("ORG-DEMO", ["registrant"], DEMO_HOST,
                                                   children=[entity("AB-DEMO", ["abuse"],
                                                                    "Abuse", DEMO_HOST_ABUSE)])]))
            # The registries' bootstrap: the test web's addresses belong to the local server.
            for kind, document in rdap.bootstrap_files("test", "127.10.0.0/15").items():
                write_refreshed(f"rdap/{kind}.json", json.dumps(document).encode())
            sender = NoticeSender(engine, SmtpServer("127.0.0.1", mail.port), clock=clock,
                                  backoff=0)
            with engine.begin() as conn:  # signed by the demo's institution from now on
                site_notice = NoticeDrafter(engine).draft_for_site(conn, case["site"],
                                                                  clock())
            tracker = Tracker(engine, judge, sender, clock, climber=Climber(
                engine, Ladder.load(), clock=clock))
            day, notice_id, skipped, rung = 0.0, site_notice, [], "site"
            while notice_id is not None:
                approve_notice(engine, notice_id, REVIEWER, clock())
                sender.send_notice(notice_id, actor=REVIEWER)
                notice = notice_json(engine, notice_id)
                steps.append({"day": day, "rung": rung, "party": notice["party"] or case["site"],
                              "language": notice["language"], "to": notice["to"],
                              "subject": notice["subject"], "skipped": skipped})
                deadline = Ladder.load().rung(rung).deadline
                clock.advance(deadline.total_seconds() / 86400 + 0.1)
                day += deadline.total_seconds() / 86400 + 0.1
                report = tracker.run()
                climbed = [s for s in report.ladder.get("climbed", [])
                           if s["case"] == case["id"]]
                if not climbed:
                    break
                notice_id, rung = climbed[0]["notice"], climbed[0]["rung"]
                skipped = climbed[0]["skipped"]
    finally:
        mail.stop()
    return steps
