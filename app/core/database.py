"""The application's database: one engine, owned here, shared with the ledger's log.

The app opens the engine (:meth:`Database.open`), builds the ledger's :class:`~ledger.log.Log`
over it (``LogHome.open_log(engine=db.engine)``) and keeps its own tables (accounts, jobs,
datasets, the event index...) in the same database, so one transaction never spans two.
Database failures are translated once, here, into :class:`~app.core.errors.Unavailable`; an
``IntegrityError`` passes through untranslated, since only the caller knows what a unique
violation means (a name taken, a step already recorded).

Migrations are the application's: :meth:`Database.migrate` brings every table, the ledger's
included, to the newest alembic revision in ``migrations/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.storage import open_engine

from .errors import Misconfigured, Unavailable

if TYPE_CHECKING:
    from ledger.home import LogHome
    from ledger.log import Log

__all__ = ["MIGRATIONS", "Database", "migrate_home", "open_home", "translated"]

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@contextlib.asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    """Database failures inside become :class:`Unavailable`, naming what was being done."""
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as e:
        raise Unavailable(f"database error while {what}: {e.orig}") from e
    except SQLAlchemyError as e:
        raise Unavailable(f"database error while {what}: {e}") from e
    except OSError as e:
        raise Unavailable(f"cannot reach the database while {what}: {e}") from e


class Database:
    """The engine the application owns, and the one way its code opens transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name

    @classmethod
    def open(cls, url: str, *, sqlite_synchronous: str = "FULL") -> Database:
        """The database at ``url`` (SQLite or PostgreSQL), configured as the ledger needs it."""
        return cls(open_engine(url, sqlite_synchronous=sqlite_synchronous))

    @contextlib.asynccontextmanager
    async def transaction(self, what: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit; ``what`` names it in an error."""
        async with translated(what), self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def connect(self, what: str) -> AsyncIterator[AsyncConnection]:
        """A connection for reading."""
        async with translated(what), self.engine.connect() as conn:
            yield conn

    async def execute(self, what: str, statement: Any) -> Any:
        """One statement in a transaction of its own; its result (buffered)."""
        async with self.transaction(what) as conn:
            return await conn.execute(statement)

    async def migrate(self) -> None:
        """Bring every table to the newest alembic revision."""
        from alembic import command
        from alembic.config import Config

        if not (MIGRATIONS / "env.py").exists():
            raise Misconfigured(f"alembic migrations not found at {MIGRATIONS}")
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))

        def upgrade(sync_conn: Any) -> None:
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, "head")

        async with self.transaction("migrating the schema") as conn:
            await conn.run_sync(upgrade)

    async def close(self) -> None:
        await self.engine.dispose()


async def open_home(home: LogHome, *, migrate: bool = False) -> tuple[Database, Log]:
    """The home's database and its log over the same engine (``migrate``: bring the schema up to
    date first). Close the log, then the database."""
    db = Database(home.engine())
    try:
        if migrate:
            await db.migrate()
        log = await home.open_log(engine=db.engine)
    except BaseException:
        await db.close()
        raise
    return db, log


async def migrate_home(home: LogHome) -> None:
    """Bring the home's database to the newest revision (then ``home.open_log()`` opens it)."""
    db = Database(home.engine())
    try:
        await db.migrate()
    finally:
        await db.close()
