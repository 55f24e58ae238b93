"""Human-feedback datasets: versions, encrypted records, subjects' keys, budgets (app/datasets).

Revision ID: 0005_datasets
Revises: 0004_server_settings
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_datasets"
down_revision = "0004_server_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source_sha256", sa.String(71), nullable=True),
        sa.Column("records", sa.Integer, nullable=False, server_default="0"),
        sa.Column("annotators", sa.Integer, nullable=False, server_default="0"),
        sa.Column("root", sa.LargeBinary, nullable=True),
        sa.Column("first_leaf", sa.BigInteger, nullable=True),
        sa.Column("last_leaf", sa.BigInteger, nullable=True),
        sa.Column("version_leaf", sa.BigInteger, nullable=True),
        sa.Column("datasheet_leaf", sa.BigInteger, nullable=True),
        sa.Column("datasheet", sa.Text, nullable=True),
        sa.Column("rejected", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset", "version", name="uq_dataset_versions_version"),
        sa.UniqueConstraint("dataset", "source_sha256", name="uq_dataset_versions_source"),
        sa.CheckConstraint("state IN ('pending', 'complete', 'failed')", name="ck_dataset_versions_state"),
    )
    op.create_table(
        "data_subjects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("lookup", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("pseudonym", sa.String(40), nullable=False, unique=True),
        sa.Column("salt", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dataset_records",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("subject_id", sa.Integer, nullable=True),
        sa.Column("annotator", sa.String(40), nullable=True),
        sa.Column("commitment", sa.LargeBinary, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_dataset_records_subject", "dataset_records", ["subject_id"])
    op.create_index("ix_dataset_records_annotator", "dataset_records", ["annotator"])
    op.create_table(
        "rejected_annotators",
        sa.Column("pseudonym", sa.String(40), primary_key=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dataset_budgets",
        sa.Column("dataset", sa.String(128), primary_key=True),
        sa.Column("epsilon_total", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("spent", sa.Float, nullable=False, server_default="0"),
        sa.Column("reserved", sa.Float, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("run", sa.String(40), primary_key=True),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("planned", sa.Float, nullable=False),
        sa.Column("spent", sa.Float, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('reserved', 'settled', 'released')",
                           name="ck_budget_reservations_state"),
    )
    op.create_index("ix_budget_reservations_dataset", "budget_reservations", ["dataset"])


def downgrade() -> None:
    op.drop_index("ix_budget_reservations_dataset", table_name="budget_reservations")
    op.drop_table("budget_reservations")
    op.drop_table("dataset_budgets")
    op.drop_table("rejected_annotators")
    op.drop_index("ix_dataset_records_annotator", table_name="dataset_records")
    op.drop_index("ix_dataset_records_subject", table_name="dataset_records")
    op.drop_table("dataset_records")
    op.drop_table("data_subjects")
    op.drop_table("dataset_versions")
