"""The ledger's tables: one schema for SQLite and PostgreSQL (alembic migrates it).

- ``log_sequence``: one row, the next index to hand out. Appenders take its row lock, so
  indices are gap-free and unique across processes.
- ``log_tree``: one row, the integrated tree size and root. The integrator takes its row lock.
- ``entry_bundles``: the sequenced entries' canonical bytes, framed as C2SP entry bundles frame
  them (a 2-byte length before each). A row holds a run of consecutive entries, keyed by the
  index of its first, and never crosses a bundle boundary (a multiple of 256): entries appended
  together share a row, so a full bundle appended at once is one row, and an append of 1,000
  entries writes five rows instead of 1,000 (a row per entry cost as much as all the ledger's
  other work together). Rows are only ever inserted. Leaf hashes are recomputed where needed.
- ``tiles``: C2SP tiles (level, index) -> up to 256 concatenated 32-byte hashes; every
  perfect subtree hash a proof needs is in at most one tile per 8 levels.
- ``leaf_index``: first 8 bytes of each leaf hash -> index, for lookup by hash (the level-0 tile
  holds the full hash). It follows the tree instead of being written by integration (as
  Tessera's antispam index follows its log): an index row costs as much as an entry row, so
  integration leaves it to :meth:`Log.index_leaves`, run when the integrator is idle or far
  behind, and before every lookup. ``leaf_index_state`` says how many entries it covers.
- ``checkpoints``: every published signed checkpoint. ``timestamps``: RFC 3161 responses.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

log_sequence = Table(
    "log_sequence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("next_index", BigInteger, nullable=False),
)

log_tree = Table(
    "log_tree",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary, nullable=False),
)

entry_bundles = Table(
    "entry_bundles",
    metadata,
    Column("idx", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

tiles = Table(
    "tiles",
    metadata,
    Column("level", SmallInteger, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("hashes", LargeBinary, nullable=False),
    # Each tile also keeps its inner levels (255 hashes when full), so a proof reads, not hashes.
    Column("inner_levels", LargeBinary, nullable=True),
    PrimaryKeyConstraint("level", "idx"),
    sqlite_with_rowid=False,
)

leaf_index = Table(
    "leaf_index",
    metadata,
    Column("hash_prefix", LargeBinary, nullable=False),
    Column("idx", BigInteger, nullable=False),
    PrimaryKeyConstraint("hash_prefix", "idx"),
    sqlite_with_rowid=False,
)

leaf_index_state = Table(
    "leaf_index_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

timestamps = Table(
    "timestamps",
    metadata,
    Column("size", BigInteger, nullable=False),
    Column("tsa", String(512), nullable=False),
    Column("response", LargeBinary, nullable=False),
    Column("gen_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("size", "tsa"),
)

timestamp_failures = Table(
    "timestamp_failures",
    metadata,
    Column("size", BigInteger, nullable=False),
    Column("tsa", String(512), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("last_attempt_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("size", "tsa"),
)
