"""Cases opened before HAECHI_EVIDENCE_KEY was set are sealed by `haechi cases seal`: each gets
its encrypted evidence copy, its media copy leaves the clear, and a second run changes nothing
(issue 12: "a one-off sealing of media matched before the key was set"). Then the key is
rotated with `haechi cases rekey`, after which the old key can be dropped."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from engines.objects import LocalStore, media_key
from engines.sealed import KEY_VARIABLE, SealedMediaError, media_bytes, sealed_key
from takedown.cases import CaseStore
from takedown.evidence import read_encrypted_copy
from testkit.synthetic import encode, synthetic_picture
from tests.takedown_helpers import FakeClock, event
from tests.test_crawl import HAECHI


def seal(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([HAECHI, "cases", "seal", "--json"], env=env, capture_output=True,
                          text=True, timeout=120)


def test_cases_opened_without_a_key_are_sealed_once_it_is_set(haechi_home: Path,
                                                                 monkeypatch) -> None:
    store = LocalStore(haechi_home / "objects")
    files = {n: encode(synthetic_picture(seed=70 + n)) for n in (1, 2)}
    events = []
    for n, data in files.items():
        key = media_key(event("a.example", n, data=data).sha256)
        store.put(key, data)
        events.append(event("a.example", n, data=data, store_key=key))
    gone = event("b.example", 1, store_key="media/ff/gone")  # its file was never stored
    cases = CaseStore.open(store=store, clock=FakeClock())
    opened = cases.open_cases([*events, gone])
    assert len(opened) == 3 and all(store.exists(e.store_key) for e in events)

    env = {**os.environ, "HAECHI_HOME": str(haechi_home), "HAECHI_STORE": str(store.root)}
    refused = seal(env)
    assert refused.returncode == 3 and KEY_VARIABLE in refused.stderr

    key = Fernet.generate_key().decode()
    env[KEY_VARIABLE] = key
    first = seal(env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"copied": 2, "sealed": 2, "missing": 1}
    monkeypatch.setenv(KEY_VARIABLE, key)
    for e in events:
        assert not store.exists(e.store_key) and store.exists(sealed_key(e.store_key))
        assert media_bytes(store, e.store_key) == files[int(e.image_url[-5])]
    for case in cases.list():
        if case["site"] == "a.example":
            copy = cases.get(case["id"])["evidence_key"]
            assert read_encrypted_copy(store, copy) == files[int(case["image_url"][-5])]
    again = seal(env)
    assert json.loads(again.stdout) == {"copied": 0, "sealed": 2, "missing": 1}


def test_a_rotated_key_takes_over_and_the_old_one_can_be_dropped(haechi_home: Path,
                                                                  monkeypatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_VARIABLE, old)
    store = LocalStore(haechi_home / "objects")
    data = encode(synthetic_picture(seed=81))
    found = event("a.example", 1, data=data, store_key=media_key(event("a.example", 1,
                                                                       data=data).sha256))
    store.put(found.store_key, data)
    cases = CaseStore.open(store=store, clock=FakeClock())
    [case_id] = cases.open_cases([found])
    copy = cases.get(case_id)["evidence_key"]
    assert copy and store.exists(sealed_key(found.store_key))

    env = {**os.environ, "HAECHI_HOME": str(haechi_home), "HAECHI_STORE": str(store.root),
           KEY_VARIABLE: f"{new},{old}"}
    rotated = subprocess.run([HAECHI, "cases", "rekey", "--json"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout) == {"evidence": 1, "media": 1}
    monkeypatch.setenv(KEY_VARIABLE, new)  # the old key is gone
    assert read_encrypted_copy(store, copy) == data
    assert media_bytes(store, found.store_key) == data
    monkeypatch.setenv(KEY_VARIABLE, old)
    with pytest.raises(SealedMediaError):
        media_bytes(store, found.store_key)
