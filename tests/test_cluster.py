"""Cluster mode against a real Redis server: the match-event stream and its consumer group,
Celery matcher workers (a killed worker loses no file), bank updates reaching a running
worker, and `haechi config check`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from engines.broker import MATCH_QUEUE, MATCH_TASK, celery_app
from engines.objects import LocalStore, media_key
from matcher.streams import STREAM, RedisStreamSink, StreamConsumer
from takedown.cases import CaseStore
from takedown.consumer import GROUP, consume
from takedown.database import takedown_engine
from testkit.edits import MILD_EDITS
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb.server import free_port
from tests.takedown_helpers import event

HAECHI = str(Path(sys.executable).with_name("haechi"))
REDIS = os.environ.get("HAECHI_TEST_REDIS", "redis://127.0.0.1:6379/11")


@pytest.fixture
def redis_env(monkeypatch, haechi_home):
    client = redis.Redis.from_url(REDIS)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"a Redis server is needed for this test ({REDIS}): {exc}")
    monkeypatch.setenv("REDIS_URL", REDIS)
    monkeypatch.setenv("HAECHI_TASK_VISIBILITY_TIMEOUT", "5")
    yield client
    client.flushdb()


def haechi(*args: str, env: dict | None = None, check: bool = True
           ) -> subprocess.CompletedProcess:
    result = subprocess.run([HAECHI, *args], capture_output=True, text=True, env=env,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


def test_config_check_names_what_is_reachable(haechi_home, monkeypatch) -> None:
    embedded = json.loads(haechi("config", "check", "--json").stdout)
    assert embedded["database"]["ok"] and embedded["store"]["ok"]
    assert embedded["redis"]["ok"] and embedded["redis"]["url"] is None
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    down = haechi("config", "check", "--json", check=False)
    assert down.returncode == 1
    result = json.loads(down.stdout)
    assert not result["redis"]["ok"] and "Connection" in result["redis"]["error"]
    assert result["database"]["ok"]


def test_unacknowledged_events_are_claimed_again_and_handled_once(redis_env) -> None:
    sink = RedisStreamSink(redis_env)
    sink.deliver([event("s.example", n) for n in range(3)])
    redis_env.xadd(STREAM, {"schema": "haechi.match-event/1", "event": "not json"})
    store = CaseStore(takedown_engine())
    dying = StreamConsumer(redis_env, GROUP, "dies-before-ack", claim_idle_ms=200)
    assert len(dying.read(block_ms=100)) == 4  # read, never acknowledged: the consumer dies
    survivor = StreamConsumer(redis_env, GROUP, "survivor", claim_idle_ms=200)
    assert consume(survivor, store, once=True, block_ms=100).entries == 0  # not idle yet
    time.sleep(0.3)
    report = consume(survivor, store, once=True, block_ms=100)
    assert (report.entries, report.cases_opened, report.unreadable) == (4, 3, 1)
    assert redis_env.xpending(STREAM, GROUP)["pending"] == 0
    sink.deliver([event("s.example", 0)])  # the same match again joins its case
    assert consume(survivor, store, once=True, block_ms=100).cases_opened == 0
    assert len(store.list()) == 3


def _start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen([HAECHI, "worker", "--concurrency", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    process.wait(30)


def _matched_count(client: redis.Redis) -> int:
    return len(list(client.scan_iter("haechi:matched:*")))


def _dispatch(store: LocalStore, files: list[tuple[str, bytes]]) -> None:
    app = celery_app()
    for url, data in files:
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        store.put(media_key(sha), data)
        app.send_task(MATCH_TASK, queue=MATCH_QUEUE, args=[{
            "url": url, "page_url": url.rsplit("/", 1)[0] + "/", "site": "w.example",
            "fetched_at": "2026-11-27T09:00:00+00:00", "status": 200,
            "media_type": "image/jpeg", "kind": "image", "sha256": sha, "size": len(data),
            "headers": {}, "server_ip": "127.0.0.1", "store_key": media_key(sha)}])


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return condition()


def test_workers_match_every_file_even_when_one_is_killed(redis_env, haechi_home, tmp_path):
    env = dict(os.environ)
    rng = np.random.default_rng(5)
    victims = {f"V{n}": synthetic_picture(seed=600 + n) for n in range(3)}
    for name, picture in victims.items():
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(encode(picture))
        haechi("register", "--victim", name, str(path), env=env)
    edits = list(MILD_EDITS.values())
    files = [(f"http://w.example/v{n}.jpg",
              encode(edits[n % len(edits)](victims[f"V{n % 3}"], rng).convert("RGB")))
             for n in range(6)]
    # Enough files that the kill lands mid-run: a worker hashes one in about 30 ms.
    files += [(f"http://w.example/u{n}.jpg", encode(synthetic_picture(seed=700 + n)))
              for n in range(120)]
    store = LocalStore(haechi_home / "objects")
    first = _start_worker(env)
    try:
        _dispatch(store, files)
        assert _wait(lambda: _matched_count(redis_env) >= 3, 90), "the worker did not start"
        _stop(first, signal.SIGKILL)  # mid-run: its current task is never acknowledged
        done_before = _matched_count(redis_env)
        assert done_before < len(files)
        second = _start_worker(env)
        try:
            assert _wait(lambda: _matched_count(redis_env) == len(files), 120), (
                f"{_matched_count(redis_env)} of {len(files)} files matched after the kill")
        finally:
            _stop(second)
    finally:
        _stop(first, signal.SIGKILL)
    report = json.loads(haechi("cases", "consume", "--once", env=env).stdout)
    assert report["cases_opened"] == 6
    cases = json.loads(haechi("cases", "list", "--json", env=env).stdout)
    assert sorted(c["image_url"] for c in cases) == sorted(u for u, _ in files[:6])
    assert {c["image_url"]: c["victim"] for c in cases} == {
        f"http://w.example/v{n}.jpg": f"V{n % 3}" for n in range(6)}


def test_a_new_registration_reaches_a_running_worker_within_ten_seconds(redis_env, haechi_home,
                                                                         tmp_path):
    env = dict(os.environ)
    store = LocalStore(haechi_home / "objects")
    haechi("register", "--victim", "V0", str(_write(tmp_path / "v0.jpg", 800)), env=env)
    worker = _start_worker(env)
    try:
        _dispatch(store, [("http://w.example/warm-up.jpg", encode(synthetic_picture(801)))])
        assert _wait(lambda: _matched_count(redis_env) == 1, 90)  # the bank is loaded
        registered = time.monotonic()
        haechi("register", "--victim", "V-new", str(_write(tmp_path / "new.jpg", 802)), env=env)
        picture = encode(synthetic_picture(802))
        attempt = 0
        # Offer the victim's picture once a second at a new URL until a worker matches it.
        while redis_env.xlen(STREAM) == 0 and time.monotonic() - registered < 20:
            _dispatch(store, [(f"http://w.example/new-{attempt}.jpg", picture)])
            attempt += 1
            _wait(lambda: redis_env.xlen(STREAM) > 0, 1)
        delay = time.monotonic() - registered
        assert redis_env.xlen(STREAM) > 0 and delay < 10, f"{delay:.1f} s"
    finally:
        _stop(worker)
    fields = redis_env.xrange(STREAM)[0][1]
    assert json.loads(fields[b"event"])["victim"] == "V-new"


def _assert_every_planted_picture_becomes_a_case(web, client: redis.Redis, env: dict) -> None:
    """Consume until every planted picture is a case (workers on a loaded machine may still
    be matching when the crawl ends; a duplicate event must not pass for a missing one)."""
    planted = {(web.web.image_url(p.site, p), p.victim) for p in web.web.planted()}
    found: set = set()

    def all_cases() -> bool:
        haechi("cases", "consume", "--once", env=env)
        cases = json.loads(haechi("cases", "list", "--json", env=env).stdout)
        found.clear()
        found.update((c["image_url"], c["victim"]) for c in cases)
        return found >= planted

    _wait(all_cases, 90)
    assert found == planted


def _write(path: Path, seed: int) -> Path:
    path.write_bytes(encode(synthetic_picture(seed=seed)))
    return path


def test_two_crawler_nodes_and_two_workers_find_every_planted_picture_once(
        redis_env, haechi_home, tmp_path) -> None:
    from testkit.testweb.model import WebPlan
    from testkit.testweb.server import start_testweb
    from tests.test_crawl import CRAWL_ENV, register_test_victims

    # Every fourth site answers a second late, so the crawl lasts long enough for both nodes.
    plan = WebPlan(sites=12, seed=9, pages=3, images_per_page=2, traps=True, hostile=False,
                   slow_every=4)
    env = {**os.environ, **CRAWL_ENV}
    register_test_victims(env, tmp_path / "victims", plan)
    web = start_testweb(plan)
    nodes, workers = [], []
    try:
        workers = [_start_worker(env) for _ in range(2)]
        haechi("crawl", "--cluster", *[web.web.site_url(i) for i in range(plan.sites)],
               env=env)
        nodes = [subprocess.Popen([HAECHI, "crawler", "--idle-exit", "8", "--json"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for _ in range(2)]
        summaries = [json.loads(node.communicate(timeout=240)[0]) for node in nodes]
        _assert_every_planted_picture_becomes_a_case(web, redis_env, env)
    finally:
        web.stop()
        for process in workers:
            _stop(process)
    # Between them the nodes crawled every site's pages; how they shared the work depends on
    # timing (on a crawl this small one node may take nearly all of it).
    assert sum(s["pages"] for s in summaries) >= plan.sites * plan.pages
    from sqlalchemy import func, select

    from crawler.records import fetched_files
    from engines.db import open_engine

    with open_engine().connect() as conn:
        repeats = conn.execute(select(fetched_files.c.url, func.count()).group_by(
            fetched_files.c.url).having(func.count() > 1)).all()
    assert repeats == []


# Flaky, and possibly a real gap: in about one run in three on a loaded machine (and once in
# a clean CI run) one planted picture of the killed node's sites never becomes a case. The
# suspect is the window between a media request's lease being acknowledged (on download) and
# its file being stored and dispatched: a node killed inside it loses the file. Left visible
# as a non-strict xfail until that is settled (issue 13's closing note).
@pytest.mark.xfail(strict=False, reason="a file may be lost between a lease's acknowledgement "
                   "and its dispatch when the node is killed in between (under investigation)")
def test_a_crawler_node_killed_mid_run_loses_no_site(redis_env, haechi_home, tmp_path) -> None:
    from testkit.testweb.model import WebPlan
    from testkit.testweb.server import start_testweb
    from tests.test_crawl import CRAWL_ENV, register_test_victims

    plan = WebPlan(sites=12, seed=13, pages=4, images_per_page=2, traps=False, hostile=False,
                   slow_every=3)  # every third site answers a second late: work is in flight
    # Leases and claims short enough that the survivor takes over what the killed node held
    # (a claimed site not yet queued waits out its claim) before it idles out.
    env = {**os.environ, **CRAWL_ENV, "HAECHI_SCRAPY_HAECHI_LEASE_SECONDS": "4",
           "HAECHI_SCHEDULE_CLAIM_SECONDS": "4"}
    register_test_victims(env, tmp_path / "victims", plan)
    web = start_testweb(plan)
    workers = [_start_worker(env)]
    try:
        haechi("crawl", "--cluster", *[web.web.site_url(i) for i in range(plan.sites)],
               env=env)
        doomed = subprocess.Popen([HAECHI, "crawler"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        from sqlalchemy import func, select

        from crawler.records import fetched_files
        from engines.db import open_engine

        def fetched() -> int:
            with open_engine().connect() as conn:
                return conn.execute(select(func.count()).select_from(fetched_files)).scalar()

        assert _wait(lambda: fetched() >= 5, 120)
        _stop(doomed, signal.SIGKILL)
        survivor = subprocess.run([HAECHI, "crawler", "--idle-exit", "10", "--json"], env=env,
                                  capture_output=True, text=True, timeout=300)
        assert survivor.returncode == 0, survivor.stderr
        _assert_every_planted_picture_becomes_a_case(web, redis_env, env)
    finally:
        web.stop()
        for process in workers:
            _stop(process)


class OwnRedis:
    """A redis-server of the test's own, persisting every write to its append-only file (as
    `haechi cluster up` runs it), which the test can restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.folder), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        assert _wait(lambda: _pings(client), 20), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: redis-server flushes its file and exits
            self.process.wait(20)
            self.process = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _fetched_rows() -> list[dict]:
    from crawler.records import CrawlRecords

    return CrawlRecords.open().files()


