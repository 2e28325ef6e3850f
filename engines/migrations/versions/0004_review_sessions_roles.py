"""The review app keeps its sessions and failed logins in the database, and accounts get a role.

Sessions were signed cookies: logging out cleared the browser's copy, but a copy taken before
stayed valid for eight hours on every review task. Now the cookie holds a random token whose
SHA-256 names a row here, and ending the row ends the session everywhere. Failed logins are
counted here too (per name typed and per client address), so that every task and process
refuses the same guesser. Accounts made before this revision become reviewers: they keep
revealing, editing, approving and rejecting, and sending from the app needs a sender (or an
admin) from now on (takedown/review/roles.py).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The role an account made before roles existed gets (the least of the roles that still does
# the review: no sending, no audit log).
EARLIER_ACCOUNTS_ROLE = "reviewer"


def upgrade() -> None:
    op.add_column("reviewers", sa.Column("role", sa.String(20), nullable=False,
                                         server_default=EARLIER_ACCOUNTS_ROLE))
    op.create_table(
        "review_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("reviewer", sa.String(100),
                  sa.ForeignKey("reviewers.name", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clear_views", sa.JSON, nullable=False),
    )
    op.create_index("ix_review_sessions_reviewer", "review_sessions", ["reviewer"])
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.String(10), primary_key=True),
        sa.Column("subject", sa.String(100), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_index("ix_review_sessions_reviewer", table_name="review_sessions")
    op.drop_table("review_sessions")
    with op.batch_alter_table("reviewers") as batch:
        batch.drop_column("role")
