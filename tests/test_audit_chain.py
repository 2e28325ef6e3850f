"""The audit log holds against concurrent writers and against people with write access to its
database: appends from 4 threads on PostgreSQL and 2 processes on SQLite keep one chain; a fork
is refused by the database even when the head lock is bypassed; every entry rewritten without
the key, MACs stripped, or the newest entries deleted (caught by the anchor) fails verify;
entries from before the log was keyed still verify once sealed."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import IntegrityError

from engines.home import data_folder_key
from engines.objects import LocalStore
from takedown import audit
from takedown.cases import CaseStore
from takedown.database import alembic_config, takedown_engine
from takedown.evidence import ANCHOR_PREFIX, EvidenceError, anchor_chain, verify_audit
from takedown.schema import audit_head, audit_log
from tests.takedown_helpers import START, event
from tests.test_takedown import postgres_url  # noqa: F401  (the PostgreSQL fixture)

ROOT = Path(__file__).resolve().parent.parent
# Appends per writer: enough that unserialised writers forked the chain every run (18 forks
# in 300 entries with 2 processes on SQLite, 64 in 240 with 4 threads on PostgreSQL).
PER_PROCESS, PER_THREAD = 150, 60

# One writer process on SQLite: waits for a common start time so both contend from the first
# append, then appends to three cases in turns, pausing between transactions as a real writer
# does (SQLite's busy handler is not fair: without pauses one writer may finish first).
APPENDER = """
import sys, time
from takedown import audit
from takedown.database import takedown_engine
from tests.takedown_helpers import START
engine = takedown_engine()
start, name, count = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
for n in range(count):
    with engine.begin() as conn:
        audit.append(conn, actor=name, action="test:append", at=START, case_id=n % 3 + 1,
                     detail={"n": n})
    time.sleep(0.005)
