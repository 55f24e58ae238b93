"""Server settings changed at run time, TOTP second factors (app/settings, app/auth).

Revision ID: 0004_server_settings
Revises: 0003_event_index
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_server_settings"
down_revision = "0003_event_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),  # JSON
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "account_totp",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),  # AES-GCM: nonce + ciphertext
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger, nullable=True),  # refuses a code used twice
    )


def downgrade() -> None:
    op.drop_table("account_totp")
    op.drop_table("server_settings")
