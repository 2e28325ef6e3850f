"""Per-site overrides that operators keep by hand: where to write, in which language, and
whether the service is Korean (which changes the legal basis of a notice).

A CSV with header `site,contact,language,country`, at HAECHI_SITE_REGISTRY or `sites.csv` in
the data folder; empty cells mean "no override". Read on every use, so edits apply at once.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from haechi.home import data_home


@dataclass(frozen=True)
class SiteOverride:
    contact: str | None = None
    language: str | None = None
    country: str | None = None


def registry_path() -> Path:
    return Path(os.environ.get("HAECHI_SITE_REGISTRY") or data_home() / "sites.csv")


def site_override(site: str) -> SiteOverride:
    path = registry_path()
    if not path.exists():
        return SiteOverride()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if (row.get("site") or "").strip().lower() == site:
            return SiteOverride(
                contact=(row.get("contact") or "").strip() or None,
                language=(row.get("language") or "").strip().lower() or None,
                country=(row.get("country") or "").strip().upper() or None,
            )
    return SiteOverride()
