"""The PostgreSQL server the tests use: RLHF_AUDIT_TEST_PG, by default the local one (trust auth)."""

from __future__ import annotations

import os

import pytest

PG_ADMIN_URL = os.environ.get("RLHF_AUDIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pg_admin():  # type: ignore[no-untyped-def]
    """A connection to the server's admin database (skips without a server, fails in CI)."""
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required when CI=true and is unreachable: {e}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {e}")
