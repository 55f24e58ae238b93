"""Event index: queries by kind, run, dataset, actor, time; lookup by commitment (app/events).

Revision ID: 0003_event_index
Revises: 0002_accounts
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_event_index"
down_revision = "0002_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
