"""The ways today's sites deliver a picture, each on the project's own test web, crawled end to
end (issue 14): a planted picture becomes a case of its victim on its site.

Every pattern the crawler does not follow yet is marked as an expected failure, strictly: the
day the crawler handles one, its test passes, strict xfail turns that into a failure, and the
mark must come off. The list of marks is the list of what is still missing.

Below the crawl, tests that do not crawl check that the test web serves what each pattern
claims (status codes, formats, frames, where the planted URL is and is not), and, where a
pattern is script-driven, that a real browser reaches the planted picture through the scripts.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image, ImageSequence

from testkit.testweb.model import (
    IMAGE_SIZE,
    MODERN_MARKUPS,
    WebPlan,
    planted_picture,
)
from testkit.testweb.server import RunningWeb, start_testweb
from tests.test_crawl import CRAWL_ENV, CRAWL_TIMEOUT, register_test_victims, run_haechi

if TYPE_CHECKING:
    from testkit.testweb.model import Planted, TestWeb

PLAN = WebPlan(sites=len(MODERN_MARKUPS), seed=19, victims=3, pages=2, images_per_page=2,
               traps=False, hostile=False, markups=",".join(MODERN_MARKUPS))
# What the crawler does not do yet, and so why each pattern is expected to fail (a pattern
# added to MODERN_MARKUPS before the crawler learns it goes here with its reason): nothing now.
NOT_YET: dict[str, str] = {}


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("modern-home")
    # No slow traps here: a timeout as a crawl would set it, so that a loaded machine's slow
    # stream packaging (seconds per variant, the first time) is no failure.
    env = {**os.environ, "HAECHI_HOME": str(home), **CRAWL_ENV,
           "HAECHI_SCRAPY_DOWNLOAD_TIMEOUT": "30"}
    env.pop("DATABASE_URL", None)
    env.pop("HAECHI_STORE", None)
    register_test_victims(env, home / "victims", PLAN)
    web = start_testweb(PLAN)
    try:
        urls = [web.web.site_url(i) for i in range(PLAN.sites)]
        summary = json.loads(run_haechi(env, "crawl", "--json", *urls, timeout=CRAWL_TIMEOUT))
        cases = json.loads(run_haechi(env, "cases", "list", "--json"))
    finally:
        web.stop()
    return {"web": web.web, "summary": summary, "cases": cases}


@pytest.mark.parametrize("markup", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[m])) if m in NOT_YET
    else m for m in MODERN_MARKUPS])
def test_the_planted_picture_becomes_a_case(crawl: dict, markup: str) -> None:
    web = crawl["web"]
    [planted] = [p for p in web.planted() if p.markup == markup]
    site = web.site_url(planted.site).split("//", 1)[1].split(":", 1)[0]
    assert (site, planted.victim) in {(case["site"], case["victim"]) for case in crawl["cases"]}


def test_no_case_names_a_picture_that_was_not_planted(crawl: dict) -> None:
    planted = {(p.site, p.victim) for p in crawl["web"].planted()}
    web = crawl["web"]
    sites = {web.site_url(p.site).split("//", 1)[1].split(":", 1)[0]: p for p in web.planted()}
    assert all(case["site"] in sites and (sites[case["site"]].site, case["victim"]) in planted
               for case in crawl["cases"])


# --- what the test web serves (no crawl) ---------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[RunningWeb]:
    web = start_testweb(PLAN)
    try:
        yield web
    finally:
        web.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one GET, redirects not followed."""
    try:
        with _OPENER.open(urllib.request.Request(url, headers=headers), timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def planted_of(web: TestWeb, markup: str) -> Planted:
    [planted] = [p for p in web.planted() if p.markup == markup]
    return planted


def gallery(web: TestWeb, planted: Planted) -> str:
    """The address of the gallery page that shows a site's planted picture (its last)."""
    return web.site_url(planted.site) + f"gallery?page={PLAN.pages}"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: bytes, name: str) -> list[dict[str, str | None]]:
    parser = _Tags()
    parser.feed(html.decode("utf-8", "replace"))
    return [attrs for tag, attrs in parser.tags if tag == name]


def looks_like(frame: Image.Image, picture: Image.Image) -> float:
    """Mean absolute difference of two pictures at the test web's size (0: identical)."""
    a = np.asarray(frame.convert("RGB").resize(IMAGE_SIZE), dtype=np.float32)
    b = np.asarray(picture.convert("RGB").resize(IMAGE_SIZE), dtype=np.float32)
    return float(np.abs(a - b).mean())


