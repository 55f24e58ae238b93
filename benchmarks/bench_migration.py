"""How long migration 0008 (entries repacked into entry bundles) takes on a log. Prints figures.

    python benchmarks/bench_migration.py 1000000    # entries (default 1,000,000)

Builds a log at the newest revision on SQLite and on PostgreSQL, takes it back to 0007 (0008's
downgrade unpacks the entries, one row each, as an older deployment holds them) and times the
upgrade.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from bench_ledger import SIGNER, drop_pg, event_lines, pg_database  # noqa: E402

from app.core.database import (
    MIGRATIONS,  # noqa: E402
    Database,  # noqa: E402
)
from ledger.canonical import canonical_event  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.storage import Store  # noqa: E402


async def _migrate(store: Store, revision: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))

    def run(conn: Any) -> None:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(run)


async def one(url: str, n: int) -> None:
    store = Store(url)
    await Database(store.engine).migrate()
    log = Log(store, SIGNER)
    lines = event_lines(n)
    for k in range(0, n, 10_000):
        await log.append_entries([canonical_event(x) for x in lines[k : k + 10_000]])
    await log.integrate()
    await log.index_leaves()
    t0 = time.perf_counter()
    await _migrate(store, "0007_compliance", down=True)
    t1 = time.perf_counter()
    await _migrate(store, "head")
    t2 = time.perf_counter()
    print(f"{store.dialect}: {n:,} entries: downgrade to 0007 {t1 - t0:.1f} s, upgrade through 0008 "
          f"{t2 - t1:.1f} s = {n / (t2 - t1):,.0f} entries/s", flush=True)
    await log.close()


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await one(f"sqlite+aiosqlite:///{tmp}/m.db", n)
    url, name = pg_database()
    try:
        await one(url, n)
    finally:
        drop_pg(name)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
