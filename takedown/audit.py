"""The append-only audit log of everything done to cases and notices, made to hold against the
people who can write to its database.

A hash chain alone only shows accidents: whoever can write the table can rewrite every entry
and recompute every hash, and concurrent writers that each read the same newest entry fork the
chain for good. So:

- **One chain.** An append first updates the one-row `audit_head` table inside the caller's
  transaction. On PostgreSQL that UPDATE locks the row until the transaction ends, so the next
  appender waits and then reads the head this one wrote; on SQLite any write takes the
  database's write lock for the rest of the transaction (what BEGIN IMMEDIATE would do),
  before the head is read. Each entry carries a gapless sequence number with a unique index,
  and no two keyed entries may name the same predecessor (a unique partial index on
  `prev_hash`): a writer that bypassed the lock fails its INSERT instead of forking the chain.
- **A key the database does not hold.** Each entry carries an HMAC-SHA256 of its sequence
  number and hash under HAECHI_AUDIT_KEY (else a random key kept in the data folder): with
  write access to the database and without the key, a rewritten entry no longer verifies.
- **Each case's own chain.** An entry also names the previous entry of the same case
  (`case_prev`), so the entries of one case exported in a bundle chain among themselves and an
  entry dropped from the middle shows, without the other cases' entries (other victims) in it.
- **A head kept elsewhere.** A MAC does not show the newest entries deleted; `verify` takes
  the head anchored outside the database (takedown.evidence.anchor_chain) and fails when the
  log no longer reaches it or no longer hashes to it.

Entries written before keys existed (no `case_prev`, no MAC) still verify by their hash chain
as long as they come first and a keyed entry follows them: its MAC covers its `prev_hash`,
which pins every entry before it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from engines.home import KeySettingError, data_folder_key, data_home
from engines.settings import current
from takedown.schema import AUDIT_HEAD_ROW, audit_head, audit_log

GENESIS = "0" * 64
# Named in every keyed entry's hash and MAC, so neither can be replayed as the other or as a
# legacy entry's hash.
CHAIN_FORMAT = "haechi-audit/2"
MAC_FORMAT = "haechi-audit-mac/2"

KEY_VARIABLE = "HAECHI_AUDIT_KEY"
KEY_FILE = "audit.key"
# An HMAC key as strong as its SHA-256: 32 random characters or more (`openssl rand -hex 32`
# gives 64); a shorter one is a password someone chose and is refused.
MIN_KEY_CHARS = 32
# A key is named in each MAC by the first characters of a keyed hash of a fixed text: enough to
# tell two keys apart (a writer that was given another key), nothing to learn the key from.
KEY_ID_CHARS = 12


class AuditKeyError(KeySettingError):
    """HAECHI_AUDIT_KEY cannot be used."""


@functools.cache
def _key_in(folder: str) -> bytes:
    del folder  # the cache key: the data folder the key file is in
    return data_folder_key(KEY_FILE, lambda: secrets.token_hex(32).encode()).strip()


def audit_key() -> bytes:
    """HAECHI_AUDIT_KEY, else a random key kept (mode 600) in the data folder.

    Every process that appends must use the same key: in cluster mode set HAECHI_AUDIT_KEY
    (the services do not share a data folder).
    """
    configured = current().audit_key
    if configured:
        if len(configured) < MIN_KEY_CHARS:
            raise AuditKeyError(f"{KEY_VARIABLE} is {len(configured)} characters: it must be "
                                f"at least {MIN_KEY_CHARS} random ones (`openssl rand -hex 32`)")
        return configured.encode()
    return _key_in(str(data_home()))


def key_id(key: bytes) -> str:
    return hmac.new(key, b"haechi-audit-key-id", hashlib.sha256).hexdigest()[:KEY_ID_CHARS]


def entry_mac(key: bytes, seq: int, digest: str) -> str:
    """The stored MAC of entry `seq` whose hash is `digest`: `<key id>:<HMAC-SHA256>`."""
    mac = hmac.new(key, f"{MAC_FORMAT}:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()
    return f"{key_id(key)}:{mac}"


def time_text(at: dt.datetime) -> str:
    """An entry's time in the exact text form its hash covers."""
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash of an entry as stored or exported (its time as `time_text`).

    A keyed entry's hash covers its sequence number and its case's previous entry too; an
    entry written before keys existed (no `case_prev`) is hashed as it was then. This function
    is copied into every bundle's verify.py, so it uses the standard library alone.
    """
    fields = [entry["prev_hash"], entry["at"], entry["case_id"], entry["notice_id"],
              entry["actor"], entry["action"], entry["detail"]]
    if entry.get("case_prev") is not None:
        fields = [CHAIN_FORMAT, entry["seq"], entry["case_prev"], *fields]
    payload = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def append(conn: Connection, *, actor: str, action: str, at: dt.datetime,
           case_id: int | None = None, notice_id: int | None = None,
           detail: dict[str, Any] | None = None) -> str:
    """Add one entry inside the caller's transaction; returns its hash.

    The head stays locked until the caller's transaction ends, so keep appends late in long
    transactions; a rolled-back transaction takes its sequence numbers with it (no gaps).
    """
    key = audit_key()
    # The head first, before anything is read: this UPDATE is the lock (see the module's
    # docstring). Then read back, not RETURNING, which SQLite before 3.35 lacks.
    this_row = audit_head.c.id == AUDIT_HEAD_ROW
    conn.execute(audit_head.update().where(this_row).values(seq=audit_head.c.seq + 1))
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(this_row)).first()
    if head is None:
        raise RuntimeError("the audit_head row is missing: the takedown tables were not "
                           "created by their migrations")
    seq, prev = head
    case_prev = GENESIS
    if case_id is not None:
        case_prev = conn.execute(
            select(audit_log.c.hash).where(audit_log.c.case_id == case_id)
            .order_by(audit_log.c.seq.desc()).limit(1)
        ).scalar() or GENESIS
    entry = {"seq": seq, "prev_hash": prev, "case_prev": case_prev, "at": time_text(at),
             "case_id": case_id, "notice_id": notice_id, "actor": actor, "action": action,
             "detail": detail or {}}
    digest = entry_hash(entry)
    conn.execute(audit_log.insert(), [{
        **entry, "at": at, "hash": digest, "mac": entry_mac(key, seq, digest)}])
    conn.execute(audit_head.update().where(this_row).values(hash=digest))
    return digest


@dataclass(frozen=True)
class ChainHead:
    """Entry `seq` of the chain had hash `hash`, as anchored at `at` (ISO 8601)."""

    seq: int
    hash: str
    at: str = ""


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_bad_id: int | None = None
    reason: str = ""
    head: ChainHead | None = None
    anchor: ChainHead | None = None


class _Walk:
    """The state of a walk along the chain: what the next entry must follow."""

    def __init__(self, key: bytes, anchor: ChainHead | None) -> None:
        self.key, self.ours, self.anchor = key, key_id(key), anchor
        self.prev, self.count, self.legacy, self.keyed = GENESIS, 0, 0, False
        self.case_last: dict[int, str] = {}

    def problem(self, row: Mapping[str, Any]) -> str | None:
        """What is wrong with `row` as the next entry (None: it follows), remembering it."""
        self.count += 1
        at = row["at"]
        entry = {**row, "at": time_text(at) if isinstance(at, dt.datetime) else at}
        if row["seq"] != self.count:
            return (f"should be entry {self.count} (an entry was removed, inserted or "
                    "renumbered)")
        if row["prev_hash"] != self.prev:
            return ("does not follow the one before it (an entry was removed, inserted or "
                    "reordered)")
        if entry_hash(entry) != row["hash"]:
            return "its content was changed"
        if row["case_prev"] is None:
            if self.keyed or row["mac"] is not None:
                return "is not keyed, yet it follows keyed entries (written around the key)"
            self.legacy += 1
        else:
            problem = self._keyed_problem(row)
            if problem:
                return problem
            self.keyed = True
        anchor = self.anchor
        if anchor is not None and row["seq"] == anchor.seq and row["hash"] != anchor.hash:
            return (f"differs from the head anchored at {anchor.at} (the log was rewritten up "
                    "to there)")
        if row["case_id"] is not None:
            self.case_last[row["case_id"]] = row["hash"]
        self.prev = row["hash"]
        return None

    def _keyed_problem(self, row: Mapping[str, Any]) -> str | None:
        if not row["mac"]:
            return "has no MAC (written around the log's key)"
        kid = row["mac"].partition(":")[0]
        if kid != self.ours:
            return (f"was MACed with another key ({kid}; this installation's is {self.ours}): "
                    f"every writer must share {KEY_VARIABLE}, or the entry was forged")
        if not hmac.compare_digest(row["mac"], entry_mac(self.key, row["seq"], row["hash"])):
            return "its MAC does not match: rewritten by someone without the audit key"
        case_id = row["case_id"]
        expected = self.case_last.get(case_id, GENESIS) if case_id is not None else GENESIS
        if row["case_prev"] != expected:
            return "does not follow its case's previous entry"
        return None

    def end(self, head: ChainHead | None) -> ChainCheck:
        count, ended, anchor = self.count, ChainHead(self.count, self.prev), self.anchor
        if self.legacy and not self.keyed:
            return ChainCheck(False, count, None, f"none of the {self.legacy} entries carries "
                              "a MAC: entries from before the log was keyed are vouched for by "
                              "the first keyed entry after them, and there is none yet (the "
                              "next entry appended seals them) or the MACs were stripped", ended)
        if head is not None and (head.seq, head.hash) != (ended.seq, ended.hash):
            return ChainCheck(False, count, None, f"the log ends at entry {count} but its head "
                              f"row says entry {head.seq}: entries were removed, or the head "
                              "was altered", ended)
        if anchor is not None and count < anchor.seq:
            return ChainCheck(False, count, None, f"the log ends at entry {count} but the head "
                              f"anchored at {anchor.at} was entry {anchor.seq}: entries were "
                              "removed", ended, anchor)
        return ChainCheck(True, count, head=ended, anchor=anchor)


def verify_rows(rows: Iterable[Mapping[str, Any]], key: bytes,
                head: ChainHead | None = None, anchor: ChainHead | None = None) -> ChainCheck:
    """Check stored entries, in sequence order, against the chain's rules and `key`; `head` is
    the audit_head row, `anchor` the newest head anchored outside the database."""
    walk = _Walk(key, anchor)
    for row in rows:
        problem = walk.problem(row)
        if problem:
            return ChainCheck(False, walk.count, row["id"], f"entry {row['seq']} {problem}")
    return walk.end(head)


# Entries read from the database per round trip while a chain is verified: the walk keeps one
# batch in memory, not the log.
VERIFY_BATCH = 1000


def verify(engine: Engine, anchor: ChainHead | None = None, key: bytes | None = None
           ) -> ChainCheck:
    """Check the whole log: order, hashes, MACs (with `key`, default `audit_key()`), its head
    row and, when given, the head anchored outside the database
    (takedown.evidence.verify_audit finds and checks the newest anchor for you)."""
    key = key if key is not None else audit_key()
    with engine.connect() as conn:
        stored = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
        head = ChainHead(stored.seq, stored.hash) if stored is not None else None
        rows = conn.execution_options(yield_per=VERIFY_BATCH).execute(
            select(audit_log).order_by(audit_log.c.seq)).mappings()
        return verify_rows(rows, key, head, anchor)


EXPORTED_FIELDS = ("id", "seq", "at", "case_id", "notice_id", "actor", "action", "detail",
                   "prev_hash", "case_prev", "hash")


def entries_for_case(engine: Engine, case_id: int) -> list[dict[str, Any]]:
    """The case's entries as exported, oldest first: times in the exact text form their hashes
    cover, MACs left out (nobody without the key can check them)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(*(audit_log.c[name] for name in EXPORTED_FIELDS))
            .where(audit_log.c.case_id == case_id).order_by(audit_log.c.seq)
        ).mappings().all()
    return [{**row, "at": time_text(row["at"])} for row in rows]