def victim_picture(planted: Planted) -> Image.Image:
    return planted_picture(PLAN.seed, planted.victim, planted.edit, planted.site)


def test_spa_gallery_html_has_no_path_and_the_api_built_by_the_script_has(served) -> None:
    web = served.web
    planted = planted_of(web, "spa-gallery")
    base = web.site_url(planted.site)
    status, _, html = fetch(base)
    assert status == 200 and b'<div id="app"></div>' in html
    assert b"<img" not in html and planted.path.encode() not in html
    [script] = tags(html, "script")
    status, headers, code = fetch(base + script["src"].lstrip("/"))
    assert status == 200 and "javascript" in headers["Content-Type"]
    assert b"fetch(" in code and b"/api/v2/gallery" not in code and b"/api/" not in code
    status, headers, body = fetch(base + "api/v2/gallery?page=1&per_page=12")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    photos = json.loads(body)["data"]
    assert planted.path in [p["urls"]["regular"] for p in photos]
    assert fetch(base + planted.path.lstrip("/"))[0] == 200


def test_infinite_scroll_names_the_planted_picture_on_the_apis_third_page(served) -> None:
    web = served.web
    planted = planted_of(web, "infinite-scroll")
    base = web.site_url(planted.site)
    status, _, html = fetch(base)
    [feed] = [ul for ul in tags(html, "ul") if ul.get("data-next-url")]
    assert status == 200 and planted.path.encode() not in html and len(tags(html, "img")) >= 4
    assert b"IntersectionObserver" in fetch(base + "static/feed.js")[2]
    url, pages = str(feed["data-next-url"]), []
    while url:
        status, _, body = fetch(base + url.lstrip("/"))
        assert status == 200
        pages.append(json.loads(body))
        cursor = pages[-1]["next_cursor"]
        url = f"/api/feed?cursor={cursor}" if cursor else ""
        assert len(pages) <= 5
    sources = [[item["image"]["src"] for item in page["items"]] for page in pages]
    assert len(pages) == 3
    assert web.image_url(planted.site, planted) in sources[2]
    assert not any(planted.path in src for src in sources[0] + sources[1])
    assert fetch(base + "api/feed?cursor=" + base64.urlsafe_b64encode(b'{"before":1}').decode()
                 )[0] == 400


