"""The oversight tables as SQLAlchemy Core, mirroring ``migrations/versions/0006_jobs.py``.

Each decision is first an ``oversight.decision`` event on the log; the row (with the event's
leaf index) makes the register and the release check fast.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["decisions", "metadata", "model_releases"]

metadata = sa.MetaData()

decisions = sa.Table(
    "oversight_decisions",
    metadata,
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
    sa.Index("ix_oversight_decisions_run", "run"),
    sa.Index("ix_oversight_decisions_model", "model"),
)

model_releases = sa.Table(
    "model_releases",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("run", sa.String(40), nullable=False),
    sa.Column("approval", sa.String(40), nullable=False),
    sa.Column("root", sa.String(128), nullable=False),
    sa.Column("leaf_index", sa.BigInteger, nullable=False),
    sa.Column("released_by", sa.String(64), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
)
