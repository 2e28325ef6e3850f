"""Shared fixtures: an isolated HAECHI_HOME per test and generated pictures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from haechi.synthetic import encode, synthetic_picture
from matcher.bank import VictimBank

PDQ_REFERENCE = Path(__file__).resolve().parent / "data" / "pdq-reference"


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
