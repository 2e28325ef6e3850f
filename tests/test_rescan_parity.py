"""Re-scan parity: the seen index proposes every crawled file the live match would have matched
to a victim who registers later, whatever view or stage the live match needed, and rows written
before it kept views and words are still searched."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import insert

from matcher.bank import VictimBank
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from matcher.rescan import _images, victim_codes, victim_words
from matcher.seen import GLOBAL_COLUMNS, SeenIndex, seen_hashes
from testkit.edits import EDITS
from testkit.synthetic import encode, synthetic_picture


def test_every_edit_the_live_match_finds_is_a_rescan_candidate(haechi_home) -> None:
    hasher = ImageHasher()
    victim = synthetic_picture(seed=3, size=(640, 480))
    registered = encode(victim, quality=92)
    seen = SeenIndex.open()
    copies = {}
    for number, (name, edit) in enumerate(EDITS.items()):
        data = encode(edit(victim, np.random.default_rng(number)).convert("RGB"), quality=88)
        frames = hasher.media_hashes(data)
        seen.record(frames[0].hashes.sha256, frames)
        copies[frames[0].hashes.sha256] = (name, frames)
    for number in range(20):  # unrelated files
        frames = hasher.media_hashes(encode(synthetic_picture(seed=100 + number)))
        seen.record(frames[0].hashes.sha256, frames)
    bank = VictimBank.open()
    bank.add("V", hasher.registration_hashes(registered, local=True), "test")
    live = Matcher(bank, hasher)
    found_live = {sha for sha, (_, frames) in copies.items() if live.match_frames(frames)}
    images = _images([registered])
    codes = {name: victim_codes(bank, "V", (), name, images) for name in GLOBAL_COLUMNS}
    proposed = seen.candidates(codes, victim_words(images))
    assert len(found_live) >= len(EDITS) - 2  # the live match finds nearly every edit
    assert found_live <= proposed, sorted(copies[s][0] for s in found_live - proposed)


def test_a_row_of_an_earlier_release_is_still_found_by_its_one_hash(haechi_home) -> None:
    hasher = ImageHasher()
    picture = encode(synthetic_picture(seed=5))
    frames = hasher.media_hashes(picture)
    seen = SeenIndex.open()
    with seen.engine.begin() as conn:  # as revision 0007 wrote it: one PDQ code, no views
        conn.execute(insert(seen_hashes), [{
            "sha256": "a" * 64, "second": -1.0, "code": frames[0].hashes.seen_code,
            "seen_at": dt.datetime.now(dt.UTC)}])
    codes = {"pdq": np.frombuffer(frames[0].hashes.seen_code, np.uint8).reshape(1, -1)}
    assert seen.candidates(codes, np.zeros(0, np.uint16)) == {"a" * 64}
