"""Running one crawl to completion in this process and summarising it from Scrapy's stats."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from scrapy.crawler import AsyncCrawlerProcess
from scrapy.settings import Settings

from crawler.browser import AUTO, RENDER_MODES
from crawler.profiles import PROFILES_FILE, download_slots, load_profiles
from crawler.spiders.sites import DEFAULT_MAX_PAGES, SiteSpider
from engines.home import data_home
from engines.settings import ConfigurationError

# Any Scrapy setting can be tuned for one run from the environment, e.g.
# HAECHI_SCRAPY_DOWNLOAD_TIMEOUT=5 (values are parsed as JSON when they parse, else text), and
# Haechi's own crawler settings, whose names start with HAECHI_ (HAECHI_SITE_INTERVAL,
# HAECHI_LEASE_SECONDS, ...), are read from the variable of the same name, as the README says.
ENV_PREFIX = "HAECHI_SCRAPY_"
OWN_PREFIX = "HAECHI_"


def _parsed(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _env_settings() -> dict[str, Any]:
    own = {key: _parsed(value) for key, value in os.environ.items()
           if key.startswith(OWN_PREFIX) and not key.startswith(ENV_PREFIX)}
    scrapy = {key[len(ENV_PREFIX):]: _parsed(value) for key, value in os.environ.items()
              if key.startswith(ENV_PREFIX)}
    return {**own, **scrapy}


def crawl_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Haechi's crawler settings, then `overrides` (pipelines, sinks, stores), then the
    HAECHI_SCRAPY_* environment."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.update(overrides or {}, priority="cmdline")
    settings.update(_env_settings(), priority="cmdline")
    return settings


def summarise(stats: dict[str, Any], seconds: float,
              per_site: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run's summary: counts of what was done, errors and traps by kind, and each site's
    line (`per_site`: rendered, videos, gates, sitemaps)."""

    def group(prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: v for k, v in sorted(stats.items()) if k.startswith(prefix)}

    errors = group("haechi/errors/")
    if stats.get("spider_exceptions/count"):
        errors["spider-exception"] = stats["spider_exceptions/count"]
    return {
        "sites": stats.get("haechi/sites", 0),
        "sites_failed": stats.get("haechi/sites_failed", 0),
        "pages": stats.get("haechi/pages", 0),
        "files": stats.get("haechi/files", 0),
        "files_hashed": stats.get("haechi/files_hashed", 0),
        # The most files waiting at once to be hashed and matched (crawler/backpressure.py).
        "files_waiting_max": stats.get("haechi/files_waiting_max", 0),
        # Hashing processes that died and were replaced (their files were hashed again).
        "workers_restarted": stats.get("haechi/workers_restarted", 0),
        "matches": stats.get("haechi/matches", 0),
        "errors": errors,
        "traps": group("haechi/traps/"),
        "page_cap_reached": stats.get("haechi/budget/page-cap", 0),
        "requests": stats.get("downloader/request_count", 0),
        "rendered": group("haechi/rendered/"),
        "seconds": round(seconds, 2),
        "per_site": per_site or {},
    }


def run_crawl(urls: list[str], max_pages: int = DEFAULT_MAX_PAGES,
              overrides: dict[str, Any] | None = None,
              spider: type[SiteSpider] = SiteSpider) -> dict[str, Any]:
    """Crawl `urls` (each a site) to completion; returns `summarise` of the run."""
    settings = crawl_settings(overrides)
    mode = settings.get("HAECHI_RENDER") or AUTO
    if mode not in RENDER_MODES:
        # Checked here, before the crawl: in the spider it would fail every page instead.
        raise ConfigurationError(f"HAECHI_RENDER must be one of {', '.join(RENDER_MODES)}, "
                                 f"not {mode!r}")
    # Site profiles are read once here, so a mistake in them stops the run before it starts.
    path = settings.get("HAECHI_SITE_PROFILES") or str(data_home() / PROFILES_FILE)
    settings.set("HAECHI_SITE_PROFILES", path, priority="cmdline")
    settings.set("DOWNLOAD_SLOTS", {**settings.getdict("DOWNLOAD_SLOTS"),
                                    **download_slots(load_profiles(Path(path)))},
                 priority="cmdline")
    process = AsyncCrawlerProcess(settings)
    crawler = process.create_crawler(spider)
    started = time.monotonic()
    process.crawl(crawler, urls=urls, max_pages=max_pages)
    process.start()
    sites = getattr(crawler.spider, "sites", {})
    # A site reached under two names (a start URL that redirected) is one line.
    per_site = {state.site: state.report() for state in {id(s): s for s in sites.values()}
                .values()}
    return summarise(crawler.stats.get_stats(), time.monotonic() - started, per_site)
