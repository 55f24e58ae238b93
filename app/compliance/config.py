"""Settings of the compliance engine: retention, timestamp tolerance, alert webhook, TSA roots.

Built from the application's :class:`~app.core.settings.Settings` (flag > environment >
``config.toml`` > default) and the run-time table above them: the server's run-time setting
``alert_webhook_url`` (``app.config.runtime``, changed by an admin while the server runs) applies
when neither the environment nor ``config.toml`` names a webhook (an operator's pinned webhook
wins: tested). Plain data, read once per check run, so a changed setting applies from the next check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from cryptography import x509

from ledger.home import ENV_TSA_ROOTS, tsa_roots_from_env
from ledger.log import Log
from ledger.timestamping import LocalTSAClient

from ..core.database import Database
from ..core.errors import Unavailable
from ..core.settings import Settings

__all__ = [
    "ENV_INTERVAL",
    "ENV_RETENTION",
    "ENV_TOLERANCE",
    "ENV_TSA_ROOTS",
    "ENV_WEBHOOK",
    "MIN_RETENTION_DAYS",
    "ComplianceConfig",
]

# read into Settings (app.core.settings): retention_days, alert_webhook, timestamp_tolerance,
# compliance_interval
ENV_RETENTION = "RLHF_AUDIT_RETENTION_DAYS"
ENV_WEBHOOK = "RLHF_AUDIT_ALERT_WEBHOOK"
ENV_TOLERANCE = "RLHF_AUDIT_TIMESTAMP_TOLERANCE"
ENV_INTERVAL = "RLHF_AUDIT_COMPLIANCE_INTERVAL"
DEFAULT_RETENTION_DAYS = 3650  # Art. 18 keeps technical documentation ten years
MIN_RETENTION_DAYS = 183  # Art. 19(1) / 26(6): at least six months


async def _setting(db: Database, key: str) -> str | None:
    """A run-time setting of the server (``app.config.runtime``, the ``server_settings`` table), if stored."""
    from app.config.runtime import server_settings

    t = server_settings.c
    try:
        async with db.connect("reading a server setting") as conn:
            raw = (await conn.execute(sa.select(t.value).where(t.key == key))).scalar_one_or_none()
        value = None if raw is None else orjson.loads(raw)
    except (Unavailable, orjson.JSONDecodeError):
        return None  # no settings table (an older home) or a bad row: the default applies
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ComplianceConfig:
    """What the rules and alerts need to know beyond the log itself."""

    retention_days: float = DEFAULT_RETENTION_DAYS
    timestamp_tolerance_s: float = 3600.0
    webhook_url: str | None = None
    webhook_timeout_s: float = 5.0
    tsa_roots: tuple[x509.Certificate, ...] = field(default=())

    @classmethod
    async def load(cls, db: Database, log: Log, settings: Settings,
                   extra_roots: Sequence[x509.Certificate] = ()) -> ComplianceConfig:
        """From the caller's settings (the app's, the worker's, the command's), the run-time table
        and the log's own local TSA root."""
        webhook = settings.alert_webhook or await _setting(db, "alert_webhook_url")
        roots = [t.tsa.root_certificate for t in log.tsas if isinstance(t, LocalTSAClient)]
        roots += tsa_roots_from_env()  # the ledger's setting: `verify` trusts the same roots
        return cls(
            retention_days=settings.retention_days,
            timestamp_tolerance_s=settings.timestamp_tolerance,
            webhook_url=webhook or None,
            tsa_roots=tuple(roots) + tuple(extra_roots),
        )
