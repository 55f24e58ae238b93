"""No drift: a database migrated to head is exactly what the table declarations say.

The equivalent of ``alembic check`` on SQLite and on PostgreSQL, against the metadata that
``migrations/env.py`` targets (``migrations/metadata.py``): a model changed without a
migration, or a migration that does not match its model, fails here with the differences.
"""

from __future__ import annotations

import pprint
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.util import load_python_file

from app.core.database import MIGRATIONS, Database
from ledger.storage import Store

shared = load_python_file(MIGRATIONS, "metadata.py")


def _diff(conn: Any) -> list[Any]:
    context = MigrationContext.configure(conn, opts=shared.comparison_options())
    return list(compare_metadata(context, shared.target_metadata()))


async def test_the_migrations_match_the_table_declarations(database_url: str) -> None:
    store = Store(database_url)
    try:
        await Database(store.engine).migrate()
        async with store.engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await store.close()
    assert not diff, "models and migrations drift:\n" + pprint.pformat(diff, width=110)
