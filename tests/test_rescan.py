"""Re-scan: victims who register after a crawl are found in what was already crawled,
without crawling again, mirrored and video copies included, and nothing else is raised."""

from __future__ import annotations

import json
import os

from testkit.synthetic import encode
from testkit.testweb.model import MARKUPS, WebPlan, victim_name, victim_original
from testkit.testweb.server import start_testweb
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


def test_recheck_raises_only_the_earlier_copies_still_online(haechi_home, tmp_path) -> None:
    plan = WebPlan(sites=6, seed=19, victims=2, pages=2, images_per_page=2, traps=False,
                   hostile=False)
    env = {**os.environ, **CRAWL_ENV}
    web = start_testweb(plan)
    planted = {(web.web.image_url(p.site, p), p.victim) for p in web.web.planted()}
    try:
        run_haechi(env, "crawl", "--json", *[web.web.site_url(i) for i in range(plan.sites)])
        first = tmp_path / "first.jpg"
        first.write_bytes(encode(victim_original(plan.seed, 0)))
        online = json.loads(run_haechi(env, "register", "--json", "--recheck", "--victim",
                                       victim_name(0), str(first)))["rescan"]
    finally:
        web.stop()  # the sites go offline: the second victim's copies are gone
    second = tmp_path / "second.jpg"
    second.write_bytes(encode(victim_original(plan.seed, 1)))
    offline = json.loads(run_haechi(env, "register", "--json", "--recheck", "--victim",
                                    victim_name(1), str(second)))["rescan"]
    expected = {key for key in planted if key[1] == victim_name(0)}
    assert online == {"earlier_copies": len(expected), "gone": 0}
    assert offline == {"earlier_copies": 0,
                       "gone": len([k for k in planted if k[1] == victim_name(1)])}
    cases = json.loads(run_haechi(env, "cases", "list", "--json"))
    assert {(c["image_url"], c["victim"]) for c in cases} == expected
