"""Event index: queries by kind, run, dataset, actor, time; lookup by commitment (app/event_index).

Revision ID: 0003_event_index
Revises: 0002_accounts
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_event_index"
down_revision = "0002_accounts"
branch_labels = None
depends_on = None

# (index name, columns): each partial on its first column being set, so events without the
# field cost nothing in that index.
INDEXES = [
    ("ix_event_index_run", ["run", "idx"]),
    ("ix_event_index_dataset", ["dataset", "dataset_version", "idx"]),
    ("ix_event_index_model", ["model", "idx"]),
    ("ix_event_index_actor", ["actor", "idx"]),
    ("ix_event_index_annotator", ["annotator", "idx"]),
    ("ix_event_index_at", ["at", "idx"]),
]


def upgrade() -> None:
    op.create_table(
        "event_index",
        sa.Column("idx", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("run", sa.String(200), nullable=True),
        sa.Column("dataset", sa.String(200), nullable=True),
        sa.Column("dataset_version", sa.BigInteger, nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("annotator", sa.String(200), nullable=True),
        sa.Column("at", sa.BigInteger, nullable=True),  # microseconds since the epoch, UTC
    )
    op.create_index("ix_event_index_kind", "event_index", ["kind", "idx"])
    for name, columns in INDEXES:
        where = sa.text(f"{columns[0]} IS NOT NULL")
        op.create_index(name, "event_index", columns, postgresql_where=where, sqlite_where=where)
    op.create_table(
        "event_commitments",
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("digest", "idx"),
        sqlite_with_rowid=False,
    )
    state = op.create_table(
        "event_index_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "size": 0}])


def downgrade() -> None:
    op.drop_table("event_index_state")
    op.drop_table("event_commitments")
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name="event_index")
    op.drop_index("ix_event_index_kind", table_name="event_index")
    op.drop_table("event_index")
