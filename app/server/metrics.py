"""Prometheus metrics: the log's health, read at scrape time, and request durations.

Each app has its own :class:`CollectorRegistry` (never the process-global one), so several apps
in one process, as in the tests, keep separate figures. The log gauges are set by ``GET /metrics``
just before it renders, from the database, so every process serving the same log reports the same
values; the request histogram is fed by the middleware in ``app.server.observability``.

Why gauges read from the database rather than counters kept in memory: behind a load balancer
each replica sees only its own share of the appends, and its counters restart at zero with it,
so "entries appended" as a counter would have to be summed over replicas and would still miss
the CLI's and the workers' appends. A gauge read from the shared database is the whole log's
figure from whichever replica is scraped: dashboards and alerts take ``max()`` over replicas,
and rates come from ``deriv()`` of ``rlhf_audit_log_sequenced``. Only the request histogram is
per process (each replica's own traffic), and that one is summed.

Each scrape costs a handful of indexed reads: the tree head, the sequence counter, the newest
checkpoint, the untimestamped checkpoints (at most 1000 per TSA), the count of open compliance
alerts (one row per failing rule at most) and the newest compliance check.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from ledger.log import Log

from ..compliance.schema import compliance_alerts, compliance_checks
from ..core.database import Database
from ..core.deps import DbDep, LogDep

__all__ = ["CONTENT_TYPE", "Metrics", "metrics"]

# The classic text format (0.0.4): what every Prometheus scrapes. prometheus_client's own
# CONTENT_TYPE_LATEST now names 1.0.0, which older scrapers do not know.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # the route label of a request no route matched: never the raw path


class Metrics:
    """One app's registry and its metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tree_size = Gauge("rlhf_audit_log_tree_size",
                               "Entries in the newest integrated tree", registry=r)
        self.sequenced = Gauge("rlhf_audit_log_sequenced",
                               "Entries sequenced (appended), integrated or not", registry=r)
        self.lag = Gauge("rlhf_audit_integration_lag_entries",
                         "Sequenced entries not integrated yet (sequenced - tree size)", registry=r)
        self.index_lag = Gauge("rlhf_audit_leaf_index_lag_entries",
                               "Integrated entries the leaf-hash index does not cover yet (it "
                               "follows the tree; a lookup by hash catches it up first)", registry=r)
        self.checkpoint_age = Gauge("rlhf_audit_checkpoint_age_seconds",
                                    "Seconds since the newest checkpoint was published (NaN: none yet)",
                                    registry=r)
        self.timestamp_gaps = Gauge("rlhf_audit_timestamp_gaps",
                                    "Checkpoint and TSA pairs still missing a timestamp", registry=r)
        self.compliance_open_alerts = Gauge("rlhf_audit_compliance_open_alerts",
                                            "Open compliance alerts: rules failing at the latest check",
                                            registry=r)
        self.compliance_check_age = Gauge("rlhf_audit_compliance_check_age_seconds",
                                          "Seconds since the newest compliance check (NaN: none yet)",
                                          registry=r)
        self.request_duration = Histogram("rlhf_audit_http_request_duration_seconds",
                                          "HTTP request duration by method, route template and status",
                                          ["method", "route", "status"], registry=r)

    async def refresh(self, db: Database, log: Log) -> None:
        """Read the log's figures now; a database failure raises StorageError or Unavailable (503)."""
        size, _ = await log.tree_head()
        sequenced = await log.sequenced_size()
        self.tree_size.set(size)
        self.sequenced.set(sequenced)
        self.lag.set(sequenced - size)
        self.index_lag.set(max(0, size - await log.leaf_index_size()))
        latest = await log.latest_checkpoint()
        self.checkpoint_age.set(_age(None if latest is None else latest.published_at))
        self.timestamp_gaps.set(len(await log.timestamp_gaps()))
        open_alerts, checked_at = await _compliance(db)
        self.compliance_open_alerts.set(open_alerts)
        self.compliance_check_age.set(_age(checked_at))

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        self.request_duration.labels(method, route or UNMATCHED, str(status)).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _age(at: datetime | None) -> float:
    """Seconds since ``at``; NaN for never (Prometheus compares NaN as false: no alert fires)."""
    if at is None:
        return math.nan
    if at.tzinfo is None:  # SQLite hands back naive datetimes; they are UTC
        at = at.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - at).total_seconds())


async def _compliance(db: Database) -> tuple[int, datetime | None]:
    """(open compliance alerts, when the newest check ran), in one short read transaction."""
    a, c = compliance_alerts.c, compliance_checks.c
    async with db.connect("reading compliance figures") as conn:
        count = sa.select(sa.func.count()).select_from(compliance_alerts).where(a.state == "open")
        open_alerts = (await conn.execute(count)).scalar_one()
        checked_at = (await conn.execute(
            sa.select(c.checked_at).order_by(c.id.desc()).limit(1))).scalar_one_or_none()
    return int(open_alerts), checked_at


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any], db: DbDep, log: LogDep) -> Response[bytes]:
    """Prometheus text format; the log gauges are read from the database for this scrape."""
    m: Metrics = request.app.state.metrics
    await m.refresh(db, log)
    # Litestar appends "; charset=utf-8" to text types itself, which makes it CONTENT_TYPE.
    return Response(m.render(), media_type=CONTENT_TYPE.removesuffix("; charset=utf-8"),
                    headers={"Cache-Control": "no-store"})
