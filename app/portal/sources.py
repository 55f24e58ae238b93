"""Read-only views the pages show, taken from the domain modules' own tables and services.

The portal never decides anything itself: listings and changes go through the other modules'
service functions, imported directly (every domain is part of every build).
"""

from __future__ import annotations

from typing import Any

from ..compliance import Alert, latest_check, list_alerts
from ..jobs.service import Job, list_jobs
from ..oversight.service import Decision, list_decisions
from .web import Conn, db_of

__all__ = ["active_jobs", "dashboard", "open_findings", "recent_decisions"]


async def active_jobs(connection: Conn, limit: int = 50) -> list[Job]:
    """Queued, running and halted jobs, newest first (``app.jobs``)."""
    listed = await list_jobs(db_of(connection), limit=limit)
    return [j for j in listed if j.status in ("queued", "running", "halted")]


async def recent_decisions(connection: Conn, limit: int = 8) -> list[Decision]:
    return await list_decisions(db_of(connection), limit=limit)


async def open_findings(connection: Conn) -> list[Alert] | None:
    """Open compliance alerts (the failed rules of the checks so far); None before any check."""
    db = db_of(connection)
    if await latest_check(db) is None:
        return None
    return await list_alerts(db, state="open")


async def dashboard(connection: Conn) -> dict[str, Any]:
    return {"jobs": await active_jobs(connection), "decisions": await recent_decisions(connection),
            "findings": await open_findings(connection)}
