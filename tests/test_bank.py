"""The victim bank: hashes only, withdrawal takes effect at once, indexes survive restarts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engines.bankkey import NONCE_BYTES, TAG_BYTES
from matcher.bank import BankError, VictimBank, victim_hashes
from matcher.hasher import ImageHasher
from matcher.match import Matcher
from testkit.edits import EDITS
from testkit.synthetic import encode, synthetic_picture


def register(bank: VictimBank, victim: str, seed: int, local: bool = False) -> bytes:
    data = encode(synthetic_picture(seed))
    bank.add(victim, ImageHasher().registration_hashes(data, local=local), source=f"{seed}.jpg")
    return data


def test_bank_keeps_hashes_only_never_image_bytes(bank, haechi_home):
    data = register(bank, "V1", seed=1, local=True)
    bank.save()
    with bank.engine.connect() as conn:
        columns = {c.name for c in victim_hashes.columns}
        sizes = {row.algorithm: len(row.code) for row in conn.execute(
            select(victim_hashes.c.algorithm, victim_hashes.c.code))}
    local = sizes.pop("local")
    assert "image" not in columns and max(sizes.values()) <= NONCE_BYTES + 32 + TAG_BYTES
    # Local features (keypoints and descriptors) are capped at 20 KB a picture, sealed too.
    assert local <= NONCE_BYTES + 20_000 + TAG_BYTES < len(data) or local <= 20_100
    for file in haechi_home.rglob("*"):
        if file.is_file():
            assert data[100:200] not in file.read_bytes()


def test_registering_the_same_image_twice_adds_nothing(bank):
    register(bank, "V1", seed=1)
    before = bank.stats()["hashes"]
    register(bank, "V1", seed=1)
    assert bank.stats()["hashes"] == before


def test_edited_copy_matches_and_withdrawal_stops_it_at_once(bank):
    data = register(bank, "V1", seed=1)
    register(bank, "V2", seed=2)
    matcher = Matcher(bank)
    copy = encode(EDITS["jpeg_q25"](synthetic_picture(1), None))
    assert {m.victim for m in matcher.match_bytes(copy)} == {"V1"}
    assert bank.withdraw("V1") > 0
    assert matcher.match_bytes(copy) == []
    assert matcher.match_bytes(data) == []
    assert bank.stats()["victims"] == 1


def test_a_new_process_loads_the_saved_index_and_catches_up_on_new_rows(haechi_home):
    first = VictimBank.open()
    register(first, "V1", seed=1)
    first.save()
    second = VictimBank.open()
    register(second, "V2", seed=2)  # first's saved index is now stale
    third = VictimBank.open()
    found = Matcher(third).match_bytes(encode(synthetic_picture(2)))
    assert {m.victim for m in found} == {"V2"}


def test_withdrawal_in_another_process_is_seen_by_a_fresh_load(haechi_home):
    first = VictimBank.open()
    register(first, "V1", seed=1)
    first.index("pdq")
    first.save()
    VictimBank.open().withdraw("V1")  # not loaded there: the saved index still holds V1
    assert Matcher(VictimBank.open()).match_bytes(encode(synthetic_picture(1))) == []


def test_corrupt_index_file_is_rebuilt_from_the_rows(haechi_home):
    bank = VictimBank.open()
    register(bank, "V1", seed=1)
    bank.index("pdq")
    bank.save()
    (haechi_home / "index" / "pdq.index").write_bytes(b"garbage")
    found = Matcher(VictimBank.open()).match_bytes(encode(synthetic_picture(1)))
    assert {m.victim for m in found} == {"V1"}


def test_hash_list_with_a_bad_line_adds_nothing_and_names_the_line(bank, tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("victim,algorithm,hash\nV1,pdq," + "ab" * 32 + "\nV2,pdq,xyz\n")
    with pytest.raises(BankError, match="line 3"):
        bank.import_hash_list(listing)
    assert bank.stats()["hashes"] == 0


def test_plain_image_cannot_be_registered():
    from PIL import Image

    from matcher.decode import UnreadableImage

    with pytest.raises(UnreadableImage, match="too plain"):
        ImageHasher().registration_hashes(encode(Image.new("RGB", (200, 200), (90, 90, 90))))


def test_picture_whose_hashes_change_when_resaved_cannot_be_registered():
    import numpy as np
    from PIL import Image

    from matcher.decode import UnreadableImage

    rng = np.random.default_rng(0)
    bars = np.repeat(rng.integers(60, 200, 40).astype(np.uint8), 12)[None, :, None]
    stripes = Image.fromarray(np.broadcast_to(bars, (300, 480, 3)).copy())
    with pytest.raises(UnreadableImage, match="unstable"):
        ImageHasher().registration_hashes(encode(stripes))
