"""The ways today's sites deliver a picture, each on the project's own test web, crawled end to
end (issue 14): a planted picture becomes a case of its victim on its site.

Every pattern the crawler does not follow yet is marked as an expected failure, strictly: the
day the crawler handles one, its test passes, strict xfail turns that into a failure, and the
mark must come off. The list of marks is the list of what is still missing.
"""

from __future__ import annotations

import json
import os

import pytest

from testkit.testweb.model import MODERN_MARKUPS, WebPlan
from testkit.testweb.server import start_testweb
from tests.test_crawl import CRAWL_ENV, CRAWL_TIMEOUT, register_test_victims, run_haechi

PLAN = WebPlan(sites=len(MODERN_MARKUPS), seed=19, victims=3, pages=2, images_per_page=2,
               traps=False, hostile=False, markups=",".join(MODERN_MARKUPS))
# What the crawler does not do yet, and so why each pattern is expected to fail: nothing now.
NOT_YET: dict[str, str] = {}


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("modern-home")
    # No slow traps here: a timeout as a crawl would set it, so that a loaded machine's slow
    # stream packaging (seconds per variant, the first time) is no failure.
    env = {**os.environ, "HAECHI_HOME": str(home), **CRAWL_ENV,
           "HAECHI_SCRAPY_DOWNLOAD_TIMEOUT": "30"}
    env.pop("DATABASE_URL", None)
    env.pop("HAECHI_STORE", None)
    register_test_victims(env, home / "victims", PLAN)
    web = start_testweb(PLAN)
    try:
        urls = [web.web.site_url(i) for i in range(PLAN.sites)]
        summary = json.loads(run_haechi(env, "crawl", "--json", *urls, timeout=CRAWL_TIMEOUT))
        cases = json.loads(run_haechi(env, "cases", "list", "--json"))
    finally:
        web.stop()
    return {"web": web.web, "summary": summary, "cases": cases}


@pytest.mark.parametrize("markup", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[m])) if m in NOT_YET
    else m for m in MODERN_MARKUPS])
def test_the_planted_picture_becomes_a_case(crawl: dict, markup: str) -> None:
    web = crawl["web"]
    [planted] = [p for p in web.planted() if p.markup == markup]
    site = web.site_url(planted.site).split("//", 1)[1].split(":", 1)[0]
    assert (site, planted.victim) in {(case["site"], case["victim"]) for case in crawl["cases"]}


def test_no_case_names_a_picture_that_was_not_planted(crawl: dict) -> None:
    planted = {(p.site, p.victim) for p in crawl["web"].planted()}
    web = crawl["web"]
    sites = {web.site_url(p.site).split("//", 1)[1].split(":", 1)[0]: p for p in web.planted()}
    assert all(case["site"] in sites and (sites[case["site"]].site, case["victim"]) in planted
               for case in crawl["cases"])
