"""The victim bank at rest (issue 12): no registered hash in the database's or the index files'
bytes, a wrong key refused in a sentence instead of matching wrongly, and a bank of the release
before encrypted in place by `haechi db upgrade`, matching as it did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from engines.bankkey import KEY_VARIABLE, BankCipher, BankKeyError
from matcher.bank import VictimBank
from matcher.hasher import HashRecord, ImageHasher
from matcher.index import BinaryHashIndex, IndexStamp
from matcher.match import Matcher
from testkit.edits import EDITS
from testkit.synthetic import encode, synthetic_picture
from tests.test_migrations import (
    KEY,
    RELEASE_REVISION,
    START,
    db_upgrade,
    fill,
    make_release_database,
    new_database,  # noqa: F401  (the fixture)
    upgraded,
)

HAECHI = str(Path(sys.executable).with_name("haechi"))
# Hashes of a listed victim in the release's bank.
LISTED = 2000


def kept_bytes(folder: Path) -> bytes:
    """Every file under `folder` (the database, its write-ahead log, the index files...)."""
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


def leaked(codes: list[bytes], folder: Path) -> list[str]:
    """The codes found, raw or in hex, anywhere in `folder`'s files."""
    kept = kept_bytes(folder)
    return [code.hex() for code in codes if code in kept or code.hex().encode() in kept]


def registered(bank: VictimBank, victim: str, seed: int) -> tuple[bytes, list[HashRecord]]:
    data = encode(synthetic_picture(seed))
    records = ImageHasher().registration_hashes(data)
    bank.add(victim, records, source=f"{seed}.jpg")
    return data, records


def test_no_registered_hash_is_in_the_database_or_the_index_files(bank: VictimBank,
                                                                   haechi_home: Path,
                                                                   tmp_path: Path) -> None:
    _, first = registered(bank, "V1", seed=1)
    _, second = registered(bank, "V2", seed=2)
    listing = tmp_path / "list.csv"
    listed = [bytes(range(n, n + 32)) for n in (40, 80)]
    listing.write_text("victim,algorithm,hash\n" + "".join(
        f"V3,{algorithm},{code.hex()}\n" for algorithm, code in zip(("pdq", "sha256"), listed,
                                                                     strict=True)))
    assert bank.import_hash_list(listing)["added"] == 2
    bank.withdraw("V2")
    bank.save()
    assert {p.name for p in (haechi_home / "index").iterdir()} == {"pdq.index", "phash.index"}
    codes = [r.code for r in first + second] + listed
    assert leaked(codes, haechi_home) == []
    # ... and all of it still works from the sealed rows and index files.
    fresh = VictimBank.open()
    assert fresh.codes("V1", "pdq").tobytes() == b"".join(
        r.code for r in first if r.algorithm == "pdq")
    assert {h.victim for h in fresh.search("sha256", np.frombuffer(listed[1], np.uint8)[None])
            } == {"V3"}
    assert fresh.stats()["victims"] == 2 and fresh.is_registered("V3")
    assert not fresh.is_registered("V2")


def test_matching_and_withdrawal_work_on_sealed_rows(bank: VictimBank) -> None:
    data, _ = registered(bank, "V1", seed=1)
    registered(bank, "V2", seed=2)
    matcher = Matcher(bank)
    found = {(m.victim, m.algorithm) for m in matcher.match_bytes(data)}
    assert {("V1", "sha256"), ("V1", "pdq")} <= found and {v for v, _ in found} == {"V1"}
    copy = encode(EDITS["jpeg_q25"](synthetic_picture(1), None))
    assert {m.victim for m in matcher.match_bytes(copy)} == {"V1"}
    before = bank.stats()["hashes"]
    assert registered(bank, "V1", seed=1) and bank.stats()["hashes"] == before  # no repeats
    bank.withdraw("V1")
    assert matcher.match_bytes(data) == [] and matcher.match_bytes(copy) == []


