"""Takedown tables: cases, notices, false matches, the audit log, reviewers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(255), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("recipient_source", sa.String(40), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("edited", sa.Boolean, nullable=False),
        sa.Column("legal_basis", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("deadline", TZ),
        sa.Column("approved_by", sa.String(100)),
        sa.Column("approved_at", TZ),
        sa.Column("sent_at", TZ),
        sa.Column("message_id", sa.String(300)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_notices_site_status", "notices", ["site", "status"])
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("victim", sa.String(200), nullable=False),
        sa.Column("image_url", sa.Text, nullable=False),
        sa.Column("page_url", sa.Text, nullable=False),
        sa.Column("site", sa.String(255), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("distance", sa.Integer, nullable=False),
        sa.Column("second", sa.Float),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("server_ip", sa.String(64)),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("store_key", sa.String(200)),
        sa.Column("evidence_key", sa.String(200)),
        sa.Column("fetched_at", TZ, nullable=False),
        sa.Column("detected_at", TZ, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_at", TZ, nullable=False),
        sa.Column("signals", sa.JSON, nullable=False),
        sa.Column("reupload_of", sa.Integer, sa.ForeignKey("cases.id")),
        sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id")),
        sa.Column("first_sent_at", TZ),
        sa.Column("last_sent_at", TZ),
        sa.Column("sent_count", sa.Integer, nullable=False),
        sa.Column("removed_at", TZ),
        sa.Column("escalated_at", TZ),
        sa.Column("last_checked_at", TZ),
    )
    op.create_index("ix_cases_victim_url", "cases", ["victim", "image_url"])
    op.create_index("ix_cases_status", "cases", ["status"])
    op.create_index("ix_cases_site", "cases", ["site"])
    op.create_table(
        "false_matches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("victim", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=False),
        sa.Column("decided_at", TZ, nullable=False),
        sa.UniqueConstraint("victim", "sha256", name="uq_false_matches_pair"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("case_id", sa.Integer),
        sa.Column("notice_id", sa.Integer),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_case", "audit_log", ["case_id"])
    op.create_table(
        "reviewers",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in ("reviewers", "audit_log", "false_matches", "cases", "notices"):
        op.drop_table(table)
