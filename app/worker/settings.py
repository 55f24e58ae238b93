"""The ARQ worker that runs training jobs (``rlhf-audit worker``).

Settings are plain data, as arq has them: the one job function (:func:`app.worker.runtime.run_training`),
the compliance checks' cron job (registered by :mod:`app.compliance.schedule`), and
:func:`startup` / :func:`shutdown`, which open and close the home for the worker's context (the
local worker, ``rlhf-audit worker --local``, uses them too). :func:`worker_settings` adds what
the application's :class:`~app.core.settings.Settings` decide (the queue, Redis) and the home
and settings ``startup`` opens, all handed in by the command.
"""

from __future__ import annotations

from typing import Any

from arq import func
from arq.connections import RedisSettings

from ledger.home import LogHome

from ..compliance.schedule import compliance_cron
from ..core.database import open_home
from ..core.keyring import Keyring
from ..core.settings import Settings
from ..jobs.queue import DEFAULT_QUEUE, JOB_FUNCTION
from ..objects import object_store
from .runtime import WorkerContext, run_training

__all__ = ["WorkerSettings", "shutdown", "startup", "worker_settings"]

TRAINING_TIMEOUT = 7 * 24 * 3600  # seconds: training may take days
DEFAULT_REDIS = "redis://127.0.0.1:6379"


async def startup(ctx: WorkerContext) -> None:
    """Open the home's database and log, its keyring and object store: ``ctx["home"]`` with
    ``ctx["settings"]``, which the command hands in."""
    home, settings = ctx["home"], ctx["settings"]
    ctx["db"], ctx["log"] = await open_home(home, migrate=True)
    ctx["keyring"] = Keyring.of(home, settings)
    ctx["objects"] = object_store(home, settings)


async def shutdown(ctx: WorkerContext) -> None:
    log, db = ctx.get("log"), ctx.get("db")
    if log is not None:
        await log.integrate()
        await log.close()
    if db is not None:
        await db.close()


class WorkerSettings:
    """What ``rlhf-audit worker`` runs: one training at a time per process, never retried."""

    # a retry would train twice, so none
    functions = [func(run_training, name=JOB_FUNCTION, timeout=TRAINING_TIMEOUT, max_tries=1)]  # type: ignore[arg-type]
    cron_jobs = [compliance_cron()]
    on_startup = startup
    on_shutdown = shutdown
    allow_abort_jobs = True
    max_jobs = 1


def worker_settings(home: LogHome, settings: Settings) -> dict[str, Any]:
    """:class:`WorkerSettings` with the queue and Redis of ``settings`` (``RLHF_AUDIT_QUEUE``,
    ``RLHF_AUDIT_REDIS_URL``), and ``home`` and ``settings`` in the context ``startup`` opens."""
    fixed = {k: v for k, v in vars(WorkerSettings).items() if not k.startswith("_")}
    return {**fixed, "queue_name": settings.queue or DEFAULT_QUEUE,
            "redis_settings": RedisSettings.from_dsn(settings.redis_url or DEFAULT_REDIS),
            "ctx": {"home": home, "settings": settings}}
