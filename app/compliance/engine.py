"""Running a pack against the log: evaluate every rule, record one event, keep the results, alert.

``run_checks`` is what the API, the schedule and the CLI call. Its result is first an event on
the log (``compliance.checked``, docs/events.md), so the record of every check is as tamper-evident
as what it checked; the row in ``compliance_checks`` and the alerts only serve queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.log import Log

from ..core.database import Database
from ..core.settings import Settings
from ..events.recording import SYSTEM, Actor, record
from .alerts import Alert, update_alerts
from .config import ComplianceConfig
from .pack import CheckContext, Pack, RuleResult
from .rules import DEFAULT_PACK
from .schema import compliance_checks

__all__ = ["CheckRun", "evaluate", "latest_check", "run_checks"]


@dataclass(frozen=True)
class CheckRun:
    """One evaluation of a pack, as stored and recorded."""

    id: int
    pack: str
    pack_version: str
    checked_at: datetime
    tree_size: int
    leaf_index: int | None  # of its compliance.checked event
    actor: str
    results: tuple[RuleResult, ...]
    opened: tuple[Alert, ...] = field(default=())
    resolved: tuple[Alert, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "not_applicable": 0}
        for r in self.results:
            out[r.status] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "pack": self.pack, "pack_version": self.pack_version,
            "checked_at": self.checked_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "tree_size": self.tree_size, "leaf_index": self.leaf_index,
            "proof": None if self.leaf_index is None else f"/log/v1/proof/{self.leaf_index}",
            "actor": self.actor, "ok": self.ok, "counts": self.counts(),
            "results": [{**r.to_json(), "title": r.title} for r in self.results],
            "alerts_opened": [a.to_json() for a in self.opened],
            "alerts_resolved": [a.to_json() for a in self.resolved],
        }


async def configured(db: Database, log: Log, settings: Settings | None,
                     config: ComplianceConfig | None) -> ComplianceConfig:
    """``config`` when given, else the one ``settings`` (the caller's) make."""
    if config is not None:
        return config
    if settings is None:
        raise TypeError("give the caller's settings (or a ComplianceConfig): none are built here")
    return await ComplianceConfig.load(db, log, settings)


async def evaluate(
    db: Database, log: Log, index: Any, *, pack: Pack = DEFAULT_PACK, settings: Settings | None = None,
    config: ComplianceConfig | None = None, tree_size: int | None = None,
) -> tuple[list[RuleResult], CheckContext]:
    """Evaluate every rule of ``pack`` over the first ``tree_size`` entries (default: all
    sequenced), recording nothing; the context keeps what rules computed (for reports).
    ``config`` (or the one ``settings`` make) says what the rules assume."""
    config = await configured(db, log, settings, config)
    size = tree_size if tree_size is not None else await log.sequenced_size()
    ctx = CheckContext(log, index, config, size)
    return [await rule.evaluate(ctx) for rule in pack.rules], ctx


async def run_checks(
    db: Database, log: Log, index: Any, *, pack: Pack = DEFAULT_PACK, actor: Actor = SYSTEM,
    settings: Settings | None = None, config: ComplianceConfig | None = None,
) -> CheckRun:
    """Evaluate ``pack``, record ``compliance.checked``, store the results, raise/resolve alerts.
    ``config`` (or the one the caller's ``settings`` make) says what the rules assume."""
    config = await configured(db, log, settings, config)
    results, ctx = await evaluate(db, log, index, pack=pack, config=config)
    entry = await record(log, "compliance.checked", actor, pack=pack.name, pack_version=pack.version,
                         results=[r.to_json() for r in results], tree_size=ctx.tree_size)
    now = datetime.now(UTC)
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail")}
    t = compliance_checks
    inserted = await db.execute("storing a compliance check", sa.insert(t).values(
        pack=pack.name, pack_version=pack.version, checked_at=now, tree_size=ctx.tree_size,
        leaf_index=entry.leaf_index, actor=actor.pseudonym, passed=counts["pass"],
        failed=counts["fail"],
        results=orjson.dumps([{**r.to_json(), "title": r.title} for r in results]).decode(),
    ).returning(t.c.id))
    check_id = int(inserted.scalar_one())
    context = {"pack": pack.id, "check": {"leaf_index": entry.leaf_index, "tree_size": ctx.tree_size,
                                          "proof": f"/log/v1/proof/{entry.leaf_index}"}}
    opened, resolved = await update_alerts(db, check_id, results, config, context)
    return CheckRun(check_id, pack.name, pack.version, now, ctx.tree_size, entry.leaf_index,
                    actor.pseudonym, tuple(results), tuple(opened), tuple(resolved))


async def latest_check(db: Database) -> CheckRun | None:
    """The most recent stored check run, or None."""
    t = compliance_checks.c
    async with db.connect("reading compliance checks") as conn:
        row = (await conn.execute(sa.select(compliance_checks).order_by(t.id.desc()).limit(1))).first()
    if row is None:
        return None
    at = row.checked_at if row.checked_at.tzinfo else row.checked_at.replace(tzinfo=UTC)
    results = tuple(RuleResult.from_json(r, r.get("title", "")) for r in orjson.loads(row.results))
    return CheckRun(int(row.id), row.pack, row.pack_version, at, int(row.tree_size),
                    None if row.leaf_index is None else int(row.leaf_index), row.actor, results)
