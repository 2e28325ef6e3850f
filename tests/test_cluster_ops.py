"""Operating the cluster: queue-depth metrics (and CloudWatch, through moto's server), and
`haechi cluster up` / `down` on one machine."""

from __future__ import annotations

import json
import os

from crawler.cluster import MATCH_QUEUE, celery_app
from crawler.schedule import SiteSchedule
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
    import boto3

    listed = boto3.client("cloudwatch").list_metrics(Namespace="Haechi")["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert {"SitesDue", "FilesQueued", "EventsPending"} <= names
    assert all(m["Dimensions"] == [{"Name": "Cluster", "Value": "test-cluster"}]
               for m in listed)
    text = haechi("cluster", "metrics", env=env).stdout
    assert "sites due" in text and "files queued" in text
