"""Alembic environment: migrates the ledger schema on SQLite or PostgreSQL.

The ledger runs migrations in-process by handing a connection in ``config.attributes``;
run from the command line, ``alembic upgrade head`` uses ``RLHF_AUDIT_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from ledger._internal.schema import metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = os.environ.get("RLHF_AUDIT_DATABASE_URL")
    if not url:
        raise SystemExit("set RLHF_AUDIT_DATABASE_URL to the database to migrate")
    from ledger._internal.store import async_url

    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_online())
