"""Editing stored entries behind the ledger's back, as a tampering operator would.

Entries are stored as runs of entry bundles (``entry_bundles``: first index -> framed entries),
so editing one entry means rewriting its row.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.log import Log
from ledger.tiles import frame_entries, unframe_entries


async def sql(log: Log, statement: str, *params: object) -> list[tuple[object, ...]]:
    """Run one statement (``?`` placeholders on either database); the rows it returned, if any."""
    ph = "?" if log.store.dialect == "sqlite" else "%s"
    async with log.store.engine.begin() as conn:
        result = await conn.exec_driver_sql(statement.replace("?", ph), tuple(params) if params else None)
        return list(result.fetchall()) if result.returns_rows else []


async def build(log: Log) -> None:
    """A log to tamper with: 600 entries in three checkpoints, timestamped and indexed."""
    for start in range(0, 600, 200):
        await log.append([{"kind": "e", "i": i} for i in range(start, start + 200)])
        await log.integrate()
    await log.timestamp_pending(force=True)
    assert await log.index_leaves() == 600


async def _row_of(log: Log, index: int) -> tuple[int, list[bytes]]:
    rows = await sql(log, "SELECT idx, data FROM entry_bundles WHERE idx <= ? ORDER BY idx DESC LIMIT 1",
                      index)
    first, data = rows[0]
    return int(first), unframe_entries(bytes(data))  # type: ignore[arg-type]


async def edit_row(log: Log, index: int, change: Callable[[list[bytes], int], list[bytes]]) -> None:
    """Rewrite the row holding entry ``index``: ``change(entries, position of index)``."""
    first, entries = await _row_of(log, index)
    await sql(log, "UPDATE entry_bundles SET data = ? WHERE idx = ?",
               frame_entries(change(entries, index - first)), first)


async def set_entry(log: Log, index: int, data: bytes) -> None:
    await edit_row(log, index, lambda es, k: es[:k] + [data] + es[k + 1 :])


async def swap_entries(log: Log, index: int) -> None:
    """Swap entries ``index`` and ``index + 1`` (in one row)."""
    await edit_row(log, index, lambda es, k: es[:k] + [es[k + 1], es[k]] + es[k + 2 :])


async def delete_entry(log: Log, index: int) -> None:
    """Delete one entry: its row keeps the entries before it, a new row the ones after."""
    first, entries = await _row_of(log, index)
    k = index - first
    await sql(log, "UPDATE entry_bundles SET data = ? WHERE idx = ?", frame_entries(entries[:k]), first)
    if k + 1 < len(entries):
        await sql(log, "INSERT INTO entry_bundles (idx, data) VALUES (?, ?)",
                   index + 1, frame_entries(entries[k + 1 :]))


async def add_entry(log: Log, index: int, data: bytes) -> None:
    await sql(log, "INSERT INTO entry_bundles (idx, data) VALUES (?, ?)", index, frame_entries([data]))


async def corrupt_framing(log: Log, index: int) -> None:
    """Make the row holding ``index`` end in the middle of an entry."""
    first, entries = await _row_of(log, index)
    await sql(log, "UPDATE entry_bundles SET data = ? WHERE idx = ?", frame_entries(entries)[:-1], first)
