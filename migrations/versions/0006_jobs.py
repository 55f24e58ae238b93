"""Training jobs, oversight decisions, model releases (app/jobs, app/oversight).

Revision ID: 0006_jobs
Revises: 0005_datasets
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006_jobs"
down_revision = "0005_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