def test_js_challenge_answers_503_until_the_computed_cookie_is_sent(served) -> None:
    web = served.web
    planted = planted_of(web, "js-challenge")
    url = gallery(web, planted)
    hostname = url.split("//", 1)[1].split(":", 1)[0]
    status, headers, html = fetch(url)
    assert status == 503 and b"<title>Just a moment...</title>" in html
    assert headers.get("cf-mitigated") == "challenge" and planted.path.encode() not in html
    assert fetch(web.site_url(planted.site) + planted.path.lstrip("/"))[0] == 503
    script = html.decode()
    values = dict(re.findall(r"\b([abcm])=(\d+)", script.split("var ", 1)[1].split(";", 1)[0]))
    a, b, c, m = (int(values[k]) for k in "abcm")
    rounds = int(re.search(r"i<(\d+);", script)[1])
    ray = re.search(r'cRay:"([0-9a-f]+)"', script)[1]
    assert "location.hostname.length" in script and "location.reload()" in script
    assert "setTimeout(function(){location.reload();},500)" in script
    n = c
    for _ in range(rounds):
        n = (n * a + b) % m
    n = (n + len(hostname)) % m
    token = f"{n:x}.{ray}"
    assert 'document.cookie="cf_clearance="' in script
    status, _, page = fetch(url, Cookie=f"cf_clearance={token}")
    assert status == 200 and planted.path in [i["src"] for i in tags(page, "img")]
    status, headers, _ = fetch(web.site_url(planted.site) + planted.path.lstrip("/"),
                               Cookie=f"cf_clearance={token}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    wrong = f"{(n + 1) % m:x}.{ray}"
    assert fetch(url, Cookie=f"cf_clearance={wrong}")[0] == 503
    assert fetch(url, Cookie="cf_clearance=" + "0" * 16)[0] == 503


def test_nuxt_names_the_picture_only_as_an_argument_of_the_payload_iife(served) -> None:
    web = served.web
    planted = planted_of(web, "nuxt")
    base = web.site_url(planted.site)
    status, _, html = fetch(base)
    text = html.decode()
    assert status == 200 and "window.__NUXT__=(function(" in text and not tags(html, "img")
    name = planted.path.removeprefix("/img/").removesuffix(".jpg")
    assert f"/r/{name}" not in text and planted.path not in text
    arguments = json.loads("[" + text.split("}}(", 1)[1].split("));</script>", 1)[0] + "]")
    assert f"/r/{name}" in arguments
    status, headers, _ = fetch(base + f"r/{name}")
    assert status == 302 and headers["Location"] == planted.path
    assert b"__NUXT__" in fetch(base + "_nuxt/app.js")[2]


@pytest.mark.parametrize("markup", ["viewer-meta-refresh", "viewer-js-location"])
def test_viewer_page_on_the_image_host_is_reached_through_a_short_link(served, markup) -> None:
    web = served.web
    planted = planted_of(web, markup)
    image_url = web.image_url(planted.site, planted)
    site_base = web.site_url(planted.site)
    status, _, html = fetch(gallery(web, planted))
    assert status == 200 and image_url.encode() not in html
    [link] = [a["href"] for a in tags(html, "a") if str(a.get("href")).startswith("/go/")]
    status, _, moving = fetch(site_base + link.lstrip("/"))
    assert status == 200
    if markup == "viewer-meta-refresh":
        [meta] = [m for m in tags(moving, "meta") if m.get("http-equiv") == "refresh"]
        target = str(meta["content"]).split("url=", 1)[1]
    else:
        target = re.search(rb'window\.location\.href = "([^"]+)"', moving)[1].decode()
    host = target.split("//", 1)[1].split("/", 1)[0]
    assert host != site_base.split("//", 1)[1].rstrip("/") and "/show/" in target
    status, _, viewer = fetch(target)
    assert status == 200
    big = [i for i in tags(viewer, "img") if i.get("id") == "image"]
    assert [i["src"] for i in big] == [image_url] and len(tags(viewer, "img")) >= 4
    status, _, picture = fetch(image_url)
    assert status == 200 and looks_like(Image.open(io.BytesIO(picture)),
                                        victim_picture(planted)) < 8
    for thumb in tags(html, "img") + [i for i in tags(viewer, "img") if i.get("id") != "image"]:
        src = str(thumb["src"])
        body = fetch(src if src.startswith("http") else site_base + src.lstrip("/"))[2]
        assert looks_like(Image.open(io.BytesIO(body)), victim_picture(planted)) > 20


def test_a_forum_post_links_straight_to_the_viewer_page_by_its_url(served) -> None:
    web = served.web
    planted = planted_of(web, "viewer-text-link")
    image_url = web.image_url(planted.site, planted)
    status, _, html = fetch(gallery(web, planted))
    assert status == 200 and image_url.encode() not in html
    [link] = [a for a in tags(html, "a") if a.get("class") == "postlink"]
    assert "/show/" in link["href"] and not link["href"].startswith(web.site_url(planted.site))
    status, _, viewer = fetch(link["href"])
    assert status == 200
    assert [i["src"] for i in tags(viewer, "img") if i.get("id") == "image"] == [image_url]


def test_lightbox_keeps_the_full_size_picture_only_in_a_data_attribute(served) -> None:
    web = served.web
    planted = planted_of(web, "lightbox")
    _, _, html = fetch(gallery(web, planted))
    [link] = [a for a in tags(html, "a") if a.get("data-pswp-src")]
    assert link["data-pswp-src"] == planted.path and link["href"] == "#"
    assert planted.path not in [i["src"] for i in tags(html, "img")]
    assert planted.path not in [a.get("href") for a in tags(html, "a")]
    thumb = fetch(web.site_url(planted.site) + "img/" + f"{planted.site}-777.jpg")[2]
    assert looks_like(Image.open(io.BytesIO(thumb)), victim_picture(planted)) > 20


def test_picture_avif_serves_the_planted_picture_only_as_avif(served) -> None:
    web = served.web
    planted = planted_of(web, "picture-avif")
    base = web.site_url(planted.site)
    _, _, html = fetch(gallery(web, planted))
    sources = {s["type"]: s["srcset"] for s in tags(html, "source")}
    assert sources["image/avif"] == planted.path and planted.path.endswith(".avif")
    status, headers, body = fetch(base + planted.path.lstrip("/"))
    assert status == 200 and headers["Content-Type"] == "image/avif"
    assert body[4:12] == b"ftypavif" and Image.open(io.BytesIO(body)).format == "AVIF"
    assert looks_like(Image.open(io.BytesIO(body)), victim_picture(planted)) < 8
    webp = fetch(base + str(sources["image/webp"]).lstrip("/"))[2]
    assert Image.open(io.BytesIO(webp)).format == "WEBP"
    assert looks_like(Image.open(io.BytesIO(webp)), victim_picture(planted)) > 20
    for path in ("img/{}-p.jpg", "gallery/img/{}-p.jpg", "img/{}-p.webp"):
        assert fetch(base + path.format(planted.site))[0] == 404


@pytest.mark.parametrize(("markup", "fmt"), [("webp-animated", "WEBP"), ("gif-animated", "GIF"),
                                             ("apng", "PNG")])
def test_animated_picture_shows_the_victim_only_in_a_later_frame(served, markup, fmt) -> None:
    web = served.web
    planted = planted_of(web, markup)
    _, _, html = fetch(gallery(web, planted))
    assert planted.path in [i["src"] for i in tags(html, "img")]
    status, _, body = fetch(web.site_url(planted.site) + planted.path.lstrip("/"))
    image = Image.open(io.BytesIO(body))
    assert status == 200 and image.format == fmt and image.is_animated
    assert image.n_frames >= 4
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        frames.append(frame.convert("RGB"))
        durations.append(frame.info.get("duration"))
    distances = [looks_like(frame, victim_picture(planted)) for frame in frames]
    [victim_frame] = [i for i, d in enumerate(distances) if d < 12]
    assert victim_frame >= 3 and min(d for d in distances if d >= 12) > 20
    assert {int(d) for d in durations} == {1000}


def test_avif_is_a_plain_img_of_an_avif_file(served) -> None:
    web = served.web
    planted = planted_of(web, "avif")
    _, _, html = fetch(gallery(web, planted))
    assert planted.path in [i["src"] for i in tags(html, "img")]
    status, headers, body = fetch(web.site_url(planted.site) + planted.path.lstrip("/"))
    assert status == 200 and headers["Content-Type"] == "image/avif"
    assert body[4:12] == b"ftypavif"
    assert looks_like(Image.open(io.BytesIO(body)), victim_picture(planted)) < 8


def test_heic_is_a_download_link_to_a_heic_photo(served) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    web = served.web
    planted = planted_of(web, "heic")
    _, _, html = fetch(gallery(web, planted))
    [link] = [a for a in tags(html, "a") if a.get("href") == planted.path]
    assert str(link["download"]).endswith(".HEIC") and planted.path not in str(tags(html, "img"))
    status, headers, body = fetch(web.site_url(planted.site) + planted.path.lstrip("/"))
    assert status == 200 and headers["Content-Type"] == "image/heic"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert body[4:12] == b"ftypheic" and Image.open(io.BytesIO(body)).format == "HEIF"
    assert looks_like(Image.open(io.BytesIO(body)), victim_picture(planted)) < 8


# --- the scripts work in a browser ---------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser(served: RunningWeb) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless=new", "--no-proxy-server"])
        yield chromium
        chromium.close()


@pytest.mark.parametrize("markup", [
    "spa-gallery", "infinite-scroll", "js-challenge", "nuxt", "nuxt3", "viewer-meta-refresh",
    "viewer-js-location", "lightbox", "picture-avif"])
def test_a_browser_reaches_the_planted_picture(served, browser, markup: str) -> None:
    """What a visitor's browser does (run the scripts, scroll, click a thumbnail) fetches the
    planted picture: the patterns are solvable, and by the means they claim."""
    web = served.web
    planted = planted_of(web, markup)
    target = web.image_url(planted.site, planted)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        start = (web.site_url(planted.site)
                 if markup in ("spa-gallery", "infinite-scroll", "nuxt", "nuxt3")
                 else gallery(web, planted))
        if markup.startswith("viewer-"):
            page.goto(start)
            start = web.site_url(planted.site) + str(page.get_attribute(
                "a[href^='/go/']", "href")).lstrip("/")
        page.goto(start)
        if markup == "lightbox":
            assert target not in requested
            page.click(".pswp-gallery a")
        for _ in range(40):
            if target in requested:
                break
            if markup == "infinite-scroll":
                page.mouse.wheel(0, 1500)
            page.wait_for_timeout(250)
        assert target in requested
        if markup == "infinite-scroll":
            assert sum("/api/feed?cursor=" in url for url in requested) == 3
        if markup.startswith("viewer-"):
            assert page.url.startswith(target.split("/images/", 1)[0] + "/show/")
    finally:
        context.close()
