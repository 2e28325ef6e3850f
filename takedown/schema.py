"""The takedown tables. Their history lives in Alembic migrations (engines/migrations/): a
change here needs a new revision there, so installations upgrade in place."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from engines.db import UtcDateTime

metadata = MetaData()

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("victim", String(200), nullable=False),
    Column("image_url", Text, nullable=False),
    # SHA-256 of image_url, what a case is looked up by: PostgreSQL cannot index long URLs.
    Column("image_url_sha256", String(64)),
    Column("page_url", Text, nullable=False),
    Column("site", String(255), nullable=False),
    Column("algorithm", String(32), nullable=False),
    Column("distance", Integer, nullable=False),
    Column("second", Float),
    Column("sha256", String(64), nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("server_ip", String(64)),
    Column("headers", JSON, nullable=False),
    Column("store_key", String(200)),
    Column("evidence_key", String(200)),
    Column("fetched_at", UtcDateTime, nullable=False),
    Column("detected_at", UtcDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_at", UtcDateTime, nullable=False),
    Column("signals", JSON, nullable=False),
    Column("reupload_of", Integer, ForeignKey("cases.id")),
    Column("notice_id", Integer, ForeignKey("notices.id")),
    Column("first_sent_at", UtcDateTime),
    Column("last_sent_at", UtcDateTime),
    Column("sent_count", Integer, nullable=False, default=0),
    Column("removed_at", UtcDateTime),
    Column("escalated_at", UtcDateTime),
    Column("last_checked_at", UtcDateTime),
    # A case found in a segment of a streamed video (migration 0007): the stream's manifest
    # and the second of the video its segment starts at (`second` is then the whole video's,
    # and image_url the segment's); NULL for every other file.
    Column("manifest_url", Text),
    Column("segment_start", Float),
    Index("ix_cases_victim_url_sha256", "victim", "image_url_sha256"),
    Index("ix_cases_status", "status"),
    Index("ix_cases_site", "site"),
)

notices = Table(
    "notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(255), nullable=False),
    Column("language", String(8), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("recipient_source", String(40), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("edited", Boolean, nullable=False, default=False),
    Column("legal_basis", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("deadline", UtcDateTime),
    Column("approved_by", String(100)),
    Column("approved_at", UtcDateTime),
    Column("sent_at", UtcDateTime),
    Column("message_id", String(300)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    # The rung of the escalation ladder the notice is addressed at (takedown/ladder.py): the
    # site itself, then its hosting network, its CDN, its registrar, the authority. Notices
    # drafted before the ladder existed are the site's. `party` names who the rung reaches
    # (a network's or registrar's name from RDAP, a CDN's, the authority's); `channel` is
    # how: e-mail, or a web form filled by the browser once a person approves
    # (`form_profile` names it; `confirmation_key` is the evidence-store key of the
    # screenshot of the form's confirmation).
    Column("rung", String(20), nullable=False, server_default="site"),
    Column("party", String(200)),
    Column("channel", String(10), nullable=False, server_default="email"),
    Column("form_profile", String(100)),
    Column("confirmation_key", String(200)),
    Index("ix_notices_site_status", "site", "status"),
)

# A case's climb up the ladder: one row per rung above the site's that the case reached. A
# rung is due (`due_at`) when the rung below it was sent and its deadline passed with the
# content still online; its notice is drafted then, approved by a person, and sent; an
# answer from the party (a reviewer records it) is kept beside it.
escalations = Table(
    "escalations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("rung", String(20), nullable=False),
    Column("notice_id", Integer, ForeignKey("notices.id")),
    Column("party", String(200)),
    Column("due_at", UtcDateTime, nullable=False),
    Column("drafted_at", UtcDateTime),
    Column("sent_at", UtcDateTime),
    Column("answered_at", UtcDateTime),
    Column("answer", Text),
    UniqueConstraint("case_id", "rung", name="uq_escalations_case_rung"),
    Index("ix_escalations_notice", "notice_id"),
)

# What RDAP said about an address or a domain (takedown/rdap.py), kept with its age so that a
# ladder of many cases asks the registries once, and a stale answer is asked again.
rdap_cache = Table(
    "rdap_cache",
    metadata,
    Column("kind", String(10), primary_key=True),  # "ip" or "domain"
    Column("subject", String(255), primary_key=True),
    Column("answer", JSON, nullable=False),
    Column("fetched_at", UtcDateTime, nullable=False),
)

false_matches = Table(
    "false_matches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("victim", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("decided_by", String(100), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    UniqueConstraint("victim", "sha256", name="uq_false_matches_pair"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("case_id", Integer),
    Column("notice_id", Integer),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # Position in the chain, 1, 2, 3... without gaps (takedown/audit.py says why each exists).
    Column("seq", Integer, nullable=False),
    # The hash of the same case's previous entry (GENESIS for its first, and for an entry of
    # no case); NULL only on entries written before the log was keyed.
    Column("case_prev", String(64)),
    # `<key id>:<HMAC-SHA256>` of seq and hash under the audit key; NULL before keying.
    Column("mac", String(80)),
    Index("ix_audit_log_case", "case_id"),
    Index("ux_audit_log_seq", "seq", unique=True),
    Index("ux_audit_log_keyed_prev", "prev_hash", unique=True,
          sqlite_where=text("case_prev IS NOT NULL"),
          postgresql_where=text("case_prev IS NOT NULL")),
)

# The id of audit_head's one row.
AUDIT_HEAD_ROW = 1

# The chain's newest entry, in one row every append updates first: that UPDATE is what
# serialises appends (a row lock on PostgreSQL, the write lock on SQLite).
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint(f"id = {AUDIT_HEAD_ROW}", name="ck_audit_head_one_row"),
)

reviewers = Table(
    "reviewers",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # What the account may do in the review app (takedown/review/roles.py); accounts made
    # before roles existed became reviewers.
    Column("role", String(20), nullable=False, server_default="reviewer"),
)

# The review app's sessions, kept here and not in the cookie, so that logging out, a new
# password or the end of a session ends it on every review task at once.
review_sessions = Table(
    "review_sessions",
    metadata,
    # SHA-256 of the random token in the cookie: reading this table gives no live session.
    Column("id", String(64), primary_key=True),
    Column("reviewer", String(100), ForeignKey("reviewers.name", ondelete="CASCADE"),
           nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    # {case id: POSIX time until which this session may see the case's picture clearly}.
    Column("clear_views", JSON, nullable=False),
    Index("ix_review_sessions_reviewer", "reviewer"),
)

# Failed logins, per account name typed and per client address (takedown/review/throttle.py),
# in the database so that every review task and process counts the same failures.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("scope", String(10), primary_key=True),  # "account" or "address"
    Column("subject", String(100), primary_key=True),  # the name typed, or the address
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", UtcDateTime, nullable=False),
    Column("locked_until", UtcDateTime),
)
