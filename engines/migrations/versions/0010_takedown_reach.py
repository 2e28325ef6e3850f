"""Takedown that reaches whoever can act (issue 17): the escalation ladder's rungs on notices,
each case's climb (escalations), RDAP answers kept with their age (rdap_cache), and what a
victim said of themselves at registration (victims: minor at the time of capture, which
makes a report a CSAM one).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("rung", sa.String(20), nullable=False,
                                   server_default="site"))
        batch.add_column(sa.Column("party", sa.String(200)))
        batch.add_column(sa.Column("channel", sa.String(10), nullable=False,
                                   server_default="email"))
        batch.add_column(sa.Column("form_profile", sa.String(100)))
        batch.add_column(sa.Column("confirmation_key", sa.String(200)))
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("rung", sa.String(20), nullable=False),
        sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id")),
        sa.Column("party", sa.String(200)),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("drafted_at", TZ),
        sa.Column("sent_at", TZ),
        sa.Column("answered_at", TZ),
        sa.Column("answer", sa.Text),
        sa.UniqueConstraint("case_id", "rung", name="uq_escalations_case_rung"),
    )
    op.create_index("ix_escalations_notice", "escalations", ["notice_id"])
    op.create_table(
        "rdap_cache",
        sa.Column("kind", sa.String(10), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
    )
    op.create_table(
        "victims",
        sa.Column("victim", sa.String(200), primary_key=True),
        sa.Column("minor_at_capture", sa.Boolean, nullable=False),
        sa.Column("registered_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("victims")
    op.drop_table("rdap_cache")
    op.drop_index("ix_escalations_notice", "escalations")
    op.drop_table("escalations")
    with op.batch_alter_table("notices") as batch:
        for column in ("confirmation_key", "form_profile", "channel", "party", "rung"):
            batch.drop_column(column)
