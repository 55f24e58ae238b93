"""Entries stored as runs of C2SP entry bundles instead of one row per entry.

A row of ``entry_bundles`` holds consecutive entries, each as a 2-byte big-endian length and
its bytes, keyed by the index of the first; no row crosses a multiple of 256. The upgrade packs
the existing rows (a full bundle becomes one row; a gap in the old indices, which only a
tampered database has, ends a run so that ``verify`` still reports it); the downgrade unpacks.
Both stream in slices, so a large log needs time (about a minute per 10 million entries here)
but not memory.

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


def downgrade() -> None:
    op.create_table("entries", _idx_column(), sa.Column("data", sa.LargeBinary, nullable=False))
    conn = op.get_bind()
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
