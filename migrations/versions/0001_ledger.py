"""The ledger: sequence, tree, entries, tiles, leaf index, checkpoints, timestamps.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_sequence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_index", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "log_tree",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "entries",
        sa.Column(
            "idx",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "tiles",
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
        sa.Column("inner_levels", sa.LargeBinary, nullable=True),
        sa.PrimaryKeyConstraint("level", "idx"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "leaf_index",
        sa.Column("hash_prefix", sa.LargeBinary, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("hash_prefix", "idx"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "timestamps",
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("tsa", sa.String(512), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("gen_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", "tsa"),
    )
    op.create_table(
        "timestamp_failures",
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("tsa", sa.String(512), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", "tsa"),
    )
    op.bulk_insert(
        sa.table("log_sequence", sa.column("id"), sa.column("next_index")),
        [{"id": 1, "next_index": 0}],
    )
    op.bulk_insert(
        sa.table("log_tree", sa.column("id"), sa.column("size"), sa.column("root_hash")),
        # SHA-256 of the empty string: the root of the empty tree.
        [{"id": 1, "size": 0, "root_hash": bytes.fromhex(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")}],
    )


def downgrade() -> None:
    for table in ("timestamp_failures", "timestamps", "checkpoints", "leaf_index", "tiles",
                  "entries", "log_tree", "log_sequence"):
        op.drop_table(table)
