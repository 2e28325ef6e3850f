"""Shared fixtures: an isolated HAECHI_HOME per test, the outbound policy opened to the test
web's addresses only, generated pictures, and an emptied Redis database for stream tests."""

from __future__ import annotations

import os
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
