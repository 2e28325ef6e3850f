"""Crawling the local test web end to end with the installed `haechi crawl` command.

One crawl of a test web (every markup pattern twice, traps, hostile files, a dead host) is
shared by the tests of this module; each test checks one promise of the crawler.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from crawler.records import fetched_files, sites
from testkit.synthetic import encode
from testkit.testweb.model import MARKUPS, WebPlan, site_address, victim_name, victim_original
from testkit.testweb.server import free_port, start_testweb

HAECHI = str(Path(sys.executable).with_name("haechi"))
PLAN = WebPlan(sites=2 * len(MARKUPS), seed=7, victims=3, pages=3, images_per_page=3)
# Short timeouts keep the slow-response file from dominating the run.
CRAWL_ENV = {"HAECHI_SCRAPY_DOWNLOAD_TIMEOUT": "4", "HAECHI_SCRAPY_RETRY_BACKOFF_BASE": "0.2",
             "HAECHI_SCRAPY_DOWNLOAD_MAXSIZE": str(50 * 1024 * 1024)}
CRAWL_TIMEOUT = 240


def run_haechi(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run([HAECHI, *args], capture_output=True, text=True, env=env,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


def register_test_victims(env: dict[str, str], folder: Path, plan: WebPlan) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(plan.victims):
        path = folder / f"{victim_name(number)}.jpg"
        path.write_bytes(encode(victim_original(plan.seed, number)))
        run_haechi(env, "register", "--victim", victim_name(number), str(path))


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("crawl-home")
    env = {**os.environ, "HAECHI_HOME": str(home), **CRAWL_ENV}
    env.pop("DATABASE_URL", None)
    env.pop("HAECHI_STORE", None)
    register_test_victims(env, home / "victims", PLAN)
    web = start_testweb(PLAN)
    dead = f"http://{site_address(PLAN.sites + 5)}:{free_port()}/"
    try:
        urls = [web.web.site_url(i) for i in range(PLAN.sites)] + [dead]
        started = time.monotonic()
        summary = json.loads(run_haechi(env, "crawl", "--json", *urls, timeout=CRAWL_TIMEOUT))
        seconds = time.monotonic() - started
        cases = json.loads(run_haechi(env, "cases", "list", "--json"))
    finally:
        web.stop()
    engine = create_engine(f"sqlite:///{home / 'haechi.sqlite3'}")
    return {"home": home, "web": web.web, "summary": summary, "cases": cases,
            "seconds": seconds, "engine": engine}


def test_every_planted_picture_is_found_in_every_markup(crawl) -> None:
    web = crawl["web"]
    found = {(c["image_url"], c["victim"]) for c in crawl["cases"]}
    missing = [
        (p.markup, web.image_url(p.site, p), p.victim)
        for p in web.planted()
        if (web.image_url(p.site, p), p.victim) not in found
    ]
    assert missing == []
    assert {p.markup for p in web.planted()} == set(MARKUPS)


def test_no_unrelated_picture_becomes_a_case(crawl) -> None:
    web = crawl["web"]
    planted = {(web.image_url(p.site, p), p.victim) for p in web.planted()}
    assert [c for c in crawl["cases"] if (c["image_url"], c["victim"]) not in planted] == []
    assert len(crawl["cases"]) == len(planted)


def test_case_json_has_the_contract_fields(crawl) -> None:
    case = crawl["cases"][0]
    for name in ("id", "victim", "image_url", "page_url", "site", "algorithm", "distance",
                 "detected_at", "status"):
        assert name in case
    # The host's notice is drafted the moment the case opens, waiting for a person.
    assert case["status"] == "drafted" and case["notice_id"] is not None
    assert case["page_url"].startswith("http://127.10.")


def test_video_match_says_at_which_second(crawl) -> None:
    videos = [c for c in crawl["cases"] if c["image_url"].endswith(".mp4")]
    assert videos, "the planted video was not matched"
    # The victim's picture shows from second 2 to second 5 of the clip.
    assert all(2 <= c["second"] < 5 for c in videos)


def test_hostile_files_and_dead_hosts_are_counted_not_fatal(crawl) -> None:
    summary = crawl["summary"]
    errors = summary["errors"]
    assert summary["sites"] == PLAN.sites + 1
    assert summary["sites_failed"] == 1
    assert errors.get("connection-refused", 0) >= 1
    assert errors.get("unreadable", 0) >= 2  # decompression bomb, truncated JPEG
    assert errors.get("not-media", 0) >= 1  # HTML served as an image
    assert errors.get("too-large", 0) >= 2  # gzip bomb, 4 GB video
    assert errors.get("timeout", 0) >= 1  # endless slow response
    assert errors.get("http-5xx", 0) >= 1
    assert errors.get("connection-failed", 0) + errors.get("truncated-response", 0) >= 1
    assert "spider-exception" not in errors
    assert crawl["seconds"] < CRAWL_TIMEOUT


def test_traps_are_cut_short(crawl) -> None:
    summary = crawl["summary"]
    assert {"calendar", "repeating-path"} <= set(summary["traps"])
    assert set(summary["traps"]) & {"endless-parameters", "too-many-parameters"}
    # Each trap site could serve endless pages; the budgets keep the whole run small.
    assert summary["pages"] < PLAN.sites * (PLAN.pages + 250)


def test_session_ids_do_not_duplicate_pages(crawl) -> None:
    with crawl["engine"].connect() as conn:
        pages = [row.page_url for row in conn.execute(select(fetched_files.c.page_url))]
    assert not [p for p in pages if "sid=" in p or "jsessionid" in p]


def test_fetched_files_are_recorded_and_stored_by_content(crawl) -> None:
    with crawl["engine"].connect() as conn:
        rows = conn.execute(select(fetched_files)).mappings().all()
    assert rows
    row = next(r for r in rows if r["url"].endswith("-p.jpg"))
    assert row["server_ip"].startswith("127.")
    assert row["status"] == 200
    assert row["media_type"] == "image/jpeg"
    assert any(k.lower() == "content-type" for k in row["headers"])
    stored = crawl["home"] / "objects" / row["store_key"]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == row["sha256"]
    assert row["size"] == stored.stat().st_size


def test_site_language_and_security_txt_are_gathered(crawl) -> None:
    with crawl["engine"].connect() as conn:
        rows = {r["site"]: r for r in conn.execute(select(sites)).mappings()}
    web = crawl["web"]
    for index in range(PLAN.sites):
        spec = web.site(index)
        row = rows[site_address(index)]
        assert row["language"] == spec.language
        if spec.security_txt:
            assert f"mailto:abuse@site{index}.example" in row["contacts"]
            assert row["preferred_languages"][0] == spec.language


def test_a_slow_site_does_not_hold_back_the_others(tmp_path: Path) -> None:
    # Site 11 answers every request a second late and hides its planted picture eight pages
    # deep; the eleven fast sites' pictures must all be found before it.
    plan = WebPlan(sites=12, seed=5, pages=8, images_per_page=1, traps=False, hostile=False,
                   slow_every=12)
    env = {**os.environ, "HAECHI_HOME": str(tmp_path / "home"), **CRAWL_ENV}
    env.pop("DATABASE_URL", None)
    register_test_victims(env, tmp_path / "victims", plan)
    web = start_testweb(plan)
    try:
        run_haechi(env, "crawl", "--json", *[web.web.site_url(i) for i in range(plan.sites)],
                   timeout=CRAWL_TIMEOUT)
    finally:
        web.stop()
    cases = json.loads(run_haechi(env, "cases", "list", "--json"))
    slow_host = site_address(11)
    slow = [c["detected_at"] for c in cases if c["site"] == slow_host]
    fast = [c["detected_at"] for c in cases if c["site"] != slow_host]
    assert len(slow) == 1 and len(fast) == 11
    assert max(fast) < slow[0]
