"""The limits of every fetch outside a crawl: the crawler's own.

The re-check of earlier copies (register --recheck) and the tracker of sent cases fetch with
engines/fetch.py's Fetcher under these limits, so that a site sees one Haechi however it is
reached: the crawler's User-Agent, timeout, size cap and redirect limit.
"""

from __future__ import annotations

from crawler.settings import DOWNLOAD_MAXSIZE, DOWNLOAD_TIMEOUT, REDIRECT_MAX_TIMES, USER_AGENT
from engines.fetch import FetchLimits

LIMITS = FetchLimits(timeout=DOWNLOAD_TIMEOUT, max_bytes=DOWNLOAD_MAXSIZE,
                     max_redirects=REDIRECT_MAX_TIMES, user_agent=USER_AGENT)
