"""The cluster's broker: Redis clients that ride out a restart, and the Lua scripts run on it.

REDIS_URL switches cluster mode on; unset, Haechi runs embedded and nothing here is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engines.settings import current

if TYPE_CHECKING:
    from celery import Celery
    from redis import Redis


def redis_url() -> str | None:
    """REDIS_URL when Haechi runs as a cluster; None on the embedded default."""
    return current().redis_url


# A Redis restart or failover (ElastiCache promotes a replica in well under a minute) must not
# stop a crawler node, a worker or a consumer: every command is retried on a lost connection
# with a backoff doubling from 0.5 s to REDIS_RETRY_CAP_SECONDS, REDIS_RETRIES times: about 70 s
# in all before a command fails.
REDIS_RETRIES = 12
REDIS_RETRY_CAP_SECONDS = 8.0
# A retried command may have run before its reply was lost; Haechi's Lua scripts remember a
# call token this long (longer than the ~80 s a client keeps retrying) to answer the repeat.
REDIS_CALL_TOKEN_SECONDS = 120


def redis_params() -> dict[str, Any]:
    """Keyword arguments of every Redis client Haechi makes (scrapy-redis's REDIS_PARAMS too)."""
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError, TimeoutError
    from redis.retry import Retry

    return {"retry": Retry(ExponentialBackoff(cap=REDIS_RETRY_CAP_SECONDS, base=0.25),
                           REDIS_RETRIES),
            "retry_on_error": [ConnectionError, TimeoutError],
            "health_check_interval": 30}


def redis_script(client: Redis, source: str) -> Any:
    """Register a Lua script whose source names TOKEN_SECONDS (how long it remembers a call
    token); see REDIS_CALL_TOKEN_SECONDS."""
    return client.register_script(source.replace("TOKEN_SECONDS", str(REDIS_CALL_TOKEN_SECONDS)))


def redis_client(url: str | None = None) -> Redis:
    """A client of the cluster's Redis (REDIS_URL unless `url`), riding out restarts."""
    from redis import Redis

    url = url or redis_url()
    if not url:
        raise ValueError("REDIS_URL is not set: cluster mode needs a Redis server")
    return Redis.from_url(url, **redis_params())


# The stream of match events (matcher/streams.py writes it, the takedown consumer reads it) and
# where an event no consumer can handle goes instead of holding the group up.
MATCH_EVENTS_STREAM = "haechi:match-events"
MATCH_EVENTS_DEAD_LETTERS = f"{MATCH_EVENTS_STREAM}:dead"

# The Celery task a crawler node sends for each stored file, by name: the crawler does not import
# the matcher that defines it (data flows one way).
MATCH_TASK = "matcher.tasks.match_stored_file"
MATCH_QUEUE = "haechi.match"


def celery_app(name: str = "haechi") -> Celery:
    """The Celery app both sides share the configuration of (broker: REDIS_URL)."""
    from celery import Celery

    app = Celery(name)
    app.conf.update(
        broker_url=redis_url() or "redis://127.0.0.1:6379/0",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=MATCH_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        # Seconds before a task taken by a worker that died is handed to another.
        broker_transport_options={"visibility_timeout": current().task_visibility_timeout},
        broker_connection_retry_on_startup=True,
        # A crawler node keeps a stored file's task through a Redis restart or failover
        # (about a minute of retries) instead of dropping it.
        task_publish_retry_policy={"max_retries": 40, "interval_start": 0,
                                   "interval_step": 0.5, "interval_max": 2},
        task_ignore_result=True,
    )
    return app
