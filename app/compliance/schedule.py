"""Checks on a schedule: an ARQ cron job for deployments with Redis, a loop in the server without.

- :func:`compliance_check` is the ARQ job (``WorkerSettings.cron_jobs`` in ``trainers.worker``
  registers it with ``arq.cron``); it uses the worker's ``ctx["log"]`` when there is one.
- :func:`run_periodically` is the same check every ``interval`` seconds inside the server, which
  :func:`compliance_lifespan` starts when no Redis is configured (``RLHF_AUDIT_REDIS_URL`` unset).
  ``RLHF_AUDIT_COMPLIANCE_INTERVAL`` (seconds, default 3600; 0 disables) sets the pace. The first
  check runs one interval after start, so restarts do not flood the log with checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from ledger.errors import LedgerError
from ledger.home import LogHome

from ..recording import SYSTEM
from .config import ENV_INTERVAL, number_from_env
from .engine import run_checks

__all__ = ["DEFAULT_INTERVAL", "compliance_check", "compliance_lifespan", "interval_from_env",
           "run_periodically"]

DEFAULT_INTERVAL = 3600.0
ENV_REDIS = "RLHF_AUDIT_REDIS_URL"  # app.jobs.queue.ENV_REDIS: with Redis, the ARQ cron job checks
_log = logging.getLogger("app.compliance")


def interval_from_env() -> float:
    """Seconds between scheduled checks; 0 disables them."""
    return number_from_env(ENV_INTERVAL, DEFAULT_INTERVAL)


def _index(log: Any, given: Any) -> Any:
    if given is not None:
        return given
    from ..event_index import EventIndex

    return EventIndex(log)


async def compliance_check(ctx: dict[str, Any]) -> dict[str, Any]:
    """ARQ job: run the default pack as ``system``; returns the check's summary."""
    log = ctx.get("log")
    owned = log is None
    if owned:
        log = await LogHome.resolve(None).open_log(migrate=True)
    try:
        run = await run_checks(log, _index(log, ctx.get("event_index")), actor=SYSTEM)
        return {"leaf_index": run.leaf_index, "tree_size": run.tree_size, "ok": run.ok,
                "counts": run.counts()}
    finally:
        if owned:
            await log.integrate()
            await log.close()


async def run_periodically(app_state: Any, interval: float) -> None:
    """Check every ``interval`` seconds until cancelled; a failed check is logged, never fatal."""
    while True:
        await asyncio.sleep(interval)
        try:
            log = app_state.log
            run = await run_checks(log, _index(log, getattr(app_state, "event_index", None)), actor=SYSTEM)
            _log.info("scheduled compliance check: entry %s, %s", run.leaf_index, run.counts())
        except LedgerError as e:
            _log.warning("scheduled compliance check failed (will retry): %s", e)
        except Exception:  # a bug must not stop the schedule for the server's lifetime
            _log.exception("scheduled compliance check failed (will retry)")


@contextlib.asynccontextmanager
async def compliance_lifespan(app: Any) -> AsyncIterator[None]:
    """Server lifespan: the in-process schedule when there is no Redis (the ARQ cron job's place)."""
    interval = interval_from_env()
    task = None
    if interval > 0 and not os.environ.get(ENV_REDIS):
        task = asyncio.create_task(run_periodically(app.state, interval), name="compliance-schedule")
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
