"""The test command's own Redis and PostgreSQL: started on free ports in a folder of their own,
so the tests never touch (or depend on) a server that already runs on this machine.

`python scripts/test_services.py start FOLDER` starts both and prints the shell lines that
point the tests at them (HAECHI_TEST_REDIS, HAECHI_TEST_POSTGRES); `stop FOLDER` stops them.
The servers come from haechi.local_cluster, the same code `haechi cluster up` uses.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # testkit/ is not installed: it is read from the checkout

from haechi.local_cluster import (  # noqa: E402
    ClusterError,
    start_postgres,
    start_redis,
    stop_postgres,
    stop_redis,
)
from testkit.testweb.server import free_port  # noqa: E402


def start(folder: Path) -> dict[str, str]:
    redis_port, postgres_port = free_port(), free_port()
    start_redis(redis_port, folder / "redis", persist=False)
    start_postgres(postgres_port, folder / "postgres")
    (folder / "ports.json").write_text(json.dumps({"redis": redis_port,
                                                   "postgres": postgres_port}))
    return {"HAECHI_TEST_REDIS": f"redis://127.0.0.1:{redis_port}/11",
            "HAECHI_TEST_POSTGRES":
                f"postgresql+psycopg://postgres@127.0.0.1:{postgres_port}/postgres"}


def stop(folder: Path) -> None:
    if (folder / "redis").exists():
        stop_redis(folder / "redis")
    if (folder / "postgres" / "PG_VERSION").exists():
        stop_postgres(folder / "postgres")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    try:
        if args.action == "start":
            for name, value in start(args.folder).items():
                print(f"export {name}={shlex.quote(value)}")
        else:
            stop(args.folder)
    except ClusterError as exc:
        print(f"scripts/test: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
