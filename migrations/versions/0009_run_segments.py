"""A run's segments: ``jobs.segment`` counts the times a worker claimed the run (1 for a run that
started, 2 once it was resumed after a halt, ...), ``jobs.pairs`` the preference pairs its first
segment trained on (its DP schedule: a resume is checked against the plan over those pairs).

Existing rows: a run that started counts as segment 1 (how often an old run was resumed is on the
log, as its ``run.started`` events, not in the row); ``pairs`` stays unknown.

Revision ID: 0009_run_segments
Revises: 0008_entry_bundles
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_run_segments"
down_revision = "0008_entry_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("segment", sa.Integer, nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("pairs", sa.Integer, nullable=True))
    op.execute("UPDATE jobs SET segment = 1 WHERE steps IS NOT NULL OR status IN ('running', 'completed', "
               "'failed')")


def downgrade() -> None:
    op.drop_column("jobs", "pairs")  # SQLite >= 3.35 drops a column in place
    op.drop_column("jobs", "segment")
