"""The home and its SQLite database are the owner's alone: the database holds password and token
hashes. Created owner-only even under ``umask 000``; an older home left group- or world-readable
is tightened when the log is opened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.database import Database, migrate_home
from ledger._internal.store import Store
from ledger.home import LogHome

DB_FILES = ("ledger.db", "ledger.db-wal", "ledger.db-shm")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


async def _open_and_write(home: LogHome) -> None:
    """Open the home's log, append and integrate, and check the files while it is open (the
    -wal and -shm files exist only while a connection does)."""
    await migrate_home(home)
    log = await home.open_log()
    try:
        await log.append([{"kind": "perm.test", "i": i} for i in range(3)])
        await log.integrate()
        modes = {name: mode(home.path / name) for name in DB_FILES}
        assert modes == dict.fromkeys(DB_FILES, 0o600), {k: oct(v) for k, v in modes.items()}
        assert mode(home.path) == 0o700
        assert mode(home.key_file) == 0o600
    finally:
        await log.close()


async def test_a_new_home_is_owner_only_under_umask_000(tmp_path: Path, umask_000: None) -> None:
    home = LogHome(tmp_path / "home")
    home.init("perm.example/log")
    await _open_and_write(home)


async def test_an_existing_world_readable_home_is_tightened(tmp_path: Path, umask_000: None) -> None:
    home = LogHome(tmp_path / "home")
    home.path.mkdir(mode=0o755)  # as an older release, or an operator's mkdir, left it
    home.init("perm.example/log")
    await migrate_home(home)
    log = await home.open_log()
    await log.append([{"kind": "perm.test"}])
    await log.close()
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):  # as SQLite used to create them
        path = home.path / name
        path.touch(exist_ok=True)
        path.chmod(0o644)
    home.path.chmod(0o755)
    await _open_and_write(home)


async def test_a_database_outside_a_home_is_created_owner_only(tmp_path: Path, umask_000: None) -> None:
    path = tmp_path / "elsewhere.db"
    store = Store(f"sqlite:///{path}")
    try:
        await Database(store.engine).migrate()
        assert mode(path) == 0o600
        assert all(mode(p) == 0o600 for p in tmp_path.glob("elsewhere.db-*"))
    finally:
        await store.close()
