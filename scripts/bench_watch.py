"""The room watcher (`haechi chats watch`): how fast its scoring path keeps up with a busy room,
and how soon an alert follows the message that decides it, against a real IRC server.

Scoring (one core, OMP_NUM_THREADS=1, in process): the labelled suite's conversations (both
parts) played into one room four at a time, interleaved; they are short, so the window
(grooming.watch.WINDOW_MESSAGES) holds about thirty speakers: a crowded room. Measured two
ways: one message per scoring pass (the cost of a pass with a full window), and messages
arriving at 200 and 400 a second, each pass scoring what arrived during the one before (as
the watcher does: the lines of one network read are scored together), with the lag from a
line's arrival to the end of the pass that scored it.

Delay: `haechi chats watch --json --no-alerts` as a subprocess on the IRC server at
HAECHI_TEST_IRC (host:port), else on an ngIRCd of its own (scripts/test_services.py); plain
IRC clients play tests/test_grooming_watch.py's approach in a new room per run, and the time
from sending the deciding message to reading the alert line is taken; the median of RUNS.

    python scripts/bench_watch.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import asyncio
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grooming import classifier  # noqa: E402
from grooming.evaluation import to_conversation  # noqa: E402
from grooming.watch import WINDOW_MESSAGES, LiveRoom  # noqa: E402
from scripts.test_services import start_ngircd, stop_ngircd  # noqa: E402
from testkit.testweb.server import free_port  # noqa: E402
from tests.grooming_suite.build import load  # noqa: E402
from tests.test_grooming_watch import GROOMING, Client  # noqa: E402

RUNS = 5
AT_ONCE = 4  # conversations interleaved in the room
ONE_PER_READ = 600  # messages for the cost of one pass (enough to fill the window thrice)
RATES = (200.0, 400.0)  # messages a second arriving in the room


def room_stream() -> list[tuple[str, str, str | None]]:
    """The suite's conversations, AT_ONCE at a time, line by line in turn (speakers kept
    apart per conversation)."""
    conversations = [to_conversation(c) for c in load("train") + load("eval")]
    lines: list[tuple[str, str, str | None]] = []
    for start in range(0, len(conversations), AT_ONCE):
        group = conversations[start:start + AT_ONCE]
        for i in range(max(len(c.messages) for c in group)):
            for n, conversation in enumerate(group):
                if i < len(conversation.messages):
                    m = conversation.messages[i]
                    lines.append((f"{start + n}-{m.speaker}", m.text, None))
    return lines


CACHE_EVERY = 25  # messages between clearings of the embedding cache (see _add)


def _room() -> LiveRoom:
    classifier._cache.clear()
    classifier.embedded = 0
    return LiveRoom("C-bench", classifier.StageClassifier.load())


def _add(room: LiveRoom, batch: list, before: int) -> int:
    # Real rooms repeat few lines: the suite does, so the cache is kept from doing the work.
    if before // CACHE_EVERY != (before + len(batch)) // CACHE_EVERY:
        classifier._cache.clear()
    return len(room.add(batch))


def one_per_read(lines: list[tuple[str, str, str | None]]) -> dict[str, float]:
    """Every message scored on its own: what one scoring pass costs with a full window."""
    room = _room()
    passes = []
    for n, line in enumerate(lines):
        started = time.perf_counter()
        _add(room, [line], n)
        passes.append(time.perf_counter() - started)
    full = passes[2 * WINDOW_MESSAGES:]  # once the window has been full for a while
    return {"messages": len(lines), "messages_per_second": round(len(lines) / sum(passes), 1),
            "ms_per_pass_full_window": round(1000 * statistics.mean(full), 1),
            "pairs_in_window_at_end": len(room.last_pairs),
            "speakers_in_window_at_end": len({m.speaker for m in room.messages})}


def at_rate(lines: list[tuple[str, str, str | None]], rate: float) -> dict[str, float]:
    """Messages arriving at `rate` a second, scored as the watcher does: each pass takes
    every line that arrived during the one before (one network read). Idle time is skipped;
    the lag is from a line's arrival to the end of the pass that scored it."""
    room = _room()
    busy = 0.0  # the clock: processing time, plus the idle time skipped
    lags, batches, alerts, i = [], [], 0, 0
    while i < len(lines):
        busy = max(busy, i / rate)  # idle until line i arrives
        arrived = min(len(lines), int(busy * rate) + 1)
        started = time.perf_counter()
        alerts += _add(room, lines[i:arrived], i)
        busy += time.perf_counter() - started
        lags.append(busy - i / rate)  # the oldest line of the pass waited longest
        batches.append(arrived - i)
        i = arrived
    return {"arrival_per_second": rate, "passes": len(batches),
            "mean_lines_per_pass": round(statistics.mean(batches), 1),
            "lag_median_ms": round(1000 * statistics.median(lags), 1),
            "lag_max_ms": round(1000 * max(lags), 1), "alerts": alerts,
            "kept_up": max(lags) < 2.0, "embedded_share": round(
                classifier.embedded / len(lines), 3)}


