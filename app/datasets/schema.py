"""The datasets tables as SQLAlchemy Core, mirroring ``migrations/versions/0005_datasets.py``.

A MetaData of its own; the migration is the source of truth for the database. What lives here
is the off-log half of a dataset: the encrypted records and each data subject's salt and
wrapped key (deleted on erasure), plus the working state of rejections and privacy budgets.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "budget_reservations",
    "data_subjects",
    "dataset_budgets",
    "dataset_records",
    "dataset_versions",
    "metadata",
    "rejected_annotators",
]

metadata = sa.MetaData()

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending, complete, failed
    sa.Column("source_sha256", sa.String(71), nullable=True),  # NULL once failed: a retry may reuse it
    sa.Column("records", sa.Integer, nullable=False, server_default="0"),
    sa.Column("annotators", sa.Integer, nullable=False, server_default="0"),
    sa.Column("root", sa.LargeBinary, nullable=True),
    sa.Column("first_leaf", sa.BigInteger, nullable=True),
    sa.Column("last_leaf", sa.BigInteger, nullable=True),
    sa.Column("version_leaf", sa.BigInteger, nullable=True),
    sa.Column("datasheet_leaf", sa.BigInteger, nullable=True),
    sa.Column("datasheet", sa.Text, nullable=True),  # JSON, as on the log
    sa.Column("rejected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("dataset", "version", name="uq_dataset_versions_version"),
    sa.UniqueConstraint("dataset", "source_sha256", name="uq_dataset_versions_source"),
)

data_subjects = sa.Table(
    "data_subjects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("lookup", sa.LargeBinary, nullable=False, unique=True),  # keyed MAC of the identity
    sa.Column("pseudonym", sa.String(40), nullable=False, unique=True),
    sa.Column("salt", sa.LargeBinary, nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),  # AES-GCM under records_kek: nonce + ct
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

dataset_records = sa.Table(
    "dataset_records",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("subject_id", sa.Integer, nullable=True),  # NULL once erased
    sa.Column("annotator", sa.String(40), nullable=True),  # NULL once erased
    sa.Column("commitment", sa.LargeBinary, nullable=False),  # the 32-byte digest on the log
    sa.Column("leaf_index", sa.BigInteger, nullable=False),  # of its dataset.record event
    sa.Column("nonce", sa.LargeBinary, nullable=True),
    sa.Column("ciphertext", sa.LargeBinary, nullable=True),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_dataset_records_subject", "subject_id"),
    sa.Index("ix_dataset_records_annotator", "annotator"),
)

rejected_annotators = sa.Table(
    "rejected_annotators",
    metadata,
    sa.Column("pseudonym", sa.String(40), primary_key=True),
    sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=False),
)

dataset_budgets = sa.Table(
    "dataset_budgets",
    metadata,
    sa.Column("dataset", sa.String(128), primary_key=True),
    sa.Column("epsilon_total", sa.Float, nullable=False),
    sa.Column("delta", sa.Float, nullable=False),
    sa.Column("spent", sa.Float, nullable=False, server_default="0"),
    sa.Column("reserved", sa.Float, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

budget_reservations = sa.Table(
    "budget_reservations",
    metadata,
    sa.Column("run", sa.String(40), primary_key=True),
    sa.Column("dataset", sa.String(128), nullable=False),
    sa.Column("planned", sa.Float, nullable=False),
    sa.Column("spent", sa.Float, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),  # reserved, settled, released
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_budget_reservations_dataset", "dataset"),
)