"""


def append(engine: Engine, n: int, actor: str = "tester", case_id: int | None = 1) -> str:
    with engine.begin() as conn:
        return audit.append(conn, actor=actor, action="test:append", at=START, case_id=case_id,
                            detail={"n": n})


def stored(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq))
                .mappings()]


def assert_one_chain(engine: Engine, entries: int) -> None:
    rows = stored(engine)
    assert [r["seq"] for r in rows] == list(range(1, entries + 1))
    assert len({r["prev_hash"] for r in rows}) == entries  # no entry has two successors
    check = audit.verify(engine)
    assert check.ok, check.reason
    assert check.entries == entries


@pytest.fixture
def sqlite_engine(haechi_home: Path) -> Engine:
    return takedown_engine()


def test_two_processes_on_sqlite_keep_one_chain(sqlite_engine: Engine) -> None:
    append(sqlite_engine, -1)  # tables and key made before the writers start
    start = time.time() + 2
    writers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(start), name,
                                 str(PER_PROCESS)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
               for name in ("writer-a", "writer-b")]
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors
    assert_one_chain(sqlite_engine, 2 * PER_PROCESS + 1)
    actors = [r["actor"] for r in stored(sqlite_engine)]
    # They did contend: the two writers' entries interleave.
    assert sum(a != b for a, b in itertools.pairwise(actors[1:])) > 2


def test_four_threads_on_postgresql_keep_one_chain(request: pytest.FixtureRequest) -> None:
    engine = takedown_engine(request.getfixturevalue("postgres_url"))
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        start.wait()
        try:
            for n in range(PER_THREAD):
                append(engine, n, actor=name, case_id=n % 5 + 1)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(f"thread-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert_one_chain(engine, 4 * PER_THREAD)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, haechi_home: Path) -> Engine:
    if request.param == "sqlite":
        return takedown_engine()
    return takedown_engine(request.getfixturevalue("postgres_url"))


def test_a_fork_is_refused_by_the_database_even_around_the_lock(engine: Engine) -> None:
    for n in range(3):
        append(engine, n)
    second = stored(engine)[1]
    # A writer that skipped the head lock and read entry 2 as the newest: its entry takes a
    # number already taken, or follows an entry that already has a successor.
    for clash in ({"seq": second["seq"]}, {"seq": 99, "prev_hash": second["prev_hash"]}):
        forked = {**second, "id": None, "hash": "f" * 64, **clash}
        del forked["id"]
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(audit_log.insert(), [forked])
    assert_one_chain(engine, 3)


def test_a_rolled_back_append_leaves_no_gap(sqlite_engine: Engine) -> None:
    append(sqlite_engine, 1)
    with pytest.raises(RuntimeError), sqlite_engine.begin() as conn:
        audit.append(conn, actor="tester", action="test:append", at=START, case_id=1)
        raise RuntimeError("the caller's transaction fails after its append")
    append(sqlite_engine, 2)
    assert_one_chain(sqlite_engine, 2)


def test_each_case_has_its_own_chain(sqlite_engine: Engine) -> None:
    for n in range(6):
        append(sqlite_engine, n, case_id=n % 2 + 1)
    append(sqlite_engine, 7, case_id=None)
    rows = stored(sqlite_engine)
    for case_id in (1, 2):
        own = [r for r in rows if r["case_id"] == case_id]
        assert [r["case_prev"] for r in own] == [audit.GENESIS] + [r["hash"] for r in own[:-1]]
    assert rows[-1]["case_prev"] == audit.GENESIS


def rewrite_every_entry(engine: Engine, change, mac=lambda row: row["mac"]) -> None:
    """What someone with write access to the database and without the key can do: change each
    entry, recompute every hash and link so the chain is whole again, and fix the head."""
    rows = stored(engine)
    prev, case_last = audit.GENESIS, {}
    with engine.begin() as conn:
        for row in rows:
            row = change(dict(row))
            row["at"] = audit.time_text(row["at"])
            row["prev_hash"] = prev
            if row["case_prev"] is not None:
                row["case_prev"] = case_last.get(row["case_id"], audit.GENESIS)
            row["hash"] = audit.entry_hash(row)
            case_last[row["case_id"]] = prev = row["hash"]
            conn.execute(text("UPDATE audit_log SET actor = :actor, detail = :detail, "
                              "prev_hash = :prev_hash, case_prev = :case_prev, hash = :hash, "
                              "mac = :mac WHERE id = :id"),
                         {**row, "detail": json.dumps(row["detail"]), "mac": mac(row)})
        conn.execute(audit_head.update().values(hash=prev))


def test_rewriting_every_entry_without_the_key_fails_verify(sqlite_engine: Engine) -> None:
    store = CaseStore(sqlite_engine)
    store.open_cases([event("a.example", n) for n in range(3)])
    assert audit.verify(sqlite_engine).ok

    def another_victim(row: dict) -> dict:
        if row["action"] == "case:opened":
            row["detail"]["event"]["victim"] = "someone else"
        return row

    rewrite_every_entry(sqlite_engine, another_victim)
    check = audit.verify(sqlite_engine)
    assert not check.ok and "MAC does not match" in check.reason
    assert check.first_bad_id == stored(sqlite_engine)[0]["id"]
    # Recomputed MACs under a key of the forger's own are named as another key's.
    forger = b"k" * 32
    rewrite_every_entry(sqlite_engine, another_victim,
                        mac=lambda row: audit.entry_mac(forger, row["seq"], row["hash"]))
    assert "another key" in audit.verify(sqlite_engine).reason
    # Nor does stripping the MACs and the case links, to pass as entries from before keying.
    rewrite_every_entry(sqlite_engine, lambda row: {**row, "case_prev": None},
                        mac=lambda row: None)
    check = audit.verify(sqlite_engine)
    assert not check.ok and "carries a MAC" in check.reason


def test_deleting_the_newest_entries_is_caught_by_the_anchor(sqlite_engine: Engine,
                                                             haechi_home: Path) -> None:
    media = LocalStore(haechi_home / "objects")
    for n in range(5):
        append(sqlite_engine, n)
    anchored = anchor_chain(sqlite_engine, media)
    assert anchored is not None and anchored.seq == 5
    assert anchor_chain(sqlite_engine, media) == anchored  # nothing new: no new anchor
    for n in range(5, 8):
        append(sqlite_engine, n)
    assert anchor_chain(sqlite_engine, media).seq == 8
    assert sorted(p.name for p in (haechi_home / "objects" / ANCHOR_PREFIX).iterdir()) == [
        "00000001.json", "00000002.json"]
    assert verify_audit(sqlite_engine, media).ok
    # Entries 7 and 8 deleted and the head row put back to entry 6: the log is whole, every
    # MAC right, and only the anchor of entry 8 shows what is gone.
    rows = stored(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq > 6))
        conn.execute(audit_head.update().values(seq=6, hash=rows[5]["hash"]))
    assert audit.verify(sqlite_engine).ok
    check = verify_audit(sqlite_engine, media)
    assert not check.ok and "anchored" in check.reason and "entry 8" in check.reason
    with pytest.raises(EvidenceError, match="does not verify"):
        anchor_chain(sqlite_engine, media)


def test_an_anchor_not_signed_by_the_institution_fails(sqlite_engine: Engine,
                                                       haechi_home: Path) -> None:
    media = LocalStore(haechi_home / "objects")
    append(sqlite_engine, 1)
    anchor_chain(sqlite_engine, media)
    forged = haechi_home / "objects" / ANCHOR_PREFIX / "00000002.json"
    document = json.loads((forged.with_name("00000001.json")).read_text())
    document["anchor"]["seq"] = 1000
    forged.write_text(json.dumps(document))
    check = verify_audit(sqlite_engine, media)
    assert not check.ok and "not signed by this institution's key" in check.reason


def test_entries_from_before_keying_verify_once_a_keyed_entry_seals_them(
        haechi_home: Path) -> None:
    url = f"sqlite:///{haechi_home / 'legacy.sqlite3'}"
    haechi_home.mkdir(parents=True, exist_ok=True)
    legacy = create_engine(url)
    config = alembic_config()
    with legacy.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    prev = audit.GENESIS
    with legacy.begin() as conn:  # entries as the log wrote them before revision 0003
        for n in range(3):
            entry = {"prev_hash": prev, "at": audit.time_text(START), "case_id": 1,
                     "notice_id": None, "actor": "old", "action": "test:old",
                     "detail": {"n": n}}
            prev = audit.entry_hash(entry)
            conn.execute(text("INSERT INTO audit_log (at, case_id, actor, action, detail, "
                              "prev_hash, hash) VALUES (:at, 1, 'old', 'test:old', :detail, "
                              ":prev_hash, :hash)"),
                         {**entry, "at": START, "detail": json.dumps(entry["detail"]),
                          "hash": prev})
    legacy.dispose()
    engine = takedown_engine(url)
    check = audit.verify(engine)
    assert not check.ok and "none of the 3 entries carries a MAC" in check.reason
    append(engine, 3)
    assert_one_chain(engine, 4)
    assert stored(engine)[3]["case_prev"] == prev  # the case's chain goes on from its past
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone' WHERE seq = 2"))
    assert not audit.verify(engine).ok


def test_the_audit_key(monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine,
                       haechi_home: Path) -> None:
    append(sqlite_engine, 1)
    kept = haechi_home / audit.KEY_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert audit.verify(sqlite_engine).ok
    monkeypatch.setenv(audit.KEY_VARIABLE, "short")
    with pytest.raises(audit.AuditKeyError, match="at least 32"):
        audit.audit_key()
    monkeypatch.setenv(audit.KEY_VARIABLE, "x" * 40)
    check = audit.verify(sqlite_engine)
    assert not check.ok and "another key" in check.reason


def test_a_data_folder_key_is_made_once_whoever_asks_first(haechi_home: Path) -> None:
    made = []

    def make() -> bytes:
        made.append(1)
        time.sleep(0.05)
        return os.urandom(16).hex().encode()

    answers: list[bytes] = []
    threads = [threading.Thread(target=lambda: answers.append(
        data_folder_key("shared.key", make))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(answers)) == 1 and len(answers) == 4
    assert (haechi_home / "shared.key").read_bytes() == answers[0]
    assert [p.name for p in haechi_home.iterdir() if p.name.startswith(".")] == []


def test_the_audit_commands_anchor_check_and_hand_out_the_public_key(haechi_home: Path) -> None:
    def haechi(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(Path(sys.executable).with_name("haechi")), *args],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HAECHI_HOME": str(haechi_home)})

    assert "nothing to anchor" in haechi("cases", "anchor").stdout
    CaseStore(takedown_engine(), clock=lambda: START).open_cases([event("a.example", 1)])
    anchored = json.loads(haechi("cases", "anchor", "--json").stdout)
    assert anchored["seq"] >= 1
    checked = haechi("cases", "audit", "--json")
    assert checked.returncode == 0
    assert json.loads(checked.stdout)["anchor"]["seq"] == anchored["seq"]
    assert "-----BEGIN PUBLIC KEY-----" in haechi("cases", "public-key").stdout
    # An entry rewritten behind the log's back is found, and the command says so by its exit.
    with takedown_engine().begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 1).values(actor="someone"))
    altered = haechi("cases", "audit")
    assert altered.returncode == 1 and "ALTERED" in altered.stdout
