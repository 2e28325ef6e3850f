"""Takedown benchmark: time from a match event to its drafted notice, on the embedded default
(SQLite), with 10,000 open cases already in the store.

Each measured event opens a case on a host that already has open cases, so its notice is
redrafted with all of that host's URLs (the realistic, slower path). Prints JSON with
p50/p99/max in milliseconds (target: p99 1,000 ms or less).

    python scripts/bench_takedown.py [--open-cases 10000] [--hosts 500] [--events 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open-cases", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="haechi-bench-takedown-") as tmp:
        os.environ["HAECHI_HOME"] = tmp
        os.environ.pop("DATABASE_URL", None)
        from sqlalchemy import select

        from takedown.cases import CaseStore
        from takedown.schema import cases, notices
        from tests.takedown_helpers import event

        store = CaseStore.open()
        started = time.perf_counter()
        batch = []
        for number in range(args.open_cases):
            batch.append(event(f"host-{number % args.hosts}.example", number,
                               victim=f"V{number % 97}"))
            if len(batch) == 200:
                store.open_cases(batch)
                batch = []
        store.open_cases(batch)
        fill_seconds = time.perf_counter() - started
        assert store.count_open() >= args.open_cases
        delays = []
        for number in range(args.events):
            e = event(f"host-{number % args.hosts}.example", 10_000_000 + number,
                      victim=f"V{number % 97}")
            t0 = time.perf_counter()
            case_id = store.open_cases([e])[0]
            delays.append((time.perf_counter() - t0) * 1000)
            with store.engine.connect() as conn:
                notice_id = conn.execute(select(cases.c.notice_id).where(
                    cases.c.id == case_id)).scalar()
                drafted = conn.execute(select(notices.c.body).where(
                    notices.c.id == notice_id)).scalar()
            assert e.image_url in drafted
        delays.sort()
        print(json.dumps({
            "open_cases": store.count_open(),
            "hosts": args.hosts,
            "events_measured": args.events,
            "prefill_seconds": round(fill_seconds, 1),
            "event_to_drafted_notice_ms": {
                "p50": round(delays[len(delays) // 2], 1),
                "p99": round(delays[min(len(delays) - 1, int(0.99 * len(delays)))], 1),
                "max": round(delays[-1], 1),
            },
            "target_p99_ms": 1000,
        }, indent=2))


if __name__ == "__main__":
    main()