def test_a_wrong_key_is_refused_in_a_sentence_never_matched_with(
        bank: VictimBank, haechi_home: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    data, _ = registered(bank, "V1", seed=1)
    bank.save()
    monkeypatch.setenv(KEY_VARIABLE, KEY)  # not the data folder's key it was registered under
    with pytest.raises(BankKeyError, match="do not decrypt with this key"):
        VictimBank.open()
    picture = tmp_path / "copy.jpg"
    picture.write_bytes(data)
    result = subprocess.run([HAECHI, "match", "--json", str(picture)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert KEY_VARIABLE in result.stderr and "Traceback" not in result.stderr
    monkeypatch.setenv(KEY_VARIABLE, "short")
    with pytest.raises(BankKeyError, match="at least 32"):
        VictimBank.open()


def test_an_index_saved_under_another_key_reads_as_missing_and_a_plain_one_is_deleted(
        tmp_path: Path) -> None:
    index = BinaryHashIndex(256)
    index.add(np.arange(1, 4), np.arange(96, dtype=np.uint8).reshape(3, 32))
    path = tmp_path / "pdq.index"
    stamp = IndexStamp(3, 3)
    index.save(path, stamp, BankCipher(KEY.encode()))
    assert BinaryHashIndex.load(path, 256, BankCipher(KEY.encode()))[1] == stamp
    assert BinaryHashIndex.load(path, 256, BankCipher(KEY.upper().encode())) is None
    assert path.exists()  # sealed under another key: not this process's to delete
    with path.open("wb") as plain:
        np.savez(plain, codes=np.arange(96, dtype=np.uint8))
    assert BinaryHashIndex.load(path, 256, BankCipher(KEY.encode())) is None
    assert not path.exists()  # a plaintext copy of victims' hashes is deleted on sight


def release_bank(url: str, haechi_home: Path) -> tuple[bytes, list[bytes]]:
    """A 0.1.0 database at `url` with a victim's picture registered as that release kept it
    (codes in the clear) and a plaintext index file in the data folder; returns the picture and
    the codes (the picture's, and those of a listed victim: enough rows to fill many pages, so
    that the pages freed by the upgrade are more than it reuses)."""
    make_release_database(url)
    data = encode(synthetic_picture(1))
    records = ImageHasher().registration_hashes(data)
    rng = np.random.default_rng(12)
    records += [HashRecord("pdq", rng.bytes(32), "imported", 100) for _ in range(LISTED)]
    fill(url, {"victim_hashes": [
        {"victim": "V1" if n < len(records) - LISTED else "V2", "algorithm": r.algorithm,
         "code": r.code, "view": r.view, "quality": r.quality, "source": "list.csv",
         "registered_at": START} for n, r in enumerate(records)]})
    index = haechi_home / "index"
    index.mkdir(parents=True, exist_ok=True)
    with (index / "pdq.index").open("wb") as saved:  # as 0.1.0 saved its index: in the clear
        np.savez(saved, codes=np.frombuffer(b"".join(
            r.code for r in records if r.algorithm == "pdq"), np.uint8))
    return data, [r.code for r in records]


def database_bytes(url: str, haechi_home: Path) -> bytes:
    """What an attacker reading the database's storage would get of the bank."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return kept_bytes(haechi_home)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = b"".join(conn.execute(sa.text("SELECT code FROM victim_hashes")).scalars())
    engine.dispose()
    return found


def test_a_release_bank_is_sealed_in_place_and_matches_as_before(
        new_database, haechi_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    url = new_database()
    data, codes = release_bank(url, haechi_home)
    monkeypatch.setenv(KEY_VARIABLE, KEY)  # the key `haechi db upgrade` is given (below)
    assert upgraded(url)["from"] == RELEASE_REVISION
    kept = database_bytes(url, haechi_home)
    assert [c.hex() for c in codes if c in kept] == []
    assert not (haechi_home / "index" / "pdq.index").exists()
    bank = VictimBank.open(url)
    matcher = Matcher(bank)
    assert {m.victim for m in matcher.match_bytes(data)} == {"V1"}
    assert {m.algorithm for m in matcher.match_bytes(data)} >= {"sha256", "pdq"}
    copy = encode(EDITS["jpeg_q25"](synthetic_picture(1), None))
    assert {m.victim for m in matcher.match_bytes(copy)} == {"V1"}
    assert bank.withdraw("V1") == len(codes) - LISTED
    assert matcher.match_bytes(data) == []
    bank.engine.dispose()


def test_a_bank_outside_the_data_folder_is_not_sealed_under_a_key_made_there(
        haechi_home: Path) -> None:
    """Its rows would be lost to every other process: the upgrade stops, saying so, and
    leaves the database as it was."""
    outside = haechi_home.parent / "elsewhere"
    outside.mkdir()
    url = f"sqlite:///{outside / 'bank.sqlite3'}"
    _, codes = release_bank(url, haechi_home)
    result = db_upgrade(url, env={KEY_VARIABLE: ""})
    assert result.returncode == 3, result.stderr
    assert KEY_VARIABLE in result.stderr and "Traceback" not in result.stderr
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version_takedown")
                            ).scalar() == RELEASE_REVISION
        assert sorted(conn.execute(sa.text("SELECT code FROM victim_hashes")).scalars()
                      ) == sorted(codes)
    engine.dispose()
