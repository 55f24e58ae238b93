"""Alembic environment: migrates the ledger's and the application's tables on SQLite or PostgreSQL.

The ledger runs migrations in-process by handing a connection in ``config.attributes``;
run from the command line, ``alembic upgrade head`` uses ``RLHF_AUDIT_DATABASE_URL``.
Autogenerate and ``alembic check`` compare with every table (``metadata.py``, shared with
``tests/app/core/test_migrations_drift.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from alembic import context
from alembic.util import load_python_file
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config
shared = load_python_file(Path(__file__).resolve().parent, "metadata.py")


class _EveryTable(Sequence[MetaData]):
    """``shared.target_metadata()``, imported the first time alembic reads it.

    Only autogenerate and ``check`` read the target; a plain upgrade (``Store.migrate``)
    then never imports the application's modules.
    """

    def __init__(self) -> None:
        self._loaded: list[MetaData] | None = None

    def _all(self) -> list[MetaData]:
        if self._loaded is None:
            self._loaded = shared.target_metadata()
        return self._loaded

    @overload
    def __getitem__(self, i: int) -> MetaData: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[MetaData]: ...
    def __getitem__(self, i: int | slice) -> MetaData | Sequence[MetaData]:
        return self._all()[i]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[MetaData]:
        return iter(self._all())


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=_EveryTable(),
        render_as_batch=connection.dialect.name == "sqlite",
        **shared.comparison_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = os.environ.get("RLHF_AUDIT_DATABASE_URL")
    if not url:
        raise SystemExit("set RLHF_AUDIT_DATABASE_URL to the database to migrate")
    from ledger.storage import async_url

    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_online())
