"""Shared fixtures: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from RLHF_AUDIT_TEST_PG (default: the local server, trust auth). Each test
gets a fresh database, dropped afterwards. Without a server the PostgreSQL variants skip,
unless CI=true, where a missing PostgreSQL fails the run.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.core.database import Database
from app.core.keyring import Keyring
from ledger._internal.local_tsa import LocalTSA
from ledger._internal.store import Store
from ledger.log import Log
from ledger.note import Signer
from ledger.timestamping import LocalTSAClient
from tests.support.databases import pair
from tests.support.openssl_tsa import make_openssl_tsa, serve
from tests.support.postgres import PG_ADMIN_URL, pg_admin

# Fixtures of their own topic, registered for the whole suite (their heavy imports are inside them).
pytest_plugins = ["tests.support.compose", "tests.support.ml"]

# Whatever falls back to the per-user default home (an app built around a bare Log, a CLI run
# without --home) must not write keys into the real user's data directory.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="rlhf-audit-tests-data-")

ORIGIN = "test.example/rlhf-log"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"rlhf_test_{secrets.token_hex(6)}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def local_tsa(tmp_path: Path) -> LocalTSA:
    return LocalTSA.create(tmp_path / "tsa")


@pytest.fixture(scope="module")
def openssl_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """OpenSSL's ``ts -reply`` behind HTTP on 127.0.0.1; yields (URL, CA certificate path)."""
    d = tmp_path_factory.mktemp("openssl-tsa")
    with serve(make_openssl_tsa(d)) as url:
        yield url, d / "ca.pem"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """A keyring in the test's own directory."""
    return Keyring(tmp_path / "keys")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The application's database, migrated; the ``store`` and ``log`` fixtures share its engine."""
    db = Database.open(database_url)
    await db.migrate()
    yield db
    await db.close()


@pytest.fixture
async def store(db: Database) -> AsyncIterator[Store]:
    store = Store(db.engine)
    yield store
    await store.close()


@pytest.fixture
async def log(db: Database, store: Store, signer: Signer, local_tsa: LocalTSA) -> AsyncIterator[Log]:
    log = pair(Log(store, signer, tsas=[LocalTSAClient(local_tsa)], interval=0.05), db)
    yield log
    await log.stop()


@pytest.fixture
async def sqlite_log(tmp_path: Path, signer: Signer, local_tsa: LocalTSA) -> AsyncIterator[Log]:
    """A log on SQLite alone, for tests that do not depend on the database (``log``: both)."""
    db = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'sqlite-only.db'}")
    await db.migrate()
    store = Store(db.engine)
    log = pair(Log(store, signer, tsas=[LocalTSAClient(local_tsa)], interval=0.05), db)
    yield log
    await log.stop()
    await store.close()
    await db.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[object]:
    """An S3 API over HTTP: real MinIO with RLHF_AUDIT_TEST_S3_URL, else moto (tests/support/s3_server.py)."""
    from tests.support.s3_server import s3_server

    yield from s3_server()
