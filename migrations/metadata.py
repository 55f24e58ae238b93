"""What the migrations must produce: the metadata of every table, and how to compare with it.

``env.py`` hands :func:`target_metadata` to alembic (autogenerate, ``alembic check``) and
``tests/app/core/test_migrations_drift.py`` compares a freshly migrated database with it, so the two
cannot disagree. Only the schema modules are imported, and only when asked: a plain
``upgrade`` (``Store.migrate``) never loads the application.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData


def target_metadata() -> list[MetaData]:
    """The ledger's tables and every application table, one ``MetaData`` per module."""
    from app.accounts import schema as accounts
    from app.compliance import schema as compliance
    from app.config import runtime as settings
    from app.datasets import schema as datasets
    from app.events import index_schema as event_index
    from app.jobs import schema as jobs
    from app.oversight import schema as oversight
    from ledger import storage as ledger

    return [ledger.metadata, accounts.metadata, event_index.metadata, settings.metadata,
            datasets.metadata, jobs.metadata, compliance.metadata, oversight.metadata]


def comparison_options() -> dict[str, Any]:
    """The ``MigrationContext`` options autogenerate compares with (types included).

    No ``include_object`` or ``compare_type`` hook: on SQLite and PostgreSQL a database at head
    compares clean as it is, so any difference reported is real drift.
    """
    return {"compare_type": True, "compare_server_default": True}
