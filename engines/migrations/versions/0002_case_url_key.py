"""Cases are found by the SHA-256 of their URL instead of the URL itself.

PostgreSQL refuses a btree index entry over 2,704 bytes, so while (victim, image_url) was
indexed, a site whose image URLs were longer than that kept its own cases from ever opening
(and, while all of a batch's cases shared one transaction, everyone else's). The digest is
64 characters whatever the URL.

Revision ID: 0002
Revises: 0001
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The rows a revision reads and writes, as they are at this revision (not takedown/schema.py,
# which moves on with later revisions).
_cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("image_url", sa.Text),
                  sa.column("image_url_sha256", sa.String(64)))
# Rows updated per statement while the digests of existing cases are filled in.
BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.add_column("cases", sa.Column("image_url_sha256", sa.String(64)))
    connection = op.get_bind()
    update = _cases.update().where(_cases.c.id == sa.bindparam("case_id")).values(
        image_url_sha256=sa.bindparam("digest"))
    rows = connection.execute(sa.select(_cases.c.id, _cases.c.image_url)).all()
    for start in range(0, len(rows), BACKFILL_BATCH):
        # The same digest as takedown.cases.url_key, spelt out: a revision must not change
        # meaning when the application's code does.
        connection.execute(update, [
            {"case_id": case_id, "digest": hashlib.sha256(url.encode()).hexdigest()}
            for case_id, url in rows[start:start + BACKFILL_BATCH]])
    op.drop_index("ix_cases_victim_url", table_name="cases")
    op.create_index("ix_cases_victim_url_sha256", "cases", ["victim", "image_url_sha256"])


def downgrade() -> None:
    op.drop_index("ix_cases_victim_url_sha256", table_name="cases")
    op.create_index("ix_cases_victim_url", "cases", ["victim", "image_url"])
    op.drop_column("cases", "image_url_sha256")
