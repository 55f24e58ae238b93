"""Alerts: a failing rule opens one, a later check that no longer fails it resolves it.

Alerts live in ``compliance_alerts`` (open/resolved) and each opening or resolution is POSTed as
JSON to the configured webhook (``RLHF_AUDIT_ALERT_WEBHOOK`` or the ``alert_webhook_url``
setting). Delivery has a timeout and never fails a check: what happened is kept on the alert
(``delivery``), and the check's own event on the log stays the authoritative record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from ..core.database import Database
from .config import ComplianceConfig
from .pack import RuleResult
from .schema import compliance_alerts

__all__ = ["Alert", "deliver", "list_alerts", "update_alerts"]

_log = logging.getLogger("app.compliance")
USER_AGENT = "rlhf-audit-trail compliance alerts"


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    id: int
    rule: str
    article: str
    state: str  # open | resolved
    summary: str
    entries: tuple[int, ...]
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    check_id: int
    delivery: str

    @classmethod
    def from_row(cls, row: Any) -> Alert:
        return cls(int(row.id), row.rule, row.article, row.state, row.summary,
                   tuple(orjson.loads(row.entries)), _aware(row.opened_at) or datetime.now(UTC),
                   _aware(row.last_seen_at) or datetime.now(UTC), _aware(row.resolved_at),
                   int(row.check_id), row.delivery)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "rule": self.rule, "article": self.article, "state": self.state,
                "summary": self.summary, "entries": list(self.entries),
                "opened_at": _iso(self.opened_at), "last_seen_at": _iso(self.last_seen_at),
                "resolved_at": _iso(self.resolved_at), "delivery": self.delivery}


async def _execute(db: Database, what: str, *statements: Any) -> list[Any]:
    async with db.transaction(what) as conn:
        return [await conn.execute(s) for s in statements]


async def list_alerts(db: Database, state: str | None = None, limit: int = 500) -> list[Alert]:
    """Alerts, newest first; ``state`` 'open' or 'resolved' filters."""
    t = compliance_alerts.c
    stmt = sa.select(compliance_alerts).order_by(t.id.desc()).limit(limit)
    if state is not None:
        stmt = stmt.where(t.state == state)
    (result,) = await _execute(db, "reading alerts", stmt)
    return [Alert.from_row(r) for r in result.all()]


async def deliver(url: str, payload: dict[str, Any], timeout: float) -> str:
    """POST ``payload`` as JSON; return what happened, in words. Never raises."""
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            response = await client.post(url, content=orjson.dumps(payload), headers={
                "Content-Type": "application/json", "User-Agent": USER_AGENT})
    except httpx.HTTPError as e:
        _log.warning("alert webhook %s unreachable: %s", url, e)
        return f"failed: {type(e).__name__}: {e}"[:500]
    if response.is_success:
        return f"delivered: HTTP {response.status_code}"
    _log.warning("alert webhook %s answered HTTP %d", url, response.status_code)
    return f"failed: HTTP {response.status_code}"


async def update_alerts(
    db: Database, check_id: int, results: Sequence[RuleResult], config: ComplianceConfig,
    context: dict[str, Any],
) -> tuple[list[Alert], list[Alert]]:
    """Open alerts for failures not already open, resolve open ones that no longer fail, notify.

    Returns (opened, resolved). A failure that stays open only refreshes ``last_seen_at``.
    """
    t = compliance_alerts.c
    now = datetime.now(UTC)
    open_by_rule = {a.rule: a for a in await list_alerts(db, "open")}
    statements: list[Any] = []
    failing = {r.rule for r in results if r.status == "fail"}
    for r in results:
        entries = orjson.dumps(list(r.entries)).decode()
        if r.rule in open_by_rule and r.status == "fail":
            statements.append(sa.update(compliance_alerts).where(t.id == open_by_rule[r.rule].id).values(
                last_seen_at=now, summary=r.summary, entries=entries, check_id=check_id))
        elif r.status == "fail":
            statements.append(sa.insert(compliance_alerts).values(
                rule=r.rule, article=r.article, state="open", summary=r.summary, entries=entries,
                opened_at=now, last_seen_at=now, resolved_at=None, check_id=check_id,
                delivery="not sent: no webhook configured" if not config.webhook_url else "pending"))
    resolved_ids = [a.id for rule, a in open_by_rule.items() if rule not in failing]
    if resolved_ids:
        statements.append(sa.update(compliance_alerts).where(t.id.in_(resolved_ids)).values(
            state="resolved", resolved_at=now, check_id=check_id))
    if statements:
        await _execute(db, "storing alerts", *statements)
    after = {a.id: a for a in await list_alerts(db)}
    opened = [a for a in after.values() if a.state == "open" and a.rule not in open_by_rule
              and a.check_id == check_id]
    resolved = [after[i] for i in resolved_ids if i in after]
    if config.webhook_url:
        await _notify(db, config, opened + resolved, context)
    return opened, resolved


async def _notify(db: Database, config: ComplianceConfig, alerts: list[Alert],
                  context: dict[str, Any]) -> None:
    t = compliance_alerts.c
    assert config.webhook_url is not None
    for alert in alerts:
        shown = {k: v for k, v in alert.to_json().items() if k != "delivery"}
        payload = {"type": "rlhf-audit.compliance.alert", "state": alert.state, "alert": shown, **context}
        outcome = await deliver(config.webhook_url, payload, config.webhook_timeout_s)
        await _execute(db, "recording an alert's delivery", sa.update(compliance_alerts)
                       .where(t.id == alert.id).values(delivery=outcome))
