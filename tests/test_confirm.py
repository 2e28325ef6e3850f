"""What a URL fetched again shows of a victim (matcher/confirm.py), and what the tracker and
the re-check make of it: one answer, two readings."""

from __future__ import annotations

import hashlib

import pytest

from engines.fetch import Fetched
from matcher.confirm import Showing, showing, still_shows
from takedown.tracking import VERDICTS, Verdict

SEEN = b"the file seen before"
SEEN_SHA = hashlib.sha256(SEEN).hexdigest()
COPY, OTHER = b"a re-encoded copy", b"something else"


def judge(body: bytes, victim: str) -> bool:
    return victim == "V1" and body == COPY


def withdrawn_judge(body: bytes, victim: str) -> bool:
    raise AssertionError("the bank is not asked about a withdrawn victim")


@pytest.mark.parametrize(("fetched", "registered", "expected"), [
    (Fetched(None, error="blocked-address: x"), True, Showing.UNREACHABLE),
    (Fetched(404), True, Showing.GONE),
    (Fetched(410), False, Showing.GONE),
    (Fetched(403, b"forbidden"), True, Showing.UNJUDGED),
    (Fetched(503), False, Showing.UNJUDGED),
    (Fetched(200, error="larger than 10 bytes"), True, Showing.UNJUDGED),
    (Fetched(200, SEEN), True, Showing.SAME_FILE),
    (Fetched(200, SEEN), False, Showing.SAME_FILE),
    (Fetched(200, COPY), True, Showing.MATCHES),
    (Fetched(200, OTHER), True, Showing.NO_LONGER),
    (Fetched(200, OTHER), False, Showing.CHANGED),
])
def test_what_an_answer_shows(fetched: Fetched, registered: bool, expected: Showing) -> None:
    asked = judge if registered else withdrawn_judge
    assert showing(fetched, "V1", SEEN_SHA, asked, registered) is expected


def test_the_tracker_never_calls_an_answer_it_cannot_judge_removed() -> None:
    assert set(VERDICTS) == set(Showing)
    removed = {s for s, verdict in VERDICTS.items() if verdict is Verdict.REMOVED}
    assert removed == {Showing.GONE, Showing.NO_LONGER}


def test_still_shows_fetches_once_and_keeps_the_answer() -> None:
    asked: list[str] = []

    def fetch(url: str) -> Fetched:
        asked.append(url)
        return Fetched(200, COPY, final_url=url)

    seen = still_shows("http://host.example/a.jpg", "V1", SEEN_SHA, judge, fetch)
    assert seen.showing is Showing.MATCHES and seen.shows
    assert seen.fetched.body == COPY and asked == ["http://host.example/a.jpg"]
    assert not still_shows("http://host.example/a.jpg", "V2", SEEN_SHA, judge, fetch).shows
