"""Upgrading: a database at the first revision, holding a log, migrated by `init`.

The ledger's tables come from 0001, except that 0008 stores entries as runs of entry bundles
instead of a row each. A log is written at the newest revision and taken back to 0001 (every
downgrade runs, 0008's unpacking the entries), which is what an old deployment holds; every
later revision must carry it forward untouched, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.core.database import MIGRATIONS, Database
from ledger.home import LogHome
from ledger.storage import Store
from tests.support.cli_run import cli, cli_env

ORIGIN = "upgrade.example/log"
FIRST = "0001_ledger"


def _alembic() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def _migrate_to(store: Store, revision: str, down: bool = False) -> None:
    """What ``Store.migrate`` does, stopping at ``revision`` (or going back to it)."""
    cfg = _alembic()

    def upgrade(conn: Any) -> None:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(upgrade)


async def _scalar(store: Store, sql: str) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def _tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: c.dialect.get_table_names(c)))


async def test_a_log_written_at_0001_survives_the_upgrade(database_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLHF_AUDIT_DATABASE_URL", database_url)
    home = LogHome(tmp_path / "home")
    home.init(ORIGIN)
    store = home.store()
    try:
        await Database(store.engine).migrate()
    finally:
        await store.close()
    log = await home.open_log()
    try:
        for batch in range(4):
            await log.append([{"kind": "old", "batch": batch, "i": i} for i in range(50)])
            await log.integrate()
        await log.timestamp_pending(force=True)
        before = {
            "entries": [await log.entry(i) for i in range(200)],
            "note": (await log.checkpoint()).note,
            "checkpoints": await log.store.checkpoint_count(),
        }
    finally:
        await log.close()

    # Back to 0001 (every downgrade runs): the log as an old deployment holds it, one row per entry.
    store = home.store()
    try:
        await _migrate_to(store, FIRST, down=True)
        assert await _scalar(store, "SELECT version_num FROM alembic_version") == FIRST
        assert "accounts" not in await _tables(store) and "entry_bundles" not in await _tables(store)
        async with store.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT idx, data FROM entries ORDER BY idx"))).fetchall()
        assert [(int(i), bytes(d)) for i, d in rows] == list(enumerate(before["entries"]))
    finally:
        await store.close()

    env = cli_env(home.path, database_url)
    cli(env, "init")  # what the guide says to run before starting a new version

    head = ScriptDirectory.from_config(_alembic()).get_current_head()
    store = home.store()
    try:
        assert await _scalar(store, "SELECT version_num FROM alembic_version") == head
        assert {"accounts", "event_index", "dataset_versions",
                "jobs"} <= await _tables(store)
    finally:
        await store.close()
    log = await home.open_log()
    try:
        assert [await log.entry(i) for i in range(200)] == before["entries"]
        assert (await log.checkpoint()).note == before["note"]
        assert await log.store.checkpoint_count() == before["checkpoints"]
    finally:
        await log.close()
    assert b"OK: the log is intact" in cli(env, "verify").stdout
    old_note = tmp_path / "before-upgrade.txt"
    old_note.write_bytes(before["note"])

    # the upgraded database takes what the new version writes: accounts, tokens, more entries
    cli(env, "users", "create", "dana", "--role", "service")
    cli(env, "tokens", "create", "dana", "--scope", "events:write")
    cli(env, "append", input=b'{"kind":"new"}\n')
    status = json.loads(cli(env, "status").stdout)
    assert status["tree_size"] >= 203 and status["timestamp_gap_count"] == 0
    assert b"kept checkpoints:    1 of 1" in cli(env, "verify", "--checkpoint", str(old_note)).stdout
