"""``rlhf-audit worker``: run training jobs, as an ARQ worker or the local worker.

Mounted on the ``rlhf-audit`` group by ``app.cli``, imported only when it runs.
"""

from __future__ import annotations

import asyncio

import click

__all__ = ["worker"]


@click.command()
@click.option("--local", "local", is_flag=True,
              help="Drain the jobs table in this process (no Redis), as `serve` does by default.")
@click.option("--burst", is_flag=True, help="Exit once no job is queued.")
@click.pass_context
def worker(ctx: click.Context, local: bool, burst: bool) -> None:
    """Run training jobs: an ARQ worker on RLHF_AUDIT_REDIS_URL, or the local worker."""
    from ledger.home import LogHome

    from ..core.commands import settings_of
    from ..jobs.queue import ENV_REDIS

    settings = settings_of(ctx)
    if not local and not settings.redis_url:
        raise click.UsageError(f"set {ENV_REDIS} for an ARQ worker, or pass --local")
    home = LogHome.resolve(ctx.obj.get("home"))  # --home, else $RLHF_AUDIT_HOME, else the default
    if local:
        from .local import run_local_worker
        from .runtime import WorkerContext
        from .settings import shutdown, startup

        async def go() -> int:
            state: WorkerContext = {"home": home, "settings": settings}
            await startup(state)
            try:
                return await run_local_worker(state, burst=burst)
            finally:
                await shutdown(state)

        ran = asyncio.run(go())
        click.echo(f"local worker ran {ran} job(s)", err=True)
        return
    from arq.worker import run_worker

    from .settings import worker_settings

    run_worker(worker_settings(home, settings), burst=burst)
