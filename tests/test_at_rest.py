"""What Haechi leaves on disk (issue 12, "at rest"): the data folder and everything in it are
its user's alone (folders 700, files 600), and with HAECHI_EVIDENCE_KEY set no matched picture
stays in plaintext anywhere under it, while the review preview still shows it.

The first test is the attack as it was tried: a registration and a real crawl of a loopback
site (the `haechi` commands themselves), then every file under HAECHI_HOME stat'ed and read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from engines.db import open_engine
from engines.home import GROUP_OTHER_BITS, data_home
from engines.objects import LocalStore, media_key
from engines.sealed import KEY_VARIABLE, media_bytes, sealed_key
from matcher.bank import VictimBank
from matcher.decode import decode_image
from matcher.hasher import ImageHasher
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.evidence import read_encrypted_copy
from takedown.review.previews import case_picture, render_preview
from testkit.synthetic import encode, synthetic_picture
from tests.takedown_helpers import event
from tests.test_crawl import CRAWL_ENV, HAECHI
from tests.test_tracking_honest import SITE, Site, site  # noqa: F401 (fixture)

# A slice from the middle of a picture: a partial plaintext copy holds it too.
SLICE = slice(1000, 1064)


def everything_under(folder: Path) -> Iterator[Path]:
    yield folder
    yield from sorted(folder.rglob("*"))


def open_to_others(folder: Path) -> dict[str, str]:
    """Every path under `folder` (itself included) that group or others may use, with its mode."""
    return {str(path.relative_to(folder)): oct(stat.S_IMODE(path.lstat().st_mode))
            for path in everything_under(folder)
            if stat.S_IMODE(path.lstat().st_mode) & GROUP_OTHER_BITS}


def holding(folder: Path, data: bytes) -> list[str]:
    """Every file under `folder` that holds `data`, or a slice of it, in plaintext."""
    return [str(path.relative_to(folder)) for path in everything_under(folder)
            if path.is_file() and (data in (read := path.read_bytes()) or data[SLICE] in read)]


def picture(seed: int) -> bytes:
    data = encode(synthetic_picture(seed=seed))
    assert len(data) > SLICE.stop
    return data


@pytest.fixture
def evidence_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_VARIABLE, key)
    return key


def test_after_a_registration_and_a_crawl_nothing_is_open_and_no_picture_is_plain(
        haechi_home: Path, tmp_path: Path, site: Site, evidence_key: str) -> None:  # noqa: F811
    victim = picture(seed=51)
    (tmp_path / "victim.jpg").write_bytes(victim)  # outside the data folder, as a victim's are
    site.files["/"] = b'<html><body><img src="/img/1.jpg"></body></html>'
    site.files["/img/1.jpg"] = victim
    env = {**os.environ, **CRAWL_ENV}
    for command in (["register", "--victim", "V1", str(tmp_path / "victim.jpg")],
                    ["crawl", site.url("/"), "--json"]):
        result = subprocess.run([HAECHI, *command], capture_output=True, text=True, env=env,
                                timeout=240)
        assert result.returncode == 0, result.stderr
    store = CaseStore(takedown_engine(), LocalStore(haechi_home / "objects"))
    [case] = [store.get(c["id"]) for c in store.list()]
    assert case["victim"] == "V1" and case["image_url"] == site.url("/img/1.jpg")
    assert case["evidence_key"] and case["sha256"] == hashlib.sha256(victim).hexdigest()

    assert open_to_others(haechi_home) == {}
    assert (haechi_home / "haechi.sqlite3").exists() and list((haechi_home / "index").iterdir())
    assert holding(haechi_home, victim) == []
    media = store.store
    assert not media.exists(case["store_key"]) and media.exists(sealed_key(case["store_key"]))
    # The reviewer still sees it, from the encrypted evidence copy.
    shown = case_picture(media, case)
    assert shown.size == decode_image(victim).size
    assert render_preview(shown, clear=False)[:2] == b"\xff\xd8"


def test_a_sealed_copy_serves_the_next_case_and_a_refetched_copy_is_sealed_again(
        haechi_home: Path, evidence_key: str) -> None:
    media = LocalStore(haechi_home / "objects")
    store = CaseStore(takedown_engine(), media)
    data = picture(seed=52)
    key = media_key(hashlib.sha256(data).hexdigest())
    media.put(key, data)
    first = event("seal.example", 1, data=data, store_key=key)
    [one] = store.open_cases([first])
    assert not media.exists(key) and media_bytes(media, key) == data
    # The same file at another URL, its plaintext gone: its case's copy comes from the seal.
    [two] = store.open_cases([event("seal.example", 2, data=data, store_key=key)])
    assert read_encrypted_copy(media, store.get(two)["evidence_key"]) == data
    # A later crawl stores the file in the clear again; its match joins case one and seals it.
    media.put(key, data)
    assert store.open_cases([dataclasses.replace(first, distance=3)]) == []
    assert not media.exists(key) and holding(haechi_home, data) == []
    assert case_picture(media, store.get(one)).size == decode_image(data).size


def test_a_case_opened_without_the_key_gets_its_copy_at_its_next_match(
        haechi_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media = LocalStore(haechi_home / "objects")
    store = CaseStore(takedown_engine(), media)
    data = picture(seed=53)
    key = media_key(hashlib.sha256(data).hexdigest())
    media.put(key, data)
    first = event("later.example", 1, data=data, store_key=key)
    [case_id] = store.open_cases([first])
    assert store.get(case_id)["evidence_key"] is None and media.get(key) == data
    monkeypatch.setenv(KEY_VARIABLE, Fernet.generate_key().decode())
    store.open_cases([dataclasses.replace(first, distance=2)])
    assert read_encrypted_copy(media, store.get(case_id)["evidence_key"]) == data
    assert holding(haechi_home, data) == []


class RefusingStore(LocalStore):
    """A store whose policy allows no deletion (as a bucket policy may)."""

    def delete(self, key: str) -> None:
        raise PermissionError(f"delete of {key} refused")


def test_a_store_that_refuses_to_seal_costs_no_case_and_says_so(
        haechi_home: Path, evidence_key: str, caplog: pytest.LogCaptureFixture) -> None:
    media = RefusingStore(haechi_home / "objects")
    store = CaseStore(takedown_engine(), media)
    data = picture(seed=54)
    key = media_key(hashlib.sha256(data).hexdigest())
    media.put(key, data)
    with caplog.at_level(logging.ERROR, logger="takedown.evidence"):
        [case_id] = store.open_cases([event("refuse.example", 1, data=data, store_key=key)])
    assert read_encrypted_copy(media, store.get(case_id)["evidence_key"]) == data
    assert f"{key} stays in plaintext" in caplog.text


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """The writers of the bank, its index and the local store say their modes themselves, so a
    process that never opened the data folder (DATABASE_URL and HAECHI_STORE set elsewhere)
    writes private files too."""
    data = picture(seed=55)
    (tmp_path / "db").mkdir(mode=0o700)  # the operator's folder, named by DATABASE_URL
    previous = os.umask(0o022)
    try:
        bank = VictimBank(open_engine(f"sqlite:///{tmp_path / 'db' / 'bank.sqlite3'}"),
                          tmp_path / "indexes" / "index")
        bank.add("V1", ImageHasher().registration_hashes(data), source="test")
        bank.save()
        LocalStore(tmp_path / "store").put(media_key(hashlib.sha256(data).hexdigest()), data)
    finally:
        os.umask(previous)
    for folder in ("db", "indexes", "store"):
        assert open_to_others(tmp_path / folder) == {}, folder
    assert list((tmp_path / "indexes" / "index").iterdir())
    assert (tmp_path / "db" / "bank.sqlite3-wal").exists()  # WAL takes the database's mode


def test_an_old_data_folder_is_closed_and_a_shared_one_left_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    old = tmp_path / "old-install"
    old.mkdir()
    old.chmod(0o755)  # as Haechi used to make it
    monkeypatch.setenv("HAECHI_HOME", str(old))
    assert data_home() == old and stat.S_IMODE(old.stat().st_mode) == 0o700
    new = tmp_path / "made" / "here"
    monkeypatch.setenv("HAECHI_HOME", str(new))
    data_home()
    assert open_to_others(tmp_path / "made") == {}
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: not Haechi's to change
    monkeypatch.setenv("HAECHI_HOME", str(shared))
    with caplog.at_level(logging.WARNING, logger="engines.home"):
        data_home()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert "shared folder" in caplog.text
