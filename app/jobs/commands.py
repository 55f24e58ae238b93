"""CLI commands for training jobs: ``jobs`` (submit, status, list, wait, cancel).

Mounted on the ``rlhf-audit`` group by ``app.cli``. They work on the home's database and log
directly (like ``users``); ``worker`` is :mod:`app.worker.commands`, the oversight commands
:mod:`app.oversight.commands`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..core.commands import Opened, acting_as, on_home, settings_of

__all__ = ["jobs"]


def _print(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


@click.group()
def jobs() -> None:
    """Training jobs: submit a spec, follow it, cancel it."""


@jobs.command("submit")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option("--as", "as_account", default=None, help="The account submitting (default: system).")
@click.pass_context
def jobs_submit(ctx: click.Context, spec: Path, as_account: str | None) -> None:
    """Submit the job spec in SPEC (JSON; - for stdin); prints the run id."""
    text = sys.stdin.read() if str(spec) == "-" else _read(spec)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="SPEC") from None

    async def body(home: Opened) -> Any:
        from . import service
        from .queue import queue_from_env

        queue = queue_from_env(settings_of(ctx))
        try:
            actor = await acting_as(home.db, home.keyring, as_account)
            return await service.submit(home.db, home.log, home.keyring, queue, doc, actor,
                                        submitted_by=as_account or "cli")
        finally:
            await queue.close()

    job = on_home(ctx, body)
    click.echo(job.run)
    click.echo(f"queued {job.kind} job {job.run} (planned epsilon {job.planned_epsilon})", err=True)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e.strerror}", param_hint="SPEC") from None


@jobs.command("status")
@click.argument("run")
@click.pass_context
def jobs_status(ctx: click.Context, run: str) -> None:
    """Print RUN's job row (JSON)."""
    from . import service

    async def body(home: Opened) -> Any:
        job = await service.get_job(home.db, run)
        return {**job.to_dict(), "checkpoints": await service.checkpoints(home.db, run)}

    _print(on_home(ctx, body))


@jobs.command("list")
@click.option("--status", default=None, help="Only jobs of this status.")
@click.pass_context
def jobs_list(ctx: click.Context, status: str | None) -> None:
    """List jobs, newest first: run, kind, status, steps, epsilon."""
    from . import service

    async def body(home: Opened) -> Any:
        return await service.list_jobs(home.db, status)

    for j in on_home(ctx, body):
        eps = "-" if j.epsilon is None else f"{j.epsilon:.4g}"
        click.echo(f"{j.run}\t{j.kind}\t{j.status}\t{j.steps or 0}\t{eps}")


@jobs.command("wait")
@click.argument("run")
@click.option("--timeout", type=click.FloatRange(min=0), default=3600.0, show_default=True, help="Seconds.")
@click.pass_context
def jobs_wait(ctx: click.Context, run: str, timeout: float) -> None:
    """Wait until RUN completes, fails, halts or is cancelled; exit 1 unless it completed."""
    from . import service

    async def body(home: Opened) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            job = await service.get_job(home.db, run)
            if job.status in (*service.TERMINAL, "halted"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {run} is still {job.status} after {timeout:g} s")
            await asyncio.sleep(0.5)

    job = on_home(ctx, body)
    click.echo(job.status)
    if job.status != "completed":
        sys.exit(1)


@jobs.command("cancel")
@click.argument("run")
@click.option("--as", "as_account", default=None, help="The account cancelling (default: system).")
@click.pass_context
def jobs_cancel(ctx: click.Context, run: str, as_account: str | None) -> None:
    """Cancel RUN (a running job stops at its next step)."""
    from . import service
    from .queue import queue_from_env

    async def body(home: Opened) -> Any:
        queue = queue_from_env(settings_of(ctx))
        try:
            actor = await acting_as(home.db, home.keyring, as_account)
            return await service.cancel(home.db, home.log, queue, run, actor)
        finally:
            await queue.close()

    job = on_home(ctx, body)
    click.echo(f"job {run}: {'cancelling' if job.status == 'running' else job.status}", err=True)
