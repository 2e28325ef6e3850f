"""Site profiles (crawler/profiles.py): read, checked with a sentence naming the site and key,
and turned into the crawl's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.profiles import Profile, ProfileError, download_slots, load_profiles


def _written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profile_file_is_read_by_site(tmp_path: Path) -> None:
    profiles = load_profiles(_written(tmp_path, '''
[sites."Tube.Example"]
render = "always"
start_urls = ["https://tube.example/latest"]
gate = "form#age button.enter"
api = "https://tube.example/api/videos?page={page}"
api_pages = 3
rate = 0.5

[sites."static.example"]
'''))
    tube = profiles["tube.example"]
    assert tube.render == "always" and tube.start_urls == ("https://tube.example/latest",)
    assert tube.api_urls() == [f"https://tube.example/api/videos?page={n}" for n in (1, 2, 3)]
    assert profiles["static.example"] == Profile()
    assert download_slots(profiles) == {"tube.example": {"concurrency": 1, "delay": 2.0}}


def test_no_file_is_no_profile(tmp_path: Path) -> None:
    assert load_profiles(tmp_path / "absent.toml") == {}


@pytest.mark.parametrize(("text", "words"), [
    ('[sites."a.example"]\nrender = "sometimes"', "render must be one of"),
    ('[sites."a.example"]\nrendr = "always"', "unknown key(s) rendr"),
    ('[sites."a.example"]\napi = "https://a.example/api"', "{page}"),
    ('[sites."a.example"]\nstart_urls = ["file:///etc/passwd"]', "http(s) URLs"),
    ('[sites."a.example"]\nrate = -1', "positive number"),
    ('[sites."a.example"]\ngate = "form >>> button"', "not a CSS selector"),
    ('[sites."a.example"]\napi_pages = 0\napi = "http://a.example/?p={page}"', "api_pages"),
    ("render = 'always'", "[sites."),
    ("[sites.\"a.example\"\n", "not a TOML file"),
])
def test_a_mistake_is_a_sentence_naming_the_site_and_key(tmp_path: Path, text: str,
                                                          words: str) -> None:
    with pytest.raises(ProfileError) as raised:
        load_profiles(_written(tmp_path, text))
    assert words in str(raised.value)
    assert "a.example" in str(raised.value) or "sites" in str(raised.value) \
        or "TOML" in str(raised.value)
