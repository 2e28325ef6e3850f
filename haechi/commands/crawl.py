"""`haechi crawl`: crawl sites on the embedded default, matching and opening cases as it goes.

Scrapy and the crawler are imported when a crawl runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engines.inputs import http_url, positive_int
from haechi.commands import EXIT_INPUTS_FAILED, require_redis_url

# The embedded default wires the whole chain into the crawl process: store (crawler), hash and
# match (matcher), cases (takedown). Cluster mode replaces the last two with queues.
EMBEDDED_PIPELINES = {
    "crawler.pipelines.StorePipeline": 300,
    "matcher.pipeline.MatchPipeline": 500,
}
EMBEDDED_SINKS = ["takedown.intake.CaseIntake"]
CLUSTER_HEARTBEAT_SECONDS = 0.5
CLUSTER_PIPELINES = {
    "crawler.pipelines.StorePipeline": 300,
    "crawler.cluster.DispatchPipeline": 500,
}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    crawl = subparsers.add_parser(
        "crawl", help="crawl sites for registered victims' images and open cases",
        description="Each URL is a site: its pages are followed on that site, every image and "
                    "video on them is stored, hashed and matched against the victim bank.",
    )
    crawl.add_argument("urls", nargs="+", type=http_url, metavar="URL")
    # No default here: the spider's DEFAULT_MAX_PAGES is read when the crawl runs, so that
    # building the parser does not import Scrapy.
    crawl.add_argument("--max-pages", type=positive_int, metavar="N",
                       help="pages to fetch per site at most (default: the crawler's limit "
                            "per site)")
    crawl.add_argument("--json", action="store_true", help="print the summary as JSON")
    crawl.add_argument("--cluster", action="store_true",
                       help="push the sites to the cluster's crawler nodes (REDIS_URL) and "
                            "return at once")
    crawl.set_defaults(run=run_crawl_command)

    node = subparsers.add_parser(
        "crawler", help="run a crawler node of the cluster (REDIS_URL): takes sites pushed by "
                        "`haechi crawl --cluster` and shares one frontier with the other nodes")
    node.add_argument("--idle-exit", type=int, default=0, metavar="SECONDS",
                      help="stop after this long without work (default: run until stopped)")
    node.add_argument("--json", action="store_true", help="print the summary as JSON")
    node.set_defaults(run=run_crawler_node)


def embedded_overrides() -> dict[str, Any]:
    from engines.settings import current

    settings = current()
    return {
        "ITEM_PIPELINES": EMBEDDED_PIPELINES,
        "MATCH_EVENT_SINKS": EMBEDDED_SINKS,
        "HAECHI_PROGRESS": True,
        "HAECHI_STORE": settings.store or "",
        "DATABASE_URL": settings.database_url or "",
        "LOG_LEVEL": settings.log_level,
    }


def describe(summary: dict[str, Any]) -> str:
    lines = [
        f"Crawled {summary['sites']} site(s) in {summary['seconds']} s: "
        f"{summary['pages']} pages, {summary['files']} media files "
        f"({summary['files_hashed']} hashed), {summary['matches']} matches.",
    ]
    if summary["sites_failed"]:
        lines.append(f"{summary['sites_failed']} site(s) could not be reached.")
    if summary["errors"]:
        lines.append("Errors: " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
    if summary["workers_restarted"]:
        lines.append(f"{summary['workers_restarted']} hashing process(es) died and were "
                     "replaced; their files were hashed again"
                     + (f", except {summary['errors']['worker-lost']} that never could "
                        "(not matched)." if summary["errors"].get("worker-lost") else "."))
    if summary.get("rendered"):
        rendered = {k: v for k, v in summary["rendered"].items() if "/" not in k}
        missing = sum(v for k, v in summary["rendered"].items() if k.startswith("no-browser/"))
        if rendered:
            lines.append(f"Rendered {sum(rendered.values())} page(s) in a browser ("
                         + ", ".join(f"{k} {v}" for k, v in rendered.items()) + ").")
        if missing:
            lines.append(f"{missing} page(s) needed a browser, but none was found "
                         "(install Debian's chromium or set HAECHI_CHROMIUM).")
    sites = summary.get("per_site", {}).values()
    failed_gates = sum(site["gates"]["failed"] for site in sites)
    if failed_gates:
        lines.append(f"{failed_gates} gate(s) or challenge(s) could not be passed.")
    if summary["traps"]:
        lines.append("Traps avoided: " + ", ".join(f"{k} {v}"
                                                   for k, v in summary["traps"].items()))
    if summary["matches"]:
        lines.append("See the cases with: haechi cases list")
    return "\n".join(lines)


def cluster_overrides(idle_exit: int) -> dict[str, Any]:
    """The crawl settings of a cluster node: shared frontier, matching by Celery workers."""
    from engines.broker import redis_params, redis_url

    return {
        **embedded_overrides(),
        "ITEM_PIPELINES": CLUSTER_PIPELINES,
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "crawler.redis_dupefilter.CycleBloomDupeFilter",
        "SCHEDULER_QUEUE_CLASS": "crawler.redis_queue.LeasedSiteQueue",
        "SCHEDULER_PERSIST": True,
        "REDIS_URL": redis_url(),
        "REDIS_PARAMS": redis_params(),
        "MAX_IDLE_TIME_BEFORE_CLOSE": idle_exit,
        "HAECHI_PROGRESS": False,
    }


def run_crawler_node(args: argparse.Namespace) -> int:
    require_redis_url("crawler nodes share their sites and frontier in Redis")
    from scrapy.core.engine import ExecutionEngine

    from crawler.run import run_crawl
    from crawler.spiders.cluster import ClusterSiteSpider
    from crawler.spiders.sites import DEFAULT_MAX_PAGES

    # A node whose last look at the shared frontier found no site due waits for the engine's
    # heartbeat (5 s) before looking again, while the other nodes take every site as it comes
    # due; half a second keeps all nodes working on small crawls too.
    ExecutionEngine._SLOT_HEARTBEAT_INTERVAL = CLUSTER_HEARTBEAT_SECONDS
    summary = run_crawl([], DEFAULT_MAX_PAGES, cluster_overrides(args.idle_exit),
                        spider=ClusterSiteSpider)
    print(json.dumps(summary) if args.json else describe(summary))
    return 0


def push_seeds(urls: list[str], max_pages: int) -> int:
    """Register the sites in the cluster's schedule, due now (and again every cycle)."""
    from crawler.schedule import SiteSchedule
    from crawler.urls import canonical_url, site_of
    from engines.broker import redis_client

    schedule = SiteSchedule.from_env(redis_client())
    for url in urls:
        schedule.add(site_of(canonical_url(url)), canonical_url(url), max_pages)
    return len(urls)


def run_crawl_command(args: argparse.Namespace) -> int:
    from crawler.spiders.sites import DEFAULT_MAX_PAGES

    max_pages = args.max_pages or DEFAULT_MAX_PAGES
    if args.cluster:
        require_redis_url("--cluster adds the sites to the schedule in Redis")
        pushed = push_seeds(args.urls, max_pages)
        print(json.dumps({"seeds_pushed": pushed}) if args.json else
              f"Pushed {pushed} site(s) to the cluster's crawler nodes.")
        return 0
    from crawler.run import run_crawl

    summary = run_crawl(args.urls, max_pages, embedded_overrides())
    print(json.dumps(summary) if args.json else describe(summary))
    # Sites that fail are the web's doing and the crawl still ran; a file no hashing process
    # could survive was never matched, which the exit status must not hide.
    return EXIT_INPUTS_FAILED if summary["errors"].get("worker-lost") else 0
