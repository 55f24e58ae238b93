"""The ARQ worker that runs training jobs (``rlhf-audit worker``; ``arq app.worker.settings.WorkerSettings``).

Settings are plain data, as arq has them: the one job function (:func:`app.worker.runtime.run_training`),
the compliance checks' cron job (registered by :mod:`app.compliance.schedule`), and
:func:`startup` / :func:`shutdown`, which open and close the home for the worker's context (the
local worker, ``rlhf-audit worker --local``, uses them too).
"""

from __future__ import annotations

import os

from arq import func
from arq.connections import RedisSettings

from ledger.home import LogHome

from ..compliance.schedule import compliance_cron
from ..core.database import open_home
from ..core.keyring import Keyring
from ..jobs.queue import DEFAULT_QUEUE, ENV_QUEUE, ENV_REDIS, JOB_FUNCTION
from ..objects import object_store
from .runtime import WorkerContext, run_training

__all__ = ["WorkerSettings", "shutdown", "startup"]

TRAINING_TIMEOUT = 7 * 24 * 3600  # seconds: training may take days


async def startup(ctx: WorkerContext) -> None:
    """Open the home's database and log (``RLHF_AUDIT_HOME``), its keyring and object store."""
    home = LogHome.resolve(os.environ.get("RLHF_AUDIT_HOME"))
    ctx["db"], ctx["log"] = await open_home(home, migrate=True)
    ctx["keyring"] = Keyring.of(home)
    ctx["objects"] = object_store(home)


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
    queue_name = os.environ.get(ENV_QUEUE) or DEFAULT_QUEUE
    redis_settings = RedisSettings.from_dsn(os.environ.get(ENV_REDIS) or "redis://127.0.0.1:6379")
