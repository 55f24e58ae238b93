"""The local worker: without Redis, the jobs table is the queue and one process drains it.

``rlhf-audit serve`` starts ``rlhf-audit worker --local`` as a child process when
``RLHF_AUDIT_REDIS_URL`` is unset, so the embedded default trains on one machine with nothing
else installed. It runs the very job function ARQ workers run (``app.worker.runtime.run_training``),
one job at a time, polling for ``queued`` rows.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import TYPE_CHECKING

from ..jobs.service import next_queued

if TYPE_CHECKING:  # the runtime imports the datasets and trainers: only where jobs run
    from .runtime import WorkerContext

__all__ = ["ENV_PARENT", "run_local_worker", "start_local_worker_process"]


ENV_PARENT = "RLHF_AUDIT_WORKER_PARENT"


def _orphaned() -> bool:
    """True once the server that started this worker has gone (the worker then stops)."""
    parent = os.environ.get(ENV_PARENT)
    return parent is not None and str(os.getppid()) != parent


async def run_local_worker(ctx: WorkerContext, *, burst: bool = False, poll: float = 0.5) -> int:
    """Run queued jobs until stopped (``burst``: until none is queued); returns how many ran."""
    from .runtime import run_training

    ran = 0
    while not _orphaned():
        run = await next_queued(ctx["db"])
        if run is None:
            if burst:
                return ran
            await asyncio.sleep(poll)
            continue
        if await run_training(ctx, run) != "skipped":
            ran += 1
    return ran


def start_local_worker_process(home: str | None) -> subprocess.Popen[bytes]:
    """``rlhf-audit worker --local`` as a child of this process (the server stops it on exit)."""
    args = [sys.executable, "-m", "app.cli"]
    if home:
        args += ["--home", home]
    return subprocess.Popen([*args, "worker", "--local"], env={**os.environ, ENV_PARENT: str(os.getpid())})
