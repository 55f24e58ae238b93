"""Checks on a schedule: an ARQ cron job for deployments with Redis, a loop in the server without.

- :func:`compliance_check` is the ARQ job, hourly (:func:`compliance_cron`, which the jobs worker's
  ``app.worker.settings.WorkerSettings`` includes); it uses the worker's database and log when it has them.
- :func:`checks_every` runs the same check every ``interval`` seconds inside the server, which
  :func:`compliance_lifespan` starts when no Redis is configured (``RLHF_AUDIT_REDIS_URL`` unset).
  ``RLHF_AUDIT_COMPLIANCE_INTERVAL`` (seconds, default 3600; 0 disables) sets the pace. The first
  check runs one interval after start, so restarts do not flood the log with checks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ledger.home import LogHome

from ..core.background import every
from ..core.settings import Settings
from ..events.recording import SYSTEM
from .engine import run_checks

__all__ = ["DEFAULT_INTERVAL", "compliance_check", "compliance_cron", "compliance_lifespan",
           "checks_every", "scheduled_check"]

DEFAULT_INTERVAL = 3600.0
ENV_REDIS = "RLHF_AUDIT_REDIS_URL"  # app.jobs.queue.ENV_REDIS: with Redis, the ARQ cron job checks
_log = logging.getLogger("app.compliance")


def _index(db: Any, log: Any, given: Any) -> Any:
    if given is not None:
        return given
    from ..events.index import EventIndex

    return EventIndex(db, log)


async def compliance_check(ctx: dict[str, Any]) -> dict[str, Any]:
    """ARQ job: run the default pack as ``system`` under the worker's ``ctx["settings"]`` (its
    startup's); returns the check's summary. It uses the worker's ``ctx["db"]`` and ``ctx["log"]``
    when it has both, else opens the home."""
    settings: Settings = ctx["settings"]
    db, log = ctx.get("db"), ctx.get("log")
    owned = db is None or log is None
    if db is None or log is None:
        from ..core.database import open_home

        db, log = await open_home(ctx.get("home") or LogHome.resolve(None), migrate=True)
    try:
        run = await run_checks(db, log, _index(db, log, ctx.get("event_index")), actor=SYSTEM,
                               settings=settings)
        return {"leaf_index": run.leaf_index, "tree_size": run.tree_size, "ok": run.ok,
                "counts": run.counts()}
    finally:
        if owned:
            await log.integrate()
            await log.close()
            await db.close()


def compliance_cron() -> Any:
    """The ARQ cron job running :func:`compliance_check` hourly (the server runs the checks
    itself when there is no Redis)."""
    from arq import cron

    return cron(compliance_check, minute={0}, run_at_startup=False, unique=True)


async def scheduled_check(app_state: Any) -> None:
    """One check of the server's own schedule, as ``system``, under the app's settings."""
    db, log = app_state.db, app_state.log
    index = _index(db, log, getattr(app_state, "event_index", None))
    run = await run_checks(db, log, index, actor=SYSTEM, settings=app_state.app_settings)
    _log.info("scheduled compliance check: entry %s, %s", run.leaf_index, run.counts())


@contextlib.asynccontextmanager
async def checks_every(app_state: Any, interval: float) -> AsyncIterator[None]:
    """A check every ``interval`` seconds (the first after one interval, so restarts do not flood
    the log) while the block runs; a failed check is logged and retried, never fatal, and a
    check in progress at the end is finished, not cancelled halfway (``app.core.background``)."""
    async with every(interval, lambda: scheduled_check(app_state), name="scheduled compliance check",
                     first_delay=interval, grace=60):
        yield


@contextlib.asynccontextmanager
async def compliance_lifespan(app: Any) -> AsyncIterator[None]:
    """Server lifespan: the in-process schedule when there is no Redis (the ARQ cron job's place)."""
    settings: Settings = app.state.app_settings  # create_app's
    interval = settings.compliance_interval
    if interval <= 0 or settings.redis_url:
        yield
        return
    async with checks_every(app.state, interval):
        yield
