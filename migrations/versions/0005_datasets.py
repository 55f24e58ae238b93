"""Human-feedback datasets: versions, encrypted records, subjects' keys, budgets (app/datasets).

Revision ID: 0005_datasets
Revises: 0004_server_settings
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005_datasets"
down_revision = "0004_server_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
