"""Operating the cluster: queue-depth metrics (and CloudWatch, through moto's server), and
`haechi cluster up` / `down` on one machine."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from crawler.schedule import SiteSchedule
from engines.broker import MATCH_QUEUE, celery_app
from tests.test_cluster import haechi, redis_env  # noqa: F401 (fixture)
from tests.test_store import s3_endpoint, s3_env  # noqa: F401 (fixtures)


def test_metrics_say_how_much_work_waits_and_reach_cloudwatch(redis_env, s3_env) -> None:  # noqa: F811
    schedule = SiteSchedule(redis_env)
    for n in range(3):
        schedule.add(f"s{n}.example", f"http://s{n}.example/")
    app = celery_app()
    for n in range(2):
        app.send_task("matcher.tasks.match_stored_file", args=[{"n": n}], queue=MATCH_QUEUE)
    env = {**os.environ, "HAECHI_CLUSTER_NAME": "test-cluster"}
    metrics = json.loads(haechi("cluster", "metrics", "--json", "--cloudwatch", env=env).stdout)
    assert metrics["sites_due"] == 3 and metrics["files_queued"] == 2
    assert metrics["events_pending"] == 0 and metrics["requests_leased"] == 0
    assert metrics["events_dead"] == 0
    import boto3

    listed = boto3.client("cloudwatch").list_metrics(Namespace="Haechi")["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert {"SitesDue", "FilesQueued", "EventsPending", "EventsDead"} <= names
    assert all(m["Dimensions"] == [{"Name": "Cluster", "Value": "test-cluster"}]
               for m in listed)
    text = haechi("cluster", "metrics", env=env).stdout
    assert "sites due" in text and "files queued" in text


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_cluster_up_starts_its_own_servers_finds_every_picture_and_down_stops_all(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No Redis or PostgreSQL on the ports it looks at: `up` starts both (PostgreSQL made with
    initdb), the services crawl, match and open cases in PostgreSQL, and `down` stops it all."""
    from haechi.local_cluster import postgres_dir
    from testkit.testweb.model import WebPlan
    from testkit.testweb.server import free_port, start_testweb
    from tests.test_crawl import CRAWL_ENV, register_test_victims

    home = Path(tempfile.mkdtemp(prefix="haechi-cluster-up-"))
    monkeypatch.setenv("HAECHI_HOME", str(home))
    redis_port, postgres_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(CRAWL_ENV, HAECHI_HOME=str(home), HAECHI_CLUSTER_REDIS_PORT=str(redis_port),
               HAECHI_CLUSTER_POSTGRES_PORT=str(postgres_port))
    plan = WebPlan(sites=4, seed=21, pages=2, images_per_page=2, traps=False, hostile=False)
    web = start_testweb(plan)
    try:
        state = json.loads(haechi("cluster", "up", "--json", "--review-port",
                                  str(free_port()), env=env).stdout)
        assert state["servers_started"] == ["postgres", "redis"]
        assert state["redis_url"] == f"redis://127.0.0.1:{redis_port}/0"
        assert f":{postgres_port}/" in state["database_url"]
        cluster_env = {**env, "REDIS_URL": state["redis_url"],
                       "DATABASE_URL": state["database_url"]}
        again = haechi("cluster", "up", env=env, check=False)
        assert again.returncode != 0 and "already up" in again.stderr
        register_test_victims(cluster_env, home / "victims", plan)
        haechi("crawl", "--cluster", *[web.web.site_url(i) for i in range(plan.sites)],
               env=cluster_env)
        planted = {(web.web.image_url(p.site, p), p.victim) for p in web.web.planted()}

        def cases() -> set[tuple[str, str]]:
            listed = json.loads(haechi("cases", "list", "--json", env=cluster_env).stdout)
            return {(c["image_url"], c["victim"]) for c in listed}

        assert _wait(lambda: cases() == planted, 120), (cases(), planted)
    finally:
        web.stop()
        stopped = json.loads(haechi("cluster", "down", "--json", env=env).stdout)
    assert stopped["servers_stopped"] == ["postgres", "redis"]
    assert {"consumer", "review", "worker-0", "crawler-0"} <= set(stopped["stopped"])
    assert not _answers(redis_port) and not _answers(postgres_port)
    assert json.loads(haechi("cluster", "down", "--json", env=env).stdout)["stopped"] == []
    shutil.rmtree(postgres_dir(), ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
