"""The jobs tables as SQLAlchemy Core, mirroring ``migrations/versions/0006_jobs.py`` (and 0009's
``segment`` and ``pairs``).

The log is the record; these rows are the working state a worker polls (status, the halt
flag) and a fast index for listing. The migration is the source of truth for the database.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["STATUSES", "jobs", "metadata", "run_checkpoints"]

STATUSES = ("queued", "running", "halted", "completed", "failed", "cancelled")

metadata = sa.MetaData()

jobs = sa.Table(
    "jobs",
    metadata,
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
    sa.Column("segment", sa.Integer, nullable=False, server_default="0"),  # 0009: claims so far
    sa.Column("pairs", sa.Integer, nullable=True),  # 0009: the pairs the run's schedule is over
    sa.Column("model", sa.String(64), nullable=True, unique=True),
    sa.Column("model_root", sa.String(128), nullable=True),
    sa.Column("model_prefix", sa.String(512), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("submitted_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_jobs_status", "status"),
)

run_checkpoints = sa.Table(
    "run_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run", sa.String(40), sa.ForeignKey("jobs.run"), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("object_prefix", sa.String(512), nullable=False),
    sa.Column("root", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_run_checkpoints_run", "run"),
)