def test_a_redis_restart_mid_crawl_loses_nothing(haechi_home, tmp_path, monkeypatch) -> None:
    from testkit.testweb.model import WebPlan
    from testkit.testweb.server import start_testweb
    from tests.test_crawl import CRAWL_ENV, register_test_victims

    server = OwnRedis(tmp_path)
    server.start()
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("HAECHI_TASK_VISIBILITY_TIMEOUT", "5")
    plan = WebPlan(sites=10, seed=17, pages=4, images_per_page=2, traps=False, hostile=False,
                   slow_every=2)  # half the sites answer a second late: the crawl takes a while
    env = {**os.environ, **CRAWL_ENV}
    register_test_victims(env, tmp_path / "victims", plan)
    web = start_testweb(plan)
    workers = [_start_worker(env)]
    node = None
    try:
        haechi("crawl", "--cluster", *[web.web.site_url(i) for i in range(plan.sites)],
               env=env)
        node = subprocess.Popen([HAECHI, "crawler", "--idle-exit", "15", "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert _wait(lambda: len(_fetched_rows()) >= 8, 120)
        server.stop()  # mid-crawl: every node and worker loses its connection
        time.sleep(3)
        server.start()
        out, err = node.communicate(timeout=300)
        assert node.returncode == 0, err[-3000:]
        client = redis.Redis.from_url(server.url)
        planted = {(web.web.image_url(p.site, p), p.victim) for p in web.web.planted()}
        assert _wait(lambda: client.xlen(STREAM) >= len(planted), 90)
        haechi("cases", "consume", "--once", env=env)
        cases = json.loads(haechi("cases", "list", "--json", env=env).stdout)
        missing = planted - {(c["image_url"], c["victim"]) for c in cases}
        fetched = {r["url"] for r in _fetched_rows()}
        assert not missing, (missing, [u in fetched for u, _ in missing], out, err[-3000:])
        pages = json.loads(out)["pages"]
        assert pages >= plan.sites * plan.pages
    finally:
        web.stop()
        for process in workers:
            _stop(process)
        if node is not None and node.poll() is None:
            node.kill()
        server.stop()


def test_a_very_slow_site_does_not_hold_back_the_others(redis_env, haechi_home, tmp_path):
    from testkit.testweb.model import WebPlan
    from testkit.testweb.server import start_testweb

    # The last of nine sites answers every request three seconds late and has as many pages
    # and pictures as the others.
    plan = WebPlan(sites=9, seed=23, pages=3, images_per_page=3, traps=False, hostile=False,
                   slow_every=9, slow_seconds=3.0)
    env = {**os.environ, "HAECHI_SCRAPY_DOWNLOAD_TIMEOUT": "20"}
    web = start_testweb(plan)
    try:
        haechi("crawl", "--cluster", *[web.web.site_url(i) for i in range(plan.sites)],
               env=env)
        started = time.time()
        node = subprocess.run([HAECHI, "crawler", "--idle-exit", "5", "--json"], env=env,
                              capture_output=True, text=True, timeout=300)
        assert node.returncode == 0, node.stderr[-3000:]
    finally:
        web.stop()
    from crawler.urls import site_of

    slow_site = site_of(web.web.site_url(plan.sites - 1))
    rows = _fetched_rows()
    fast = [r["fetched_at"].timestamp() - started for r in rows if r["site"] != slow_site]
    slow = [r["fetched_at"].timestamp() - started for r in rows if r["site"] == slow_site]
    assert len(fast) >= 8 * plan.pages * plan.images_per_page * 0.9 and slow
    # The fast sites are done in well under half the time the slow site takes.
    print(f"fast sites done at {max(fast):.1f} s, the slow site at {max(slow):.1f} s")
    assert max(fast) < 0.5 * max(slow), (max(fast), max(slow))
