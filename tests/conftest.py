"""Shared fixtures: an isolated HAECHI_HOME per test, the outbound policy opened to the test
web's addresses only, generated pictures, and an emptied Redis database for stream tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engines.fetch import ALLOW_SETTING
from matcher.bank import VictimBank
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb.model import FETCH_ALLOW

PDQ_REFERENCE = Path(__file__).resolve().parent / "data" / "pdq-reference"
# The Redis database the tests may empty: the test command's own server (HAECHI_TEST_REDIS),
# else database 11 of this machine's.
REDIS = os.environ.get("HAECHI_TEST_REDIS", "redis://127.0.0.1:6379/11")


@pytest.fixture(scope="session", autouse=True)
def fetch_allow_testweb() -> Iterator[None]:
    """The test web lives on loopback, which the outbound policy refuses: allow exactly its
    addresses (not 127.0.0.1), in os.environ so every crawl and command a test starts inherits
    it. Session-wide, so module fixtures that crawl at set-up see it too; a test may still
    monkeypatch it for itself."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ALLOW_SETTING, FETCH_ALLOW)
        yield


@pytest.fixture(autouse=True)
def haechi_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "haechi-home"
    monkeypatch.setenv("HAECHI_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return home


@pytest.fixture
def bank(haechi_home: Path) -> VictimBank:
    return VictimBank.open()


@pytest.fixture
def picture_bytes() -> bytes:
    return encode(synthetic_picture(seed=7))


def wallpapers_dir() -> Path | None:
    """The fetched wallpaper photos (scripts/fetch_wallpapers.sh), or None when not fetched."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(os.environ.get("HAECHI_WALLPAPERS") or Path(cache) / "haechi" / "wallpapers")
    if (folder / ".done").exists():
        return folder / "root" / "usr" / "share" / "backgrounds"
    return None


@pytest.fixture
def stream(haechi_home: Path) -> Iterator[redis.Redis]:
    """A client of REDIS, its database emptied before and after the test."""
    client = redis.Redis.from_url(REDIS)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"a Redis server is needed for this test ({REDIS}): {exc}")
    yield client
    client.flushdb()


# How long the test process may take to exit once the session is over. CI once printed the
# summary of a run in which every test passed and then waited until its own time ran out
# (90 minutes): something the tests left behind (a thread, a pool, a child the interpreter
# joins at exit) held the process. Past this grace the stacks of every thread and the
# children still alive are printed, so the culprit is named, and the process exits with the
# session's own status.
EXIT_GRACE = 90.0
_session_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _session_status.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    import faulthandler
    import sys
    import threading

    def watchdog() -> None:
        time.sleep(EXIT_GRACE)
        print(f"\ntests/conftest.py: the test process did not exit {EXIT_GRACE:.0f} s after "
              "the session ended; what still runs:", file=sys.__stderr__, flush=True)
        faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        for child in _children(os.getpid()):
            print(f"  child process {child}", file=sys.__stderr__, flush=True)
        os._exit(_session_status[-1] if _session_status else 1)

    threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()
    # Should even that thread not get the interpreter's lock, faulthandler's own C thread
    # prints the stacks and ends the process a minute later.
    faulthandler.dump_traceback_later(EXIT_GRACE + 60, exit=True, file=sys.__stderr__)


def _children(pid: int) -> list[str]:
    """The process's live descendants as "pid command" lines (Linux /proc)."""
    found: list[str] = []
    for task in Path("/proc").glob("[0-9]*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                command = (task / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace")[:200]
                found.append(f"{task.name} {command}")
                found.extend(_children(int(task.name)))
        except (OSError, IndexError, ValueError):
            continue
    return found
