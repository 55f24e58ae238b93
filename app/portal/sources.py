"""Read-only views the pages show, taken from the domain modules' own tables and services.

The portal never decides anything itself: listings and changes go through the other modules'
service functions, imported directly (every domain is part of every build).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..compliance import latest_check
from ..datasets import list_datasets
from ..jobs.service import TERMINAL, Job, list_jobs
from ..oversight.service import Decision, list_decisions, release_state
from .web import Conn, db_of

__all__ = ["active_jobs", "ago", "attention", "budgets", "dashboard", "failing_rules", "halted_runs",
           "models_waiting", "recent_decisions"]

JOBS_SCANNED = 1000  # the newest jobs the attention panels look through


async def active_jobs(connection: Conn, limit: int = 50) -> list[Job]:
    """Queued, running and halted jobs, newest first (``app.jobs``)."""
    listed = await list_jobs(db_of(connection), limit=limit)
    return [j for j in listed if j.status in ("queued", "running", "halted")]


async def recent_decisions(connection: Conn, limit: int = 8) -> list[Decision]:
    return await list_decisions(db_of(connection), limit=limit)


async def dashboard(connection: Conn) -> dict[str, Any]:
    """The activity panels: jobs running or queued, recent decisions (failing rules: :func:`attention`)."""
    return {"jobs": await active_jobs(connection), "decisions": await recent_decisions(connection)}


# -- what needs attention --------------------------------------------------------------------------


def ago(when: datetime | str | None, now: datetime | None = None) -> str:
    """'just now', '12 min ago', '3 h ago', '2 d ago' (UTC); '' when unknown."""
    if when is None:
        return ""
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    seconds = max(0.0, ((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def _at(iso: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM UTC'."""
    return "" if not iso else iso[:16].replace("T", " ") + " UTC"


async def halted_runs(connection: Conn, jobs: list[Job]) -> list[dict[str, Any]]:
    """Runs halted (or stopping after a halt) that only a second overseer can resume."""
    db = db_of(connection)
    out = []
    for j in jobs:
        if not j.halted or j.status in TERMINAL:
            continue
        halt = next(iter(await list_decisions(db, run=j.run, action="halt", limit=1)), None)
        out.append({"run": j.run, "dataset": j.dataset, "steps": j.steps, "stopping": j.status != "halted",
                    "by": halt.actor if halt else None, "iso": halt.created_at if halt else "",
                    "at": _at(halt.created_at) if halt else "",
                    "ago": ago(halt.created_at) if halt else "",
                    "entry": halt.leaf_index if halt else None})
    return out


async def models_waiting(connection: Conn, jobs: list[Job]) -> dict[str, list[dict[str, Any]]]:
    """Completed runs' models whose release state is undecided (waiting for approval or veto) or
    approved (waiting for release): ``app.oversight.service.release_state``."""
    db = db_of(connection)
    out: dict[str, list[dict[str, Any]]] = {"approval": [], "release": []}
    for j in jobs:
        if j.status != "completed" or not j.model:
            continue
        state = await release_state(db, j.run)
        row = {"run": j.run, "model": j.model, "steps": j.steps, "epsilon": j.epsilon, "done": j.updated_at,
               "done_ago": ago(j.updated_at)}
        if state.state == "undecided":
            out["approval"].append(row)
        elif state.state == "approved" and state.decision is not None:
            d = state.decision
            out["release"].append({**row, "by": d.actor, "iso": d.created_at, "at": _at(d.created_at),
                                   "ago": ago(d.created_at), "entry": d.leaf_index})
    return out


async def failing_rules(connection: Conn) -> dict[str, Any] | None:
    """The newest stored compliance check (``app.compliance.latest_check``): its failing rules and
    how long ago it ran; None before any check."""
    check = await latest_check(db_of(connection))
    if check is None:
        return None
    failing = [{"rule": r.rule, "article": r.article, "title": r.title, "summary": r.summary,
                "entries": list(r.entries[:5]), "more": max(0, len(r.entries) - 5)}
               for r in check.results if r.status == "fail"]
    return {"failing": failing, "rules": len(check.results), "ago": ago(check.checked_at),
            "at": check.checked_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "entry": check.leaf_index, "tree_size": check.tree_size}


def _gauge(name: str, budget: dict[str, Any] | None) -> dict[str, Any]:
    if budget is None:
        return {"dataset": name, "total": None, "short": True}
    total = float(budget["epsilon_total"])
    spent, reserved = float(budget["spent"]), float(budget["reserved"])
    left = max(0.0, total - spent - reserved)

    def share(x: float) -> float:  # of the bar's width, in percent
        return round(100 * min(x, total) / total, 2) if total > 0 else 0.0

    return {"dataset": name, "total": total, "spent": spent, "reserved": reserved, "left": left,
            "spent_pct": share(spent), "reserved_pct": min(share(reserved), 100 - share(spent)),
            "short": total <= 0 or left / total < 0.1}  # under a tenth left: needs attention


async def budgets(connection: Conn) -> list[dict[str, Any]]:
    """Each dataset's privacy budget: spent, reserved and left of the total (``app.datasets``)."""
    return [_gauge(d["dataset"], d["budget"]) for d in await list_datasets(db_of(connection))]


async def attention(connection: Conn) -> dict[str, Any]:
    """What waits for someone: the dashboard's "needs attention" panels."""
    jobs = await list_jobs(db_of(connection), limit=JOBS_SCANNED)
    return {"halted": await halted_runs(connection, jobs), "models": await models_waiting(connection, jobs),
            "rules": await failing_rules(connection), "budgets": await budgets(connection),
            "witnesses": None}  # the product has no witnesses yet: the panel says so
