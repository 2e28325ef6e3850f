"""The alert desk's dispositions of grooming alerts (grooming/excerpts.py, grooming/desk.py).

A disposition (false alert, confirmed, referred to the police or to a support agency) is kept
apart from the flagged excerpt it was given to, with the alert's pseudonyms and numbers, so
that it outlives the excerpt's text: when the excerpt expires and is deleted, `excerpt_id` and
the note become NULL and `text_purged_at` says when. One disposition per excerpt (a unique
index; NULLs, the purged ones, do not count).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "grooming_dispositions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("excerpt_id", sa.Integer),
        sa.Column("conversation", sa.String(64), nullable=False),
        sa.Column("speaker", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64)),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("stages", sa.JSON, nullable=False),
        sa.Column("minor_probability", sa.Float),
        sa.Column("reported_speech", sa.Integer),
        sa.Column("disposition", sa.String(32), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("disposed_by", sa.String(100), nullable=False),
        sa.Column("disposed_at", TZ, nullable=False),
        sa.Column("alerted_at", TZ, nullable=False),
        sa.Column("text_purged_at", TZ),
        sa.UniqueConstraint("excerpt_id", name="uq_grooming_dispositions_excerpt_id"),
    )


def downgrade() -> None:
    op.drop_table("grooming_dispositions")
