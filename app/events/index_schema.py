"""The event index tables as SQLAlchemy Core, mirroring ``migrations/versions/0003_event_index.py``.

- ``event_index``: one row per log entry (``idx`` = leaf index) with the envelope fields that
  queries filter on. ``at`` is microseconds since the Unix epoch (UTC): an integer sorts and
  compares the same on SQLite and PostgreSQL, where DateTime columns do not. Per-field indexes
  are partial (``WHERE field IS NOT NULL``): most events carry only some of the fields.
- ``event_commitments``: commitment digest (32 bytes) -> idx, for the public lookup.
- ``event_index_state``: one row, ``size``: every entry below it is indexed (the watermark that
  lets several processes catch up on one database without gaps).

A MetaData of its own: the ledger's stays the ledger's. The migration is the source of truth.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["FIELDS", "event_commitments", "event_index", "event_index_state", "metadata"]

#: The indexed fields besides idx, in column order.
FIELDS = ("kind", "run", "dataset", "dataset_version", "model", "actor", "annotator", "at")

metadata = sa.MetaData()

_IDX = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite: INTEGER PRIMARY KEY = rowid

event_index = sa.Table(
    "event_index",
    metadata,
    sa.Column("idx", _IDX, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(200), nullable=False),
    sa.Column("run", sa.String(200), nullable=True),
    sa.Column("dataset", sa.String(200), nullable=True),
    sa.Column("dataset_version", sa.BigInteger, nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("annotator", sa.String(200), nullable=True),
    sa.Column("at", sa.BigInteger, nullable=True),
    sa.Index("ix_event_index_kind", "kind", "idx"),
    # Each partial on its first column being set, as migration 0003 created them.
    *(sa.Index(name, *columns, postgresql_where=sa.text(f"{columns[0]} IS NOT NULL"),
               sqlite_where=sa.text(f"{columns[0]} IS NOT NULL"))
      for name, columns in (
          ("ix_event_index_run", ("run", "idx")),
          ("ix_event_index_dataset", ("dataset", "dataset_version", "idx")),
          ("ix_event_index_model", ("model", "idx")),
          ("ix_event_index_actor", ("actor", "idx")),
          ("ix_event_index_annotator", ("annotator", "idx")),
          ("ix_event_index_at", ("at", "idx")),
      )),
)

event_commitments = sa.Table(
    "event_commitments",
    metadata,
    sa.Column("digest", sa.LargeBinary, nullable=False),
    sa.Column("idx", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("digest", "idx"),
    sqlite_with_rowid=False,
)

event_index_state = sa.Table(
    "event_index_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)
