"""`haechi demo`: the README's main job, end to end on the embedded default.

It starts a local test web (generated gallery sites in many markups and languages, with traps
and hostile files), registers three generated stand-in victims (hashes only), crawls every
site with `haechi crawl`, and shows the cases opened, checked against what was planted, and
the removal notices drafted for each host in its language, ready for review. All of
it lives in its own folder under the data folder, so a real installation's bank and cases are
never touched. No real photo of a person is used anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testkit.testweb.model import WebPlan

# Where a real installation sends or keeps things: the demo's made-up cases, chats and evidence
# must reach none of them, whatever this shell has set.
REAL_SINKS = ("HAECHI_STORE", "HAECHI_EVIDENCE_STORE", "HAECHI_ALERT_WEBHOOK",
              "HAECHI_ALERT_EMAIL", "HAECHI_SMTP_URL", "HAECHI_SITE_REGISTRY", "REDIS_URL")
# The demo runs the crawl and the chat scan as the `haechi` command installed beside this Python,
# and names it in full in its next steps: ./scripts/demo puts .venv on its own PATH, not on the
# shell's a newcomer types into.
HAECHI = Path(sys.executable).with_name("haechi")


def need_testkit() -> None:
    """Make the test fixtures (testkit/) importable from the source tree Haechi runs from.

    They stay out of the wheel, so an installed Haechi has no test web; the demo is a source-tree
    command (./scripts/demo installs the checkout in editable mode). Where there is no checkout
    beside the installed code, a clear error instead of an ImportError.
    """
    import importlib.util

    if importlib.util.find_spec("testkit") is not None:
        return
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "testkit" / "__init__.py").is_file():
        from engines.settings import ConfigurationError

        raise ConfigurationError("the demo runs from Haechi's source tree (its test web, "
                                 "testkit/, is not installed with the package): run "
                                 "./scripts/demo in a checkout")
    sys.path.insert(0, str(checkout))


def demo_crawl_env() -> dict[str, str]:
    """The demo crawl's settings. The slow-response trap should cost seconds, not the
    production timeout; a timeout on a loaded machine is tried three more times, each after a
    longer wait, before it counts. The outbound policy refuses loopback: the crawl may reach
    the test web's addresses, no others."""
    need_testkit()
    from testkit.testweb.model import FETCH_ALLOW

    return {"HAECHI_SCRAPY_DOWNLOAD_TIMEOUT": "5", "HAECHI_SCRAPY_RETRY_TIMES": "3",
            "HAECHI_SCRAPY_RETRY_BACKOFF_BASE": "0.5", "HAECHI_FETCH_ALLOW": FETCH_ALLOW}


def demo_plan() -> WebPlan:
    """The demo's test web: one site per markup. (Imported here, not at the top: building the
    command line must not load the test web, the bank or the cases.)"""
    need_testkit()
    from testkit.testweb.model import MARKUPS, WebPlan

    return WebPlan(sites=len(MARKUPS), seed=2026, victims=3, pages=2, images_per_page=3)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the end-to-end demo: a local test web, victims, a crawl, the cases")
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.set_defaults(run=run_demo)


# Two made-up KakaoTalk exports for the grooming early warning: the same request for a photo,
# once between adult friends, once after questions about age and being alone.
DEMO_CHATS = {
    "friends.txt": """지수 님과 카카오톡 대화
--------------- 2026년 11월 20일 금요일 ---------------
[지수] [오후 8:01] 제주도 여행 어땠어?
[현우] [오후 8:02] 완전 좋았어 ㅋㅋ 회사 휴가 잘 썼다
[지수] [오후 8:03] 사진 보낼래?
[현우] [오후 8:04] ㅇㅇ 잠깐만
""",
    "stranger.txt": """민지 님과 카카오톡 대화
--------------- 2026년 11월 20일 금요일 ---------------
[아저씨] [오후 8:01] 안녕 ㅎㅎ 뭐해?
[민지] [오후 8:02] 숙제 해요
[아저씨] [오후 8:03] 너 몇 살이야?
[민지] [오후 8:03] 중2요
[아저씨] [오후 8:05] 나이보다 되게 성숙하다
[아저씨] [오후 8:06] 지금 집에 혼자 있어?
[민지] [오후 8:07] ㅇㅇ
[아저씨] [오후 8:08] 사진 보낼래? 엄마한테는 말하지 마
[아저씨] [오후 8:10] 토요일 3시에 역 앞에서 만나자
""",
}


