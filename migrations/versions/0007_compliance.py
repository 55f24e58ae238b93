"""Compliance results, alerts, evidence bundles and reports (app/compliance, app/evidence).

Revision ID: 0007_compliance
Revises: 0006_jobs
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0007_compliance"
down_revision = "0006_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
