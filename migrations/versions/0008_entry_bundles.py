"""Entries stored as runs of C2SP entry bundles instead of one row per entry; the leaf-hash
index follows the tree (``leaf_index_state``) instead of being written by integration.

A row of ``entry_bundles`` holds consecutive entries, each as a 2-byte big-endian length and
its bytes, keyed by the index of the first; no row crosses a multiple of 256. The upgrade packs
the existing rows (a full bundle becomes one row; a gap in the old indices, which only a
tampered database has, ends a run so that ``verify`` still reports it); the downgrade unpacks.
Both stream in slices, so a large log needs time (1,000,000 entries: 6.3 s on SQLite, 8.0 s on
PostgreSQL here) but not memory.

Revision ID: 0008_entry_bundles
Revises: 0007_compliance
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_entry_bundles"
down_revision = "0007_compliance"
branch_labels = None
depends_on = None

_BUNDLE = 256
_SLICE = 64 * _BUNDLE

_entry_bundles = sa.table("entry_bundles", sa.column("idx", sa.BigInteger),
                          sa.column("data", sa.LargeBinary))
_entries = sa.table("entries", sa.column("idx", sa.BigInteger), sa.column("data", sa.LargeBinary))


def _frame(entries: list[bytes]) -> bytes:
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


def _unframe(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 2], "big")
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


def _idx_column() -> sa.Column:
    return sa.Column("idx", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                     autoincrement=False)


def upgrade() -> None:
    op.create_table("entry_bundles", _idx_column(), sa.Column("data", sa.LargeBinary, nullable=False))
    conn = op.get_bind()
    after = -1
    run: list[bytes] = []
    run_first = 0
    while True:
        rows = conn.execute(sa.select(_entries.c.idx, _entries.c.data).where(_entries.c.idx > after)
                            .order_by(_entries.c.idx).limit(_SLICE)).fetchall()
        if not rows:
            break
        out = []
        for idx, data in rows:
            idx = int(idx)
            if run and (idx != run_first + len(run) or idx % _BUNDLE == 0):
                out.append({"idx": run_first, "data": _frame(run)})
                run = []
            if not run:
                run_first = idx
            run.append(bytes(data))
        if out:
            conn.execute(_entry_bundles.insert(), out)
        after = int(rows[-1][0])
    if run:
        conn.execute(_entry_bundles.insert(), [{"idx": run_first, "data": _frame(run)}])
    op.drop_table("entries")
    # Until now integration indexed every entry it integrated: the index covers the tree.
    op.create_table("leaf_index_state", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("size", sa.BigInteger, nullable=False))
    conn.execute(sa.text("INSERT INTO leaf_index_state (id, size) SELECT 1, size FROM log_tree WHERE id = 1"))


def downgrade() -> None:
    # The old schema has integration index every entry: index what the follower had not yet.
    conn = op.get_bind()
    indexed = conn.execute(sa.text("SELECT size FROM leaf_index_state WHERE id = 1")).scalar_one()
    size = conn.execute(sa.text("SELECT size FROM log_tree WHERE id = 1")).scalar_one()
    tiles = sa.table("tiles", sa.column("level"), sa.column("idx"), sa.column("hashes"))
    leaf_index = sa.table("leaf_index", sa.column("hash_prefix"), sa.column("idx"))
    for tile, hashes in conn.execute(sa.select(tiles.c.idx, tiles.c.hashes).where(
            tiles.c.level == 0, tiles.c.idx >= int(indexed) // _BUNDLE).order_by(tiles.c.idx)):
        rows = [{"hash_prefix": bytes(hashes[k * 32 : k * 32 + 8]), "idx": int(tile) * _BUNDLE + k}
                for k in range(len(hashes) // 32)]
        rows = [r for r in rows if int(indexed) <= r["idx"] < int(size)]
        if rows:
            conn.execute(leaf_index.insert(), rows)
    op.drop_table("leaf_index_state")
    op.create_table("entries", _idx_column(), sa.Column("data", sa.LargeBinary, nullable=False))
    after = -1
    while True:
        rows = conn.execute(sa.select(_entry_bundles.c.idx, _entry_bundles.c.data)
                            .where(_entry_bundles.c.idx > after).order_by(_entry_bundles.c.idx)
                            .limit(64)).fetchall()
        if not rows:
            break
        out = [{"idx": int(first) + k, "data": e}
               for first, data in rows for k, e in enumerate(_unframe(bytes(data)))]
        conn.execute(_entries.insert(), out)
        after = int(rows[-1][0])
    op.drop_table("entry_bundles")
