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


def test_a_profile_passes_a_gate_the_words_cannot_and_reads_an_api_nothing_links(
        tmp_path: Path) -> None:
    """The gate's only control is an arrow (no word says enter), and the API that lists the
    pictures is linked from nowhere: only the profile knows both."""
    import json
    import os

    from aiohttp import web

    from tests.test_browser import _jpeg, _Server
    from tests.test_crawl import CRAWL_ENV, run_haechi

    async def site(request: web.Request) -> web.StreamResponse:
        through = request.cookies.get("age_ok") == "1"
        if request.path == "/enter" and request.method == "POST":
            answer = web.HTTPFound("/")
            answer.set_cookie("age_ok", "1", path="/")
            raise answer
        if request.path == "/":
            if not through:
                return web.Response(content_type="text/html", text=(
                    "<html><body><h1>Adults only (18+)</h1><form id='age' method='post' "
                    "action='/enter'><button class='go' type='submit'>&rarr;</button>"
                    "</form></body></html>"))
            return web.Response(content_type="text/html", text="<p>Welcome back.</p>")
        if request.path == "/api/photos" and through:
            page = int(request.query.get("page", "0"))
            return web.json_response({"photos": [{"src": f"/img/{page}.jpg"}]})
        if request.path.startswith("/img/") and through:
            return web.Response(body=_jpeg(int(request.path[5])), content_type="image/jpeg")
        raise web.HTTPForbidden()

    server = _Server("127.0.0.1", site)
    try:
        env = {**os.environ, "HAECHI_HOME": str(tmp_path / "home"), **CRAWL_ENV,
               "HAECHI_FETCH_ALLOW": "127.0.0.1/32"}
        env.pop("DATABASE_URL", None)
        env.pop("HAECHI_STORE", None)
        plain = json.loads(run_haechi(env, "crawl", "--json", server.url + "/"))
        assert plain["files"] == 0
        (tmp_path / "home" / "sites.toml").write_text(
            '[sites."127.0.0.1"]\ngate = "form#age button.go"\n'
            f'api = "{server.url}/api/photos?page={{page}}"\napi_pages = 2\n')
        summary = json.loads(run_haechi(env, "crawl", "--json", server.url + "/"))
    finally:
        server.stop()
    assert summary["files"] == 2
    assert summary["per_site"]["127.0.0.1"]["gates"] == {"passed": 1, "failed": 0}
    assert {"/img/1.jpg", "/img/2.jpg"} <= set(server.seen)


def test_a_bad_render_mode_stops_the_crawl_before_it_starts(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "HAECHI_HOME": str(tmp_path), "HAECHI_RENDER": "sometimes"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([str(Path(sys.executable).with_name("haechi")), "crawl",
                             "http://127.0.0.1:1/"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3
    assert "HAECHI_RENDER must be one of auto, always, never" in result.stderr
