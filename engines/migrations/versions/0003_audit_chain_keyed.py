"""The audit log becomes one keyed chain: a gapless sequence number with a unique index, the
case's previous entry, a MAC, and the one-row head that every append locks first.

Concurrent appenders each read the same newest entry and forked the chain (takedown/audit.py
says how appends are serialised now). Existing entries are numbered in the order of their ids
and keep their hashes; they have no MAC and no case link (the key is not the database's to
know), and are vouched for by the first keyed entry after them. A chain that forked before
this revision still fails `verify` at the fork: that is what happened to it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
HEAD_ROW = 1
# The rows this revision reads and writes, as they are at this revision (not
# takedown/schema.py, which moves on with later revisions).
_audit = sa.table("audit_log", sa.column("id", sa.Integer), sa.column("hash", sa.String(64)),
                  sa.column("seq", sa.Integer))
# Rows numbered per statement while existing entries get their sequence numbers.
BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("seq", sa.Integer))
    op.add_column("audit_log", sa.Column("case_prev", sa.String(64)))
    op.add_column("audit_log", sa.Column("mac", sa.String(80)))
    connection = op.get_bind()
    rows = connection.execute(sa.select(_audit.c.id, _audit.c.hash).order_by(_audit.c.id)).all()
    number = _audit.update().where(_audit.c.id == sa.bindparam("entry")).values(
        seq=sa.bindparam("position"))
    for start in range(0, len(rows), BACKFILL_BATCH):
        connection.execute(number, [
            {"entry": entry, "position": start + offset + 1}
            for offset, (entry, _) in enumerate(rows[start:start + BACKFILL_BATCH])])
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("seq", existing_type=sa.Integer, nullable=False)
    op.create_index("ux_audit_log_seq", "audit_log", ["seq"], unique=True)
    keyed = sa.text("case_prev IS NOT NULL")
    op.create_index("ux_audit_log_keyed_prev", "audit_log", ["prev_hash"], unique=True,
                    sqlite_where=keyed, postgresql_where=keyed)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint(f"id = {HEAD_ROW}", name="ck_audit_head_one_row"),
    )
    op.bulk_insert(head, [{"id": HEAD_ROW, "seq": len(rows),
                           "hash": rows[-1].hash if rows else GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ux_audit_log_keyed_prev", table_name="audit_log")
    op.drop_index("ux_audit_log_seq", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("mac")
        batch.drop_column("case_prev")
        batch.drop_column("seq")
