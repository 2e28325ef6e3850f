"""The seen index keeps what a re-scan needs to find every copy the live match finds: the
global hashes of every query view (the picture as found, each crop the peelers find, its middle
rows), and the visual words of its local features.

Until this revision each crawled file kept one upright PDQ hash of the picture as found, so a
copy the live match found only through a peeled view (a letterbox, a caption band) or through
the local stage (a screenshot, a tilt) was invisible to a re-scan. `code` now holds the PDQ hash
of every view, upright, one after the other (a row of an earlier release holds one: still read
as it is); `phash` the same for pHash; `words` the local features' visual words
(matcher/seen_words.py). Both new columns are NULL on the rows of earlier releases, which are
searched by their one PDQ hash, as before.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("seen_hashes", sa.Column("phash", sa.LargeBinary))
    op.add_column("seen_hashes", sa.Column("words", sa.LargeBinary))


def downgrade() -> None:
    with op.batch_alter_table("seen_hashes") as batch:
        batch.drop_column("words")
        batch.drop_column("phash")
