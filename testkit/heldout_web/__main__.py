"""Run the held-out web: ``python -m testkit.heldout_web --victims DIR --out planted.json``.

Victim pictures come from a folder (one picture per victim, the file's stem is its id),
because the eval script registers exactly those files and the web must plant copies of the
same pictures. Prints one line ``READY <port> <sites>`` once every listener is bound, so a
parent process knows when to start crawling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import time
from pathlib import Path

from PIL import Image

from .server import serve
from .sites import Web


def free_port(host: str = "127.10.0.1") -> int:
    """A port free on the first site address (the others are unused loopback addresses)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def load_victims(folder: Path) -> list[tuple[str, Image.Image]]:
    """(id, picture) for every picture in folder, sorted by id."""
    out = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}:
            with Image.open(path) as im:
                out.append((path.stem, im.convert("RGB")))
    if not out:
        raise SystemExit(f"no victim pictures in {folder}")
    return out


def build(seed: int, sites_per_pattern: int, victims: Path, port: int = 0) -> Web:
    """Generate the whole web (every file in memory) for this seed."""
    return Web(seed, port or free_port(), load_victims(victims), sites_per_pattern)


def main(argv: list[str] | None = None) -> int:
    """Build, write planted.json, serve until killed."""
    ap = argparse.ArgumentParser(prog="python -m testkit.heldout_web")
    ap.add_argument("--victims", type=Path, required=True, help="folder of victim pictures")
    ap.add_argument("--out", type=Path, required=True, help="where to write planted.json")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sites-per-pattern", type=int, default=2)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--build-only", action="store_true", help="write planted.json and exit")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    hw = build(args.seed, args.sites_per_pattern, args.victims, args.port)
    doc = hw.planted()
    doc["build_seconds"] = round(time.monotonic() - t0, 2)
    args.out.write_text(json.dumps(doc, indent=1))
    if args.build_only:
        return 0

    async def run() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(serve(hw, ready))
        await ready.wait()
        print(f"READY {hw.port} {len(hw.sites)}", flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