def scan_demo_chats(folder: Path, env: dict[str, str]) -> list[dict]:
    chats = folder / "chats"
    chats.mkdir()
    paths = []
    for name, text in DEMO_CHATS.items():
        (chats / name).write_text(text, encoding="utf-8")
        paths.append(str(chats / name))
    scanned = subprocess.run([str(HAECHI), "chats", "scan", "--json", *paths], env=env, text=True,
                             stdout=subprocess.PIPE, check=True)
    return [json.loads(line) for line in scanned.stdout.splitlines()]


def run_demo(args: argparse.Namespace) -> int:
    need_testkit()
    from engines.bankkey import KEY_VARIABLE as BANK_KEY_VARIABLE
    from engines.bankkey import bank_key
    from engines.home import data_home
    from haechi.commands.demo_ladder import climb_one_case
    from matcher.bank import VictimBank
    from matcher.confirm import judge_with
    from matcher.hasher import ImageHasher
    from matcher.match import Matcher
    from takedown.cases import CaseStore
    from takedown.notices import notice_json
    from testkit.synthetic import encode
    from testkit.testweb.model import MARKUPS, victim_name, victim_original
    from testkit.testweb.server import start_testweb

    plan = demo_plan()
    folder = data_home() / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    database = f"sqlite:///{folder / 'haechi.sqlite3'}"
    say = (lambda *_: None) if args.json else print

    bank = VictimBank.open(url=database, index_dir=folder / "index")
    hasher = ImageHasher()
    for number in range(plan.victims):
        data = encode(victim_original(plan.seed, number))
        bank.add(victim_name(number), hasher.registration_hashes(data), source="generated")
    bank.save()
    say(f"Registered {plan.victims} generated stand-in victims (only their hashes).")

    web = start_testweb(plan)
    try:
        urls = [web.web.site_url(i) for i in range(plan.sites)]
        say(f"Started a local test web of {len(urls)} gallery sites on loopback addresses "
            f"({urls[0]} ...), with edited copies of the victims' pictures planted in "
            f"{len(MARKUPS)} kinds of markup, plus traps and hostile files.\n")
        env = {key: value for key, value in os.environ.items() if key not in REAL_SINKS}
        # The crawl's data folder is the demo folder, which holds no bank key of its own: it
        # is given the one the victims were just registered under.
        env.update(demo_crawl_env(), HAECHI_HOME=str(folder), DATABASE_URL=database,
                   **{BANK_KEY_VARIABLE: bank_key().decode()})
        crawl = subprocess.run([str(HAECHI), "crawl", "--json", *urls], env=env, text=True,
                               stdout=subprocess.PIPE, check=True)
        summary = json.loads(crawl.stdout)
        case_store = CaseStore.open(database)
        cases = case_store.list()
        notices = [notice_json(case_store.engine, notice_id)
                   for notice_id in sorted({c["notice_id"] for c in cases if c["notice_id"]})]
        ladder = []
        if cases:  # while the test web still serves the file the tracker re-checks
            say("Climbing the escalation ladder with one case whose site ignores its notice "
                "(simulated days; local RDAP and mail servers) ...")
            ladder = climb_one_case(folder, database, case_store.engine, cases[0],
                                    judge_with(Matcher(bank)), demo_crawl_env())
            cases = case_store.list()
    finally:
        web.stop()
    say("Scanning two chat exports for grooming (speakers become pseudonyms) ...")
    chats = scan_demo_chats(folder, env)

    planted = {(web.web.image_url(p.site, p), p.victim): p for p in web.web.planted()}
    found = {(c["image_url"], c["victim"]) for c in cases}
    result = {
        "crawl": summary,
        "planted": len(planted),
        "found": len(found & set(planted)),
        "false_cases": len(found - set(planted)),
        "missed": [{"markup": p.markup, "url": key[0], "victim": p.victim}
                   for key, p in planted.items() if key not in found],
        "cases": cases,
        "notices": [{k: n[k] for k in ("id", "site", "language", "to", "subject", "urls",
                                       "sender_configured")} for n in notices],
        "ladder": ladder,
        "chats": [{k: c[k] for k in ("file", "conversation", "speaker", "score", "tier",
                                     "stages", "first_alert_message")} for c in chats],
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"Crawl: {summary['sites']} sites, {summary['pages']} pages, {summary['files']} "
          f"media files, {summary['seconds']} s.")
    if summary["errors"]:
        print("Survived: " + ", ".join(f"{k} x{v}" for k, v in summary["errors"].items()))
    if summary["traps"]:
        print("Traps cut short: " + ", ".join(f"{k} x{v}" for k, v in summary["traps"].items()))
    print(f"\nCases opened ({len(cases)}):")
    for case in cases:
        markup = planted[(case["image_url"], case["victim"])].markup if (
            case["image_url"], case["victim"]) in planted else "NOT PLANTED"
        second = f" at {case['second']:g} s" if case["second"] is not None else ""
        print(f"  #{case['id']:<3} {case['victim']:<9} {markup:<18} {case['image_url']}{second}")
    print(f"\nFound {result['found']} of {result['planted']} planted pictures; "
          f"{result['false_cases']} cases for pictures that were not planted.")
    for miss in result["missed"]:
        print(f"  MISSED: {miss['victim']} in {miss['markup']} markup: {miss['url']}")
    print(f"\nDrafted notices, one per host, waiting for a person to approve ({len(notices)}):")
    for notice in notices:
        print(f"  [{notice['language']}] to {notice['to']}: {notice['subject']} "
              f"({len(notice['urls'])} URL(s))")
    unsigned = sorted({name for n in notices for name in n["sender_missing"]})
    if unsigned:
        print(f"  These drafts name no institution ({' and '.join(unsigned)} not set), so they say "
              "so in place of a signature; nothing can be sent until both are set.")
    if ladder:
        print(f"\nEscalation ladder: {ladder[0]['party']} ignores its notice, so the case "
              "climbs (each rung approved by demo-reviewer, sent to a local mail server):")
        for step in ladder:
            skipped = "".join(f" ({s['rung']} skipped: {s['why']})" for s in step["skipped"])
            print(f"  day {step['day']:>4.1f}  {step['rung']:<9} [{step['language']}] to "
                  f"{step['to']}: {step['party']}{skipped}")
        print("  (The institution, the hosting network and the authority's address are made "
              f"up. HAECHI_HOME={folder} {HAECHI} cases show {cases[0]['id']} lists the "
              "climb.)")
    print("\nGrooming early warning on two chat exports:")
    for chat in result["chats"]:
        stages = ", ".join(chat["stages"]) or "none"
        print(f"  {Path(chat['file']).name:<13} tier {chat['tier']:<7} score {chat['score']:<6} "
              f"stages: {stages}")
    print(f"\nThe demo's data is in {folder}. To review and approve the notices in a browser:")
    print(f"  HAECHI_HOME={folder} {HAECHI} users add YOUR-NAME")
    print(f"  HAECHI_HOME={folder} {HAECHI} review serve   "
          "# then open http://127.0.0.1:8600/")
    activate = HAECHI.with_name("activate")
    if activate.exists():
        print(f"(Or first `source {activate}`: then plain `haechi` works in that shell.)")
    return 0