async def alert_delays(host: str, port: int) -> list[float]:
    tag = f"{random.randrange(10**6):06d}"
    channels = [f"#bench{tag}{run}" for run in range(RUNS)]
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "haechi.cli", "chats", "watch", "--json", "--no-alerts",
        *(f"irc://{host}:{port}/{c}" for c in channels), cwd=ROOT,
        env={**os.environ, "HAECHI_HOME": tempfile.mkdtemp(prefix="haechi-bench-watch-")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    joined = 0
    while joined < RUNS:
        line = await asyncio.wait_for(watcher.stderr.readline(), 60)
        if not line:
            raise RuntimeError("the watcher stopped before joining its rooms")
        joined += b"joined" in line
    out: list[tuple[float, str]] = []

    async def read() -> None:
        while line := await watcher.stdout.readline():
            out.append((time.monotonic(), line.decode()))

    reader = asyncio.create_task(read())
    delays = []
    try:
        for run, channel in enumerate(channels):
            nicks = {role: f"{role[:2]}{tag[:4]}{run}" for role in ("groomer", "kid",
                                                                    "bystander")}
            clients = {role: await Client(nick).connect(host, port, channel)
                       for role, nick in nicks.items()}
            sent = []
            for role, text in GROOMING:
                sent.append(await clients[role].say(channel, text.format(kid=nicks["kid"])))
                await asyncio.sleep(0.25)
            deadline = time.monotonic() + 5
            while len(out) <= run and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if len(out) > run:
                at, line = out[run]
                delays.append(at - sent[json.loads(line)["first_alert_message"]])
            for client in clients.values():
                await client.close()
    finally:
        watcher.send_signal(signal.SIGTERM)
        await asyncio.wait_for(watcher.wait(), 30)
        await reader
    return delays


def main() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for the scoring
    lines = room_stream()
    single = one_per_read(lines[:ONE_PER_READ])
    rates = [at_rate(lines, rate) for rate in RATES]
    os.sched_setaffinity(0, os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    folder = None
    address = os.environ.get("HAECHI_TEST_IRC")
    if address:
        host, _, port_text = address.rpartition(":")
        port = int(port_text)
    else:
        folder = Path(tempfile.mkdtemp(prefix="haechi-bench-irc-"))
        host, port = "127.0.0.1", free_port()
        start_ngircd(port, folder)
    try:
        delays = asyncio.run(alert_delays(host, port))
    finally:
        if folder is not None:
            stop_ngircd(folder)
    print(json.dumps({
        "room_messages": len(lines), "window_messages": WINDOW_MESSAGES,
        "scoring_one_message_per_pass": single, "scoring_at_arrival_rates": rates,
        "alert_delay_runs": len(delays),
        "alert_delay_median_seconds": round(statistics.median(delays), 4) if delays else None,
        "alert_delay_max_seconds": round(max(delays), 4) if delays else None,
        "irc_server": "HAECHI_TEST_IRC" if address else "ngIRCd started by the benchmark",
    }, indent=2))


if __name__ == "__main__":
    main()
