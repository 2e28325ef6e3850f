"""Victims' hashes are encrypted at rest under a key the database does not hold, and found by a
keyed digest instead of their bytes (engines/bankkey.py says how and why).

Until this revision `victim_hashes.code` held each hash as registered, indexed with its
algorithm for exact matches: whoever could read the database or a backup had every victim's
hashes, which find their pictures wherever they are posted. Now `digest` (HMAC-SHA256 of
algorithm and code under the bank's digest key) is indexed instead, and `code` is the code
sealed with AES-256-GCM. Existing rows are sealed in place, in batches.

Rows can only be sealed under the key every process will read them with: when there are rows,
a database other than the data folder's own SQLite file needs HAECHI_BANK_KEY set, and the
upgrade stops, saying so, without it (engines.bankkey.key_for_existing_rows). On SQLite the
old bytes are overwritten as they are freed (secure_delete) and the write-ahead log emptied
afterwards (engines/db.py); on PostgreSQL the old row versions stay in the table's files until
`VACUUM FULL victim_hashes`, which cannot run inside an upgrade's transaction: run it once
after this upgrade. Saved index files written before are deleted from this process's data
folder (others are deleted where they are found: matcher/index.py).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from engines.bankkey import INDEX_FOLDER, BankCipher, drop_unsealed, key_for_existing_rows
from engines.home import data_home

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The rows this revision reads and writes, as they are at this revision (not matcher/bank.py,
# which moves on with later revisions).
_hashes = sa.table("victim_hashes", sa.column("id", sa.Integer),
                   sa.column("victim", sa.String(200)), sa.column("algorithm", sa.String(32)),
                   sa.column("code", sa.LargeBinary), sa.column("digest", sa.String(64)))
# Rows rewritten per statement.
BATCH = 1000


def _cipher(connection: sa.Connection) -> BankCipher:
    url = connection.engine.url
    return BankCipher(key_for_existing_rows(url.database if url.get_backend_name() == "sqlite"
                                            else None))


def _rewrite(connection: sa.Connection, change) -> None:
    """Every row's code and digest replaced by `change(row)`'s, in id order, BATCH at a time."""
    update = _hashes.update().where(_hashes.c.id == sa.bindparam("row")).values(
        code=sa.bindparam("new_code"), digest=sa.bindparam("new_digest"))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(_hashes).where(_hashes.c.id > last).order_by(_hashes.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(update, [{"row": row.id, **change(row)} for row in rows])
        last = rows[-1].id


def _secure_delete(connection: sa.Connection, setting: int | None) -> int | None:
    """Sets SQLite's secure_delete (while on, what SQLite frees is overwritten with zeros: old
    codes, old pages) and returns what it was; None on other databases."""
    if connection.dialect.name != "sqlite":
        return None
    was = connection.exec_driver_sql("PRAGMA secure_delete").scalar()
    connection.exec_driver_sql(f"PRAGMA secure_delete = {int(setting)}")
    return was


def upgrade() -> None:
    connection = op.get_bind()
    was = _secure_delete(connection, 1)
    op.drop_index("ix_victim_hashes_algorithm_code", table_name="victim_hashes")
    op.add_column("victim_hashes", sa.Column("digest", sa.String(64)))
    if connection.execute(sa.select(sa.func.count()).select_from(_hashes)).scalar():
        cipher = _cipher(connection)

        def sealed(row) -> dict:
            digest = cipher.digest(row.algorithm, row.code)
            return {"new_digest": digest,
                    "new_code": cipher.seal(row.algorithm, digest, row.victim, row.code)}

        _rewrite(connection, sealed)
        for path in (data_home() / INDEX_FOLDER).glob("*.index"):
            drop_unsealed(path)
    with op.batch_alter_table("victim_hashes") as batch:
        batch.alter_column("digest", existing_type=sa.String(64), nullable=False)
    op.create_index("ix_victim_hashes_digest", "victim_hashes", ["digest"])
    if was is not None:
        _secure_delete(connection, was)


def downgrade() -> None:
    connection = op.get_bind()
    op.drop_index("ix_victim_hashes_digest", table_name="victim_hashes")
    if connection.execute(sa.select(sa.func.count()).select_from(_hashes)).scalar():
        cipher = _cipher(connection)
        _rewrite(connection, lambda row: {"new_digest": row.digest, "new_code": cipher.unseal(
            row.algorithm, row.digest, row.victim, row.code)})
    with op.batch_alter_table("victim_hashes") as batch:
        batch.drop_column("digest")
    op.create_index("ix_victim_hashes_algorithm_code", "victim_hashes", ["algorithm", "code"])
