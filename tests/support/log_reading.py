"""Reading back what a test wrote: the log's events, and every value the database holds."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from ledger.log import Log


async def events(log: Log, start: int = 0) -> list[dict[str, Any]]:
    """The log's sequenced events from ``start`` on, decoded."""
    return [orjson.loads(await log.entry(i)) for i in range(start, await log.sequenced_size())]


async def db_text(log: Log) -> bytes:
    """Every value of every table in the database, as bytes, to search for clear text."""
    parts: list[bytes] = []
    async with log.store.engine.connect() as conn:
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        for name in names:
            for row in await conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                for value in row:
                    raw = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                    parts.append(raw)
    return b"\n".join(parts)
