"""Prometheus metrics: the log's health, read at scrape time, and request durations.

Each app has its own :class:`CollectorRegistry` (never the process-global one), so several apps
in one process, as in the tests, keep separate figures. The log gauges are set by ``GET /metrics``
just before it renders, from the database, so every process serving the same log reports the same
values; the request histogram is fed by the middleware in ``app.observability``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from ledger.log import Log

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
        self.checkpoint_age = Gauge("rlhf_audit_checkpoint_age_seconds",
                                    "Seconds since the newest checkpoint was published (NaN: none yet)",
                                    registry=r)
        self.timestamp_gaps = Gauge("rlhf_audit_timestamp_gaps",
                                    "Checkpoint and TSA pairs still missing a timestamp", registry=r)
        self.request_duration = Histogram("rlhf_audit_http_request_duration_seconds",
                                          "HTTP request duration by method, route template and status",
                                          ["method", "route", "status"], registry=r)

    async def refresh(self, log: Log) -> None:
        """Read the log's figures now; a database failure raises StorageError (a 503)."""
        size, _ = await log.store.tree_head()
        sequenced = await log.store.sequenced_size()
        self.tree_size.set(size)
        self.sequenced.set(sequenced)
        self.lag.set(sequenced - size)
        latest = await log.latest_checkpoint()
        if latest is None or latest.published_at is None:
            self.checkpoint_age.set(math.nan)
        else:
            published = latest.published_at
            if published.tzinfo is None:  # SQLite hands back naive datetimes; they are UTC
                published = published.replace(tzinfo=UTC)
            self.checkpoint_age.set(max(0.0, (datetime.now(UTC) - published).total_seconds()))
        self.timestamp_gaps.set(len(await log.timestamp_gaps()))

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        self.request_duration.labels(method, route or UNMATCHED, str(status)).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format; the log gauges are read from the database for this scrape."""
    m: Metrics = request.app.state.metrics
    await m.refresh(request.app.state.log)
    # Litestar appends "; charset=utf-8" to text types itself, which makes it CONTENT_TYPE.
    return Response(m.render(), media_type=CONTENT_TYPE.removesuffix("; charset=utf-8"),
                    headers={"Cache-Control": "no-store"})
