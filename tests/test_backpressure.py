"""Back-pressure counts files: however small the files, no more of them wait to be hashed and
matched than the scraper's budget holds at the floor's weight (crawler/backpressure.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from testkit.testweb.model import WebPlan
from testkit.testweb.server import start_testweb

BUDGET = 262_144
FLOOR = 65_536
DOWNLOADS = 4  # in flight when the budget fills; those still arrive


def _crawl(tmp_path: Path, urls: list[str], floor: int) -> dict:
    env = {**os.environ, "HAECHI_HOME": str(tmp_path / f"home-{floor}"),
           "HAECHI_SCRAPY_HASH_WORKERS": "1",
           "HAECHI_SCRAPY_CONCURRENT_REQUESTS": str(DOWNLOADS),
           "HAECHI_SCRAPY_SCRAPER_SLOT_MAX_ACTIVE_SIZE": str(BUDGET),
           "HAECHI_SCRAPY_SCRAPER_SLOT_MIN_RESPONSE_SIZE": str(floor)}
    env.pop("DATABASE_URL", None)
    env.pop("HAECHI_STORE", None)
    haechi = str(Path(sys.executable).with_name("haechi"))
    done = subprocess.run([haechi, "crawl", "--json", *urls], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_small_files_wait_no_more_than_the_budget_holds_at_the_floor(tmp_path: Path) -> None:
    # 12-13 KB pictures: by bytes alone the budget holds about twenty of them.
    plan = WebPlan(sites=8, seed=5, victims=1, pages=2, images_per_page=6, traps=False,
                   hostile=False, plant_every=100)
    web = start_testweb(plan)
    try:
        urls = [web.web.site_url(i) for i in range(plan.sites)]
        floored = _crawl(tmp_path, urls, FLOOR)
        by_bytes = _crawl(tmp_path, urls, 1024)  # Scrapy's own floor
    finally:
        web.stop()
    for summary in (floored, by_bytes):
        assert summary["files"] >= 80
        assert summary["files_hashed"] == summary["files"]
    bound = BUDGET // FLOOR + 1 + DOWNLOADS
    assert 0 < floored["files_waiting_max"] <= bound
    assert by_bytes["files_waiting_max"] > bound
