"""Does a URL still show the victim? Fetched again, what it serves now is judged here, once.

Two callers ask: the re-check of earlier copies (register --recheck, matcher/rescan.py), which
raises only a copy it saw again, and the tracker of sent cases (takedown/tracking.py), which
must never call a file removed that is still online. They act differently on an answer (a 403
is "not seen" to the one and "not removed" to the other), so the answer names what was seen,
and each caller says what that means for it:

- UNREACHABLE: nothing answered (a refused address, no connection, a timeout).
- GONE: 404 or 410, the host's word that the file is not there.
- UNJUDGED: an answer with nothing to judge the file by: another status (403, 5xx) or a body
  over the size cap.
- SAME_FILE: 2xx with the very bytes seen before (the SHA-256 given): the file is its own
  proof, and the bank is not asked (so this holds after the victim's hashes are gone).
- MATCHES / NO_LONGER: 2xx with other bytes, which the bank does or does not match to the
  victim (a re-encoded copy matches; a page in its place does not).
- CHANGED: 2xx with other bytes while the victim's hashes are gone: nothing left to judge them
  by, so neither "still shows" nor "no longer".
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engines.fetch import Fetched
from matcher.decode import UnreadableImage

if TYPE_CHECKING:
    from matcher.match import Matcher

# Statuses that say the file is gone from this URL, whatever the victim's registration.
GONE_STATUSES = (404, 410)

# The bank's word on bytes that are not the ones seen before: do they show this victim?
Judge = Callable[[bytes, str], bool]


class Showing(enum.StrEnum):
    """What a URL was found to serve (the rule is in the module docstring)."""

    UNREACHABLE = "unreachable"
    GONE = "gone"
    UNJUDGED = "unjudged"
    SAME_FILE = "same-file"
    MATCHES = "matches"
    NO_LONGER = "no-longer"
    CHANGED = "changed"


@dataclass(frozen=True)
class Confirmation:
    showing: Showing
    fetched: Fetched

    @property
    def shows(self) -> bool:
        """Whether the URL was seen serving the victim's picture."""
        return self.showing in (Showing.SAME_FILE, Showing.MATCHES)


def judge_with(matcher: Matcher) -> Judge:
    """The bank's word through `matcher`; bytes that are no picture show no one."""

    def shows(body: bytes, victim: str) -> bool:
        try:
            return any(m.victim == victim for m in matcher.match_bytes(body))
        except UnreadableImage:
            return False

    return shows


def showing(fetched: Fetched, victim: str, sha256: str | None, judge: Judge,
            registered: bool = True) -> Showing:
    """What `fetched` says of `victim`'s picture, once seen as the file `sha256`;
    `registered` is False when the victim's hashes are gone (`judge` is then not asked)."""
    if fetched.status is None:
        return Showing.UNREACHABLE
    if fetched.status in GONE_STATUSES:
        return Showing.GONE
    if not fetched.whole:
        return Showing.UNJUDGED
    if fetched.sha256 == sha256:
        return Showing.SAME_FILE
    if not registered:
        return Showing.CHANGED
    return Showing.MATCHES if judge(fetched.body, victim) else Showing.NO_LONGER


def still_shows(url: str, victim: str, sha256: str | None, judge: Judge,
                fetch: Callable[[str], Fetched], registered: bool = True) -> Confirmation:
    """Fetch `url` again (with `fetch`: engines/fetch.py's, or a test's) and say what it
    shows of `victim` (see `showing`)."""
    fetched = fetch(url)
    return Confirmation(showing(fetched, victim, sha256, judge, registered), fetched)
