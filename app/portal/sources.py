"""Read-only views the pages show, taken from the domain modules' own tables and services.

The portal never decides anything itself: listings and changes go through the other modules'
service functions. A module missing from this build shows as an empty
panel with a note, never as an error page.
"""

from __future__ import annotations

import importlib
from typing import Any

from .web import Conn, log_of

__all__ = ["active_jobs", "dashboard", "open_findings", "optional", "recent_decisions"]


def optional(module: str) -> Any:
    """The module, or None when this build does not have it yet."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


async def active_jobs(connection: Conn, limit: int = 50) -> list[Any] | None:
    """Queued, running and halted jobs, newest first (``app.jobs``)."""
    jobs = optional("app.jobs.service")
    if jobs is None:
        return None
    listed = await jobs.list_jobs(log_of(connection), limit=limit)
    return [j for j in listed if j.status in ("queued", "running", "halted")]


async def recent_decisions(connection: Conn, limit: int = 8) -> list[Any] | None:
    oversight = optional("app.oversight.service")
    if oversight is None:
        return None
    decisions: list[Any] = await oversight.list_decisions(log_of(connection), limit=limit)
    return decisions


async def open_findings(connection: Conn) -> list[Any] | None:
    """Open compliance alerts (the failed rules of the checks so far); None before any check."""
    compliance = optional("app.compliance")
    if compliance is None:
        return None
    log = log_of(connection)
    if await compliance.latest_check(log) is None:
        return None
    alerts: list[Any] = await compliance.list_alerts(log, state="open")
    return alerts


async def dashboard(connection: Conn) -> dict[str, Any]:
    return {"jobs": await active_jobs(connection), "decisions": await recent_decisions(connection),
            "findings": await open_findings(connection)}
