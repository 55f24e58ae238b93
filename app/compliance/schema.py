"""The compliance tables as SQLAlchemy Core, mirroring ``migrations/versions/0007_compliance.py``.

A MetaData of its own (the ledger's stays the ledger's). The log holds the authoritative record
of every check (``compliance.checked``); these rows only make the latest results and the alert
workflow (open -> resolved) cheap to query.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["compliance_alerts", "compliance_checks", "metadata"]

metadata = sa.MetaData()

compliance_checks = sa.Table(
    "compliance_checks",
    metadata,
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

compliance_alerts = sa.Table(
    "compliance_alerts",
    metadata,
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
)
