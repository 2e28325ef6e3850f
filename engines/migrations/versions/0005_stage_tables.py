"""The crawler's, the matcher's and grooming's tables join the migrations: fetched files and
sites, victim hashes, seen hashes and flagged chat excerpts.

Until this revision those stages made their tables with `metadata.create_all` whenever they
opened the database, and only takedown's tables had a history, so a change to any of them had
no way onto an existing database. A database of that release has them already, made from the
very definitions below: a table that exists is left as it is, rows and all, and one that is
missing (a new database, or one a stage never opened) is made here.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# crawler/security_txt.py's MAX_LANGUAGE_TAG_CHARS when this revision was written.
LANGUAGE_TAG_CHARS = 35


def _fetched_files() -> None:
    op.create_table(
        "fetched_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("page_url", sa.Text, nullable=False),
        sa.Column("site", sa.String(255), nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("server_ip", sa.String(64)),
        sa.Column("store_key", sa.String(200)),
    )
    op.create_index("ix_fetched_files_sha256", "fetched_files", ["sha256"])
    op.create_index("ix_fetched_files_site", "fetched_files", ["site"])


def _sites() -> None:
    op.create_table(
        "sites",
        sa.Column("site", sa.String(255), primary_key=True),
        sa.Column("language", sa.String(LANGUAGE_TAG_CHARS)),
        sa.Column("charset", sa.String(40)),
        sa.Column("contacts", sa.JSON, nullable=False),
        sa.Column("preferred_languages", sa.JSON, nullable=False),
        sa.Column("security_txt_url", sa.Text),
        sa.Column("updated_at", TZ, nullable=False),
    )


def _victim_hashes() -> None:
    op.create_table(
        "victim_hashes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("victim", sa.String(200), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("code", sa.LargeBinary, nullable=False),
        sa.Column("view", sa.String(40), nullable=False),
        sa.Column("quality", sa.Integer, nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("registered_at", TZ, nullable=False),
    )
    op.create_index("ix_victim_hashes_victim", "victim_hashes", ["victim"])
    op.create_index("ix_victim_hashes_algorithm_code", "victim_hashes", ["algorithm", "code"])


def _seen_hashes() -> None:
    op.create_table(
        "seen_hashes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("second", sa.Float, nullable=False),
        sa.Column("code", sa.LargeBinary, nullable=False),
        sa.Column("seen_at", TZ, nullable=False),
        sa.UniqueConstraint("sha256", "second", name="uq_seen_hashes_file_frame"),
    )


def _grooming_excerpts() -> None:
    op.create_table(
        "grooming_excerpts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation", sa.String(64), nullable=False),
        sa.Column("speaker", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("alert", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_grooming_excerpts_expires_at", "grooming_excerpts", ["expires_at"])


TABLES: dict[str, Callable[[], None]] = {
    "fetched_files": _fetched_files,
    "sites": _sites,
    "victim_hashes": _victim_hashes,
    "seen_hashes": _seen_hashes,
    "grooming_excerpts": _grooming_excerpts,
}


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in existing:
            create()


def downgrade() -> None:
    """Leaves the tables and their rows: the release before this revision makes them itself
    when they are missing and uses them as they are when they are there."""
