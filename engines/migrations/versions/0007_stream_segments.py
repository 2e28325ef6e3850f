"""A file fetched as a segment of a streamed video (HLS, DASH) names its stream, and so do its
cases: the manifest URL and the second of the video the segment starts at.

A case found in one segment of an hour of video said only the segment's URL (one of hundreds,
often named by a number) and the second within it; the host is told the video and the time
instead. Both columns are NULL for every file that is no segment, rows of earlier releases
included: nothing is filled in.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The tables that keep where a segment belongs: the crawler's record of the fetch and the case.
TABLES = ("fetched_files", "cases")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("manifest_url", sa.Text))
        op.add_column(table, sa.Column("segment_start", sa.Float))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("segment_start")
            batch.drop_column("manifest_url")
