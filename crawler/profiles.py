"""Site profiles: what cannot be guessed about a site, written down once by the crawl team.

The crawler guesses everything else (render only where needed, gates by their words, APIs
from the pages that name them), so a profile is an exception, never a requirement: a site
without one is crawled with the defaults. A profile lives in `sites.toml` in the data folder
(HAECHI_SITE_PROFILES names another file), one table per site:

    [sites."tube.example"]
    render = "always"                  # auto | always | never
    start_urls = ["https://tube.example/latest", "https://tube.example/top"]
    gate = "form#age-check button.enter"   # the CSS selector of the control that passes the gate
    api = "https://tube.example/api/videos?page={page}"   # pages 1.. of a JSON API
    api_pages = 10
    rate = 0.5                         # requests per second, at most

A profile file is configuration: a mistake in it stops the run with a sentence naming the site
and the key (exit 3), since a profile silently ignored would let a site go uncrawled.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.browser import AUTO, RENDER_MODES
from crawler.urls import site_of
from engines.settings import ConfigurationError

PROFILES_FILE = "sites.toml"
MAX_API_PAGES = 1000
_KEYS = {"render", "start_urls", "gate", "api", "api_pages", "rate"}


@dataclass(frozen=True)
class Profile:
    """One site's exceptions to the defaults."""

    render: str = AUTO
    start_urls: tuple[str, ...] = ()
    gate: str | None = None
    api: str | None = None
    api_pages: int = 5
    rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def api_urls(self) -> list[str]:
        """The API's pages, from the template's {page} (1 to api_pages)."""
        if self.api is None:
            return []
        return [self.api.replace("{page}", str(n)) for n in range(1, self.api_pages + 1)]


DEFAULT = Profile()


class ProfileError(ConfigurationError):
    """A profile file that cannot be used, with the site and key at fault."""


def load_profiles(path: Path) -> dict[str, Profile]:
    """The profiles in `path` by site (host name, as crawler.urls.site_of names sites); none
    when the file does not exist."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not a TOML file ({exc})") from None
    sites = data.get("sites", {})
    if not isinstance(sites, dict) or set(data) - {"sites"}:
        raise ProfileError(f"{path}: profiles go in [sites.\"host\"] tables, and nothing else")
    return {site_of(f"http://{name}/"): _profile(path, name, table)
            for name, table in sites.items()}


def _profile(path: Path, name: str, table: object) -> Profile:
    where = f"{path}: site {name!r}"
    if not isinstance(table, dict):
        raise ProfileError(f"{where} is not a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(_KEYS))})")
    render = table.get("render", AUTO)
    if render not in RENDER_MODES:
        raise ProfileError(f"{where}: render must be one of {', '.join(RENDER_MODES)}")
    starts = table.get("start_urls", [])
    if not isinstance(starts, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in starts):
        raise ProfileError(f"{where}: start_urls must be a list of http(s) URLs")
    api = table.get("api")
    if api is not None and (not isinstance(api, str) or "{page}" not in api
                            or not api.startswith(("http://", "https://"))):
        raise ProfileError(f"{where}: api must be an http(s) URL with {{page}} in it")
    pages = table.get("api_pages", 5)
    if not isinstance(pages, int) or not 1 <= pages <= MAX_API_PAGES:
        raise ProfileError(f"{where}: api_pages must be a whole number from 1 to "
                           f"{MAX_API_PAGES}")
    rate = table.get("rate")
    if rate is not None and (not isinstance(rate, int | float) or rate <= 0):
        raise ProfileError(f"{where}: rate must be a positive number of requests a second")
    gate = table.get("gate")
    if gate is not None:
        from cssselect import SelectorError
        from parsel import Selector

        try:
            Selector(text="<p></p>").css(str(gate))
        except (SelectorError, ValueError) as exc:
            raise ProfileError(f"{where}: gate is not a CSS selector ({exc})") from None
    return Profile(render=render, start_urls=tuple(starts), gate=gate, api=api,
                   api_pages=pages, rate=float(rate) if rate is not None else None)


def download_slots(profiles: dict[str, Profile]) -> dict[str, dict[str, float]]:
    """Scrapy's DOWNLOAD_SLOTS for the sites with a rate: one request at a time, that far
    apart (Scrapy's slots are per host, as sites are)."""
    return {site: {"concurrency": 1, "delay": 1.0 / profile.rate}
            for site, profile in profiles.items() if profile.rate}
