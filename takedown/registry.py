"""Per-site overrides that operators keep by hand: where to write, in which language, and
whether the service is Korean (which changes the legal basis of a notice).

A CSV with header `site,contact,language,country`, at HAECHI_SITE_REGISTRY or `sites.csv` in
the data folder; empty cells mean "no override". Read on every use, so edits apply at once.

The registry is the operator's word, so its contact is the one recipient a notice needs no
reviewer to confirm; it passes the same address check as any other all the same (one plain
address, no list), since a typo or a pasted list would otherwise go out unnoticed. A cell that
fails its check is ignored with a warning naming the row, as if it were empty.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crawler.security_txt import AddressRefused, email_address, language_tag, mailto_address
from engines.home import data_home
from engines.settings import current

log = logging.getLogger(__name__)
_COUNTRY = re.compile(r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2, as legal_basis compares it


@dataclass(frozen=True)
class SiteOverride:
    contact: str | None = None
    language: str | None = None
    country: str | None = None


def registry_path() -> Path:
    return Path(current().site_registry or data_home() / "sites.csv")


def site_override(site: str) -> SiteOverride:
    path = registry_path()
    if not path.exists():
        return SiteOverride()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if (row.get("site") or "").strip().lower() == site:
            return SiteOverride(
                contact=_checked(path, site, "contact", row.get("contact"), operator_address),
                language=_checked(path, site, "language", row.get("language"), language_tag),
                country=_checked(path, site, "country", row.get("country"), _country),
            )
    return SiteOverride()


def operator_address(text: str) -> str:
    """An address an operator wrote, bare or as `mailto:`; AddressRefused if not one address."""
    if text.lower().startswith("mailto:"):
        return mailto_address(text)
    return email_address(text)


def _country(text: str) -> str | None:
    code = text.upper()
    return code if _COUNTRY.match(code) else None


def _checked(path: Path, site: str, column: str, cell: str | None,
             check: Callable[[str], str | None]) -> str | None:
    text = (cell or "").strip()
    if not text:
        return None
    try:
        value = check(text)
    except AddressRefused as exc:
        value, reason = None, str(exc)
    else:
        reason = "not understood"
    if value is None:
        log.warning("%s: the %s of %s is ignored (%s): %r", path, column, site, reason,
                    text[:80])
    return value
