"""Cluster benchmark: re-scan latency, and matcher worker throughput with 1 and 2 processes.

Re-scan: one new victim against the seen index.

A victim registers with one picture: its registered PDQ codes plus its eight orientations
(about 30 codes) are searched among N seen hashes (random 256-bit codes standing in for
crawled files, with 20 near copies planted). Prints JSON: seconds to build the index (once per
process, then caught up incrementally) and the search time, median of 20 victims, at each N.

Workers: FILES generated pictures (320x240 JPEG) are stored and sent as match tasks to a
`haechi worker` with --concurrency 1, then 2 (same files, hash cache cleared), on the Redis at
REDIS_URL (default redis://127.0.0.1:6379/12, flushed); files per second and the ratio
(target 1.8x or more on this 2-core machine).

Registration to every worker: two `haechi worker` processes match a steady trickle of files
(10 a second); a new victim is registered ROUNDS times, and each time the seconds until every
worker process has taken the new rows into its index are measured (workers report where they
stand in Redis after each refresh; target under 10 s).

Duplicate filter: URLS request fingerprints go into scrapy-redis's own filter (a Redis set of
40-character hex digests) and into Haechi's per-cycle Bloom filter; Redis's used_memory before
and after, per URL, and the filter's bitmaps computed at 100M URLs.

    python scripts/bench_cluster.py [--sizes 1000000,10000000] [--files 400] [--rounds 5]
                                    [--urls 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matcher.index import BinaryHashIndex  # noqa: E402

CODES_PER_VICTIM = 32
VICTIMS = 20


def near(code: np.ndarray, flips: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(code)
    bits[rng.choice(256, flips, replace=False)] ^= 1
    return np.packbits(bits)


def bench_workers(files: int) -> dict:
    import hashlib
    import os
    import signal
    import subprocess
    import tempfile

    import redis

    from engines.broker import MATCH_QUEUE, MATCH_TASK, celery_app
    from engines.objects import LocalStore, media_key
    from testkit.testweb.model import unrelated_image

    url = os.environ.get("HAECHI_BENCH_REDIS", "redis://127.0.0.1:6379/12")
    client = redis.Redis.from_url(url)
    haechi = str(Path(sys.executable).with_name("haechi"))
    result = {"files": files}
    with tempfile.TemporaryDirectory(prefix="haechi-bench-cluster-") as home:
        os.environ.update(HAECHI_HOME=home, REDIS_URL=url)
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("HAECHI_STORE", None)
        store = LocalStore(Path(home) / "objects")
        records = []
        for n in range(files):
            data = unrelated_image(3, n, 0)
            sha = hashlib.sha256(data).hexdigest()
            store.put(media_key(sha), data)
            records.append({"url": f"http://b.example/{n}.jpg", "page_url": "http://b.example/",
                            "site": "b.example", "fetched_at": "2026-11-27T00:00:00+00:00",
                            "status": 200, "media_type": "image/jpeg", "kind": "image",
                            "sha256": sha, "size": len(data), "headers": {},
                            "server_ip": "127.0.0.1", "store_key": media_key(sha)})
        for concurrency in (1, 2):
            client.flushdb()
            worker = subprocess.Popen([haechi, "worker", "--concurrency", str(concurrency)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
            app = celery_app()
            # Warm up: the first task in each process loads the bank and compiles numba code.
            for n in range(concurrency * 2):
                app.send_task(MATCH_TASK, queue=MATCH_QUEUE, args=[{
                    **records[0], "url": f"http://warm.example/{n}.jpg"}])
            while len(list(client.scan_iter("haechi:matched:*"))) < concurrency * 2:
                time.sleep(0.1)
            client.delete(*client.keys("haechi:hashes:*"))
            started = time.perf_counter()
            for record in records:
                app.send_task(MATCH_TASK, queue=MATCH_QUEUE, args=[record])
            while len(list(client.scan_iter("haechi:matched:*"))) < files + concurrency * 2:
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
            result[f"files_per_s_{concurrency}_worker_process"] = round(files / seconds, 1)
        client.flushdb()
    result["ratio_2_vs_1"] = round(result["files_per_s_2_worker_process"]
                                   / result["files_per_s_1_worker_process"], 2)
    result["target_ratio"] = 1.8
    return result


def _record(store, data: bytes, url: str) -> dict:
    import hashlib

    from engines.objects import media_key

    sha = hashlib.sha256(data).hexdigest()
    store.put(media_key(sha), data)
    return {"url": url, "page_url": url.rsplit("/", 1)[0] + "/", "site": "b.example",
            "fetched_at": "2026-11-27T00:00:00+00:00", "status": 200,
            "media_type": "image/jpeg", "kind": "image", "sha256": sha, "size": len(data),
            "headers": {}, "server_ip": "127.0.0.1", "store_key": media_key(sha)}


def bench_registration(rounds: int, workers: int = 2) -> dict:
    import os
    import signal
    import subprocess
    import tempfile
    import threading

    import redis

    from engines.broker import MATCH_QUEUE, MATCH_TASK, celery_app
    from engines.objects import LocalStore
    from matcher.bank import VictimBank
    from matcher.hasher import ImageHasher
    from matcher.tasks import BANK_SYNC_KEY
    from testkit.synthetic import encode, synthetic_picture
    from testkit.testweb.model import unrelated_image

    url = os.environ.get("HAECHI_BENCH_REDIS", "redis://127.0.0.1:6379/12")
    client = redis.Redis.from_url(url)
    client.flushdb()
    haechi = str(Path(sys.executable).with_name("haechi"))
    delays = []
    with tempfile.TemporaryDirectory(prefix="haechi-bench-registration-") as home:
        os.environ.update(HAECHI_HOME=home, REDIS_URL=url)
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("HAECHI_STORE", None)
        store = LocalStore(Path(home) / "objects")
        bank = VictimBank.open()
        hasher = ImageHasher()
        first = hasher.registration_hashes(encode(synthetic_picture(seed=900)))
        bank.add("V-first", first, "bench")
        files = [_record(store, unrelated_image(5, n, 0), f"http://b.example/{n}.jpg")
                 for n in range(50)]
        processes = [subprocess.Popen([haechi, "worker", "--concurrency", "1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True) for _ in range(workers)]
        stop = threading.Event()

        def trickle() -> None:
            app = celery_app()
            n = 0
            while not stop.is_set():
                app.send_task(MATCH_TASK, queue=MATCH_QUEUE,
                              args=[{**files[n % len(files)], "url": f"http://b.example/t{n}"}])
                n += 1
                stop.wait(0.1)

        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()

        def standing() -> list[int]:
            return [int(v.split()[0]) for v in client.hgetall(BANK_SYNC_KEY).values()]

        try:
            newest = bank.newest_row()
            while len(standing()) < workers or min(standing()) < newest:
                time.sleep(0.1)  # every worker has loaded the bank
            for r in range(rounds):
                bank.add(f"V-new-{r}", hasher.registration_hashes(encode(
                    synthetic_picture(seed=910 + r))), "bench")
                registered = time.perf_counter()
                newest = bank.newest_row()
                while min(standing()) < newest:
                    time.sleep(0.05)
                delays.append(time.perf_counter() - registered)
                time.sleep(1.3 * r % 3)  # register at different points of the refresh cycle
        finally:
            stop.set()
            feeder.join(5)
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
        client.flushdb()
    return {"worker_processes": workers, "rounds": rounds,
            "seconds_to_every_worker": {"median": round(float(np.median(delays)), 2),
                                        "max": round(max(delays), 2)},
            "target_s": 10.0}


def bench_dupefilter(urls: int) -> dict:
    import hashlib
    import os

    import redis

    from crawler.redis_dupefilter import CycleBloomDupeFilter, layer_bytes

    client = redis.Redis.from_url(os.environ.get("HAECHI_BENCH_REDIS",
                                                 "redis://127.0.0.1:6379/12"))
    client.flushdb()
    fingerprints = [hashlib.sha1(f"http://site.example/page/{n}".encode()).hexdigest()
                    for n in range(urls)]
    result: dict = {"urls": urls}

    def used() -> int:
        return int(client.info("memory")["used_memory"])

    before = used()
    for start in range(0, urls, 10_000):
        client.sadd("bench:scrapy-redis-set", *fingerprints[start:start + 10_000])
    result["scrapy_redis_set_bytes_per_url"] = round((used() - before) / urls, 1)
    client.flushdb()

    dupes = CycleBloomDupeFilter(client)
    before = used()
    started = time.perf_counter()
    new = 0
    for start in range(0, urls, 2_000):
        with client.pipeline(transaction=False) as pipe:
            for n, fingerprint in enumerate(fingerprints[start:start + 2_000], start):
                digest = hashlib.sha256(f"1.0\n{fingerprint}".encode()).digest()
                dupes._script(keys=[dupes.filter_key("1.0")], client=pipe, args=[
                    int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:8], "big") | 1,
                    dupes.first_layer, dupes.first_error, 86400, 2, 0.8, f"t{n}"])
            new += sum(pipe.execute())
    seconds = time.perf_counter() - started
    # What stays: the filter's bitmaps and its counts (MEMORY USAGE of its keys). The call
    # tokens of URLs found new live two minutes only; their cost is counted apart.
    base = dupes.filter_key("1.0")
    kept = sum(client.memory_usage(k, samples=0) or 0
               for k in [base, *client.scan_iter(base + ":[0-9]*")])
    result["bloom_bytes_per_url"] = round(kept / urls, 2)
    result["call_token_bytes_per_url_for_2_min"] = round((used() - before - kept) / urls, 1)
    result["bloom_urls_taken_as_new"] = new
    result["bloom_false_positive_rate"] = round(1 - new / urls, 5)
    result["bloom_checks_per_s"] = round(urls / seconds)
    result["bloom_bytes_per_url_at_100M"] = round(layer_bytes(100_000_000) / 100_000_000, 2)
    result["bloom_mb_at_100M"] = round(layer_bytes(100_000_000) / 2**20)
    client.flushdb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--urls", type=int, default=1_000_000)
    args = parser.parse_args()
    dupefilter = bench_dupefilter(args.urls) if args.urls else None
    workers = bench_workers(args.files) if args.files else None
    registration = bench_registration(args.rounds) if args.rounds else None
    rng = np.random.default_rng(1)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        seen = rng.integers(0, 256, (size, 32), dtype=np.uint8)
        victims = rng.integers(0, 256, (VICTIMS, CODES_PER_VICTIM, 32), dtype=np.uint8)
        for v in range(VICTIMS):  # one earlier copy of each victim among the seen files
            seen[v * 997] = near(victims[v, 0], 12, rng)
        started = time.perf_counter()
        index = BinaryHashIndex(256)
        index.add(np.arange(size, dtype=np.int64), seen)
        build = time.perf_counter() - started
        timings, found = [], 0
        for v in range(VICTIMS):
            t0 = time.perf_counter()
            hits = index.search(victims[v], 31)
            timings.append(time.perf_counter() - t0)
            found += int(v * 997 in set(hits.ids.tolist()))
        results.append({
            "seen_hashes": size,
            "index_build_s": round(build, 1),
            "rescan_one_victim_s": {"median": round(float(np.median(timings)), 4),
                                    "max": round(max(timings), 4)},
            "planted_copies_found": f"{found}/{VICTIMS}",
        })
        del index, seen
    print(json.dumps({"workers": workers, "registration": registration,
                      "dupefilter": dupefilter, "rescan": {
        "codes_per_victim": CODES_PER_VICTIM, "target_s_at_10M": 1.0, "results": results}},
        indent=2))


if __name__ == "__main__":
    main()
