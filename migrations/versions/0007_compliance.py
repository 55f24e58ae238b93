"""Compliance results, alerts, evidence bundles and reports (app/compliance, app/evidence).

Revision ID: 0007_compliance
Revises: 0006_jobs
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_compliance"
down_revision = "0006_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # app/compliance: one row per check run (the log's compliance.checked event is authoritative)
    op.create_table(
        "compliance_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pack", sa.String(200), nullable=False),
        sa.Column("pack_version", sa.String(64), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=True),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("results", sa.Text, nullable=False),
    )
    # app/compliance: one alert per failing rule, open until a later check passes it
    op.create_table(
        "compliance_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(120), nullable=False),
        sa.Column("article", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("entries", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_id", sa.Integer, nullable=False),
        sa.Column("delivery", sa.Text, nullable=False),
        sa.CheckConstraint("state IN ('open', 'resolved')", name="ck_compliance_alerts_state"),
    )


def downgrade() -> None:
    op.drop_table("compliance_alerts")
    op.drop_table("compliance_checks")
