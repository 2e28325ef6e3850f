"""Re-scan: victims who register after a crawl are found in what was already crawled,
without crawling again, mirrored and video copies included, and nothing else is raised."""

from __future__ import annotations

import json
import os

from haechi.synthetic import encode
from haechi.testweb.model import MARKUPS, WebPlan, victim_name, victim_original
from haechi.testweb.server import start_testweb
from tests.test_crawl import CRAWL_ENV, run_haechi


def test_a_victim_registered_after_the_crawl_is_found_in_it(haechi_home, tmp_path) -> None:
    plan = WebPlan(sites=len(MARKUPS), seed=11, pages=2, images_per_page=2, traps=False,
                   hostile=False)
    env = {**os.environ, **CRAWL_ENV}
    web = start_testweb(plan)
    try:
        summary = json.loads(run_haechi(env, "crawl", "--json",
                                        *[web.web.site_url(i) for i in range(plan.sites)]))
    finally:
        web.stop()
    assert summary["matches"] == 0  # nobody registered yet
    planted = {(web.web.image_url(p.site, p), p.victim) for p in web.web.planted()}
    found = 0
    for number in range(plan.victims):
        path = tmp_path / f"{victim_name(number)}.jpg"
        path.write_bytes(encode(victim_original(plan.seed, number)))
        result = json.loads(run_haechi(env, "register", "--json", "--victim",
                                       victim_name(number), str(path)))
        found += result["rescan"]["earlier_copies"]
    cases = json.loads(run_haechi(env, "cases", "list", "--json"))
    assert {(c["image_url"], c["victim"]) for c in cases} == planted
    assert found == len(planted)
    video = [c for c in cases if c["image_url"].endswith(".mp4")]
    assert video and 2 <= video[0]["second"] < 5
