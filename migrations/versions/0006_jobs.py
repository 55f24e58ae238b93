"""Training jobs, oversight decisions, model releases (app/jobs, app/oversight).

Revision ID: 0006_jobs
Revises: 0005_datasets
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_jobs"
down_revision = "0005_datasets"
branch_labels = None
depends_on = None

STATUSES = ("queued", "running", "halted", "completed", "failed", "cancelled")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("run", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=False),
        sa.Column("planned_epsilon", sa.Float, nullable=True),
        sa.Column("epsilon", sa.Float, nullable=True),
        sa.Column("steps", sa.Integer, nullable=True),
        sa.Column("halted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("halt_decision", sa.String(40), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("resume_from", sa.String(512), nullable=True),
        sa.Column("model", sa.String(64), nullable=True, unique=True),
        sa.Column("model_root", sa.String(128), nullable=True),
        sa.Column("model_prefix", sa.String(512), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('queued', 'running', 'halted', 'completed', 'failed', 'cancelled')",
                           name="ck_jobs_status"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "run_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run", sa.String(40), sa.ForeignKey("jobs.run"), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("object_prefix", sa.String(512), nullable=False),
        sa.Column("root", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_run_checkpoints_run", "run_checkpoints", ["run"])
    op.create_table(
        "oversight_decisions",
        sa.Column("decision_id", sa.String(40), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("run", sa.String(40), nullable=True),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("dataset", sa.String(128), nullable=True),
        sa.Column("dataset_version", sa.Integer, nullable=True),
        sa.Column("annotator", sa.String(64), nullable=True),
        sa.Column("justification", sa.Text, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_oversight_decisions_run", "oversight_decisions", ["run"])
    op.create_index("ix_oversight_decisions_model", "oversight_decisions", ["model"])
    op.create_table(
        "model_releases",
        sa.Column("model", sa.String(64), primary_key=True),
        sa.Column("run", sa.String(40), nullable=False),
        sa.Column("approval", sa.String(40), nullable=False),
        sa.Column("root", sa.String(128), nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("released_by", sa.String(64), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_releases")
    op.drop_index("ix_oversight_decisions_model", table_name="oversight_decisions")
    op.drop_index("ix_oversight_decisions_run", table_name="oversight_decisions")
    op.drop_table("oversight_decisions")
    op.drop_index("ix_run_checkpoints_run", table_name="run_checkpoints")
    op.drop_table("run_checkpoints")
    op.drop_index("ix_jobs_status", table_name="jobs")
    op.drop_table("jobs")
