"""`haechi config check` and `haechi worker`: running Haechi as a cluster.

The same code runs embedded or as a cluster; the environment decides: REDIS_URL (Celery broker
and the match-event stream), DATABASE_URL (PostgreSQL for the bank and the cases) and
HAECHI_STORE (s3://bucket/prefix for media). What each command talks to (SQLAlchemy, Redis,
Celery, boto3) is imported when it runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets

from engines.inputs import port_number, positive_int
from engines.settings import current
from haechi.commands import require_redis_url


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="what this installation is configured to use")
    commands = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help="say which configured services are reachable")
    check.add_argument("--json", action="store_true")
    check.set_defaults(run=run_check)

    cluster = subparsers.add_parser("cluster", help="run and watch Haechi as a cluster")
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True,
                                              metavar="COMMAND")
    metrics = cluster_commands.add_parser(
        "metrics", help="queue depths: sites due, requests and files waiting, events pending")
    metrics.add_argument("--json", action="store_true")
    metrics.add_argument("--cloudwatch", action="store_true",
                         help="also publish them to CloudWatch (namespace Haechi), which the "
                              "AWS deployment scales crawler nodes and workers on")
    metrics.set_defaults(run=run_metrics)
    start = cluster_commands.add_parser(
        "up", help="the whole cluster on this machine: Redis and PostgreSQL (started if none "
                   "answers), workers, crawler nodes, the takedown consumer, the review app")
    start.add_argument("--crawlers", type=positive_int, default=1, metavar="N")
    start.add_argument("--workers", type=positive_int, default=1, metavar="N")
    start.add_argument("--review-port", type=port_number, default=8600, metavar="PORT")
    start.add_argument("--json", action="store_true")
    start.set_defaults(run=run_up)
    stop = cluster_commands.add_parser("down", help="stop what `haechi cluster up` started")
    stop.add_argument("--json", action="store_true")
    stop.set_defaults(run=run_down)

    worker = subparsers.add_parser("worker", help="run a matcher worker (Celery, REDIS_URL)")
    worker.add_argument("--concurrency", type=positive_int, default=os.cpu_count() or 1)
    worker.set_defaults(run=run_worker)


def _check_database() -> dict:
    from sqlalchemy import text

    from engines.db import database_url, open_engine

    url = database_url()
    with open_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"url": open_engine(url).url.render_as_string(hide_password=True)}


def _check_redis() -> dict:
    from engines.broker import redis_client, redis_url

    url = redis_url()
    if url is None:
        return {"url": None, "note": "not configured: embedded default, no Redis needed"}
    info = redis_client(url).info("server")
    return {"url": url, "version": info.get("redis_version")}


def _check_store() -> dict:
    from engines.objects import open_store

    store = open_store()
    key = f"healthcheck/{secrets.token_hex(8)}"
    store.put(key, b"ok")
    if store.get(key) != b"ok":
        raise OSError("wrote a probe object but read back something else")
    return {"uri": store.uri}


def run_check(args: argparse.Namespace) -> int:
    results = {}
    for name, probe in (("database", _check_database), ("redis", _check_redis),
                        ("store", _check_store)):
        try:
            results[name] = {"ok": True, **probe()}
        except Exception as exc:  # every failure is reported, none stops the others
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if args.json:
        print(json.dumps(results))
    else:
        for name, result in results.items():
            where = result.get("url") or result.get("uri") or ""
            state = "reachable" if result["ok"] else f"NOT reachable: {result['error']}"
            note = f" ({result['note']})" if result.get("note") else ""
            print(f"{name:<9} {where} {state}{note}")
    return 0 if all(r["ok"] for r in results.values()) else 1


def run_worker(args: argparse.Namespace) -> int:
    require_redis_url("the worker takes its tasks from Redis")
    from matcher.tasks import app

    app.worker_main(["worker", "--queues", "haechi.match", "--concurrency",
                     str(args.concurrency), "--loglevel", "WARNING", "--without-gossip",
                     "--without-mingle", "--pool", "prefork"])
    return 0


def cluster_metrics() -> dict[str, int]:
    """How much work waits in the cluster, read from Redis. The AWS deployment scales crawler
    nodes on sites_due and workers on files_queued (infra/terraform/scaling.tf)."""
    from crawler.schedule import SiteSchedule
    from crawler.spiders.cluster import ClusterSiteSpider
    from engines.broker import MATCH_QUEUE, redis_client
    from matcher.streams import STREAM, dead_letter_count
    from takedown.consumer import GROUP

    client = redis_client()
    frontier = f"{ClusterSiteSpider.name}:requests"
    try:
        events_pending = int(client.xpending(STREAM, GROUP)["pending"])
    except Exception:  # no stream or no consumer group yet: nothing is pending
        events_pending = 0
    return {
        "sites_due": SiteSchedule.from_env(client).due(),
        "requests_queued": int(client.get(frontier + ":count") or 0),
        "requests_leased": int(client.zcard(frontier + ":leases")),
        "files_queued": int(client.llen(MATCH_QUEUE)),
        # Celery's Redis transport keeps tasks taken but not yet acknowledged in "unacked".
        "files_in_progress": int(client.hlen("unacked")),
        "events_pending": events_pending,
        # Match events no case could be opened for, set aside with their error (never lost).
        "events_dead": dead_letter_count(client),
    }


def publish_to_cloudwatch(metrics: dict[str, int], cluster: str) -> None:
    import boto3

    boto3.client("cloudwatch").put_metric_data(Namespace="Haechi", MetricData=[
        {"MetricName": name.title().replace("_", ""), "Value": float(value), "Unit": "Count",
         "Dimensions": [{"Name": "Cluster", "Value": cluster}]}
        for name, value in metrics.items()])


def run_metrics(args: argparse.Namespace) -> int:
    require_redis_url("the queues are in Redis")
    metrics = cluster_metrics()
    if args.cloudwatch:
        publish_to_cloudwatch(metrics, current().cluster_name)
    if args.json:
        print(json.dumps(metrics))
    else:
        for name, value in metrics.items():
            print(f"{name.replace('_', ' '):<18} {value}")
    return 0


def run_up(args: argparse.Namespace) -> int:
    from engines.home import data_home
    from haechi.local_cluster import ClusterError, up

    try:
        state = up(args.crawlers, args.workers, args.review_port)
    except ClusterError as exc:
        raise SystemExit(f"haechi cluster up: {exc}") from None
    if args.json:
        print(json.dumps({"redis_url": state.redis_url, "database_url": state.database_url,
                          "review_url": state.review_url, "processes": state.processes,
                          "servers_started": sorted(state.servers)}))
        return 0
    started = f" (started here: {', '.join(sorted(state.servers))})" if state.servers else ""
    print(f"The cluster is up{started}: {len(state.processes)} processes, logs in "
          f"{data_home() / 'cluster'}.\n"
          f"Use it from this shell with:\n"
          f"  export REDIS_URL={state.redis_url} DATABASE_URL={state.database_url}\n"
          f"  haechi crawl --cluster https://site.example/\n"
          f"Review app: {state.review_url}   Stop it all: haechi cluster down")
    return 0


def run_down(args: argparse.Namespace) -> int:
    from haechi.local_cluster import down

    state = down()
    if args.json:
        print(json.dumps({"stopped": sorted(state.processes) if state else [],
                          "servers_stopped": sorted(state.servers) if state else []}))
    elif state is None:
        print("No local cluster is up.")
    else:
        print(f"Stopped {len(state.processes)} processes"
              + (f" and {', '.join(sorted(state.servers))}" if state.servers else "") + ".")
    return 0
