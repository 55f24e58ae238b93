"""CLI commands for training and oversight: ``worker``, ``jobs``, ``oversight``, ``models``.

Registered on the ``rlhf-audit`` group by ``app.cli``. They work on the home's log directly (like
``users``); oversight commands name the acting account with ``--as`` (an overseer or admin), whose
pseudonym the log records, so the four-eyes rule on resume holds from the CLI too.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from ledger.cli import cli

from ..core.commands import acting_as, on_home_log

__all__ = ["jobs", "models", "oversight", "worker"]


def _print(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


@cli.command()
@click.option("--local", "local", is_flag=True,
              help="Drain the jobs table in this process (no Redis), as `serve` does by default.")
@click.option("--burst", is_flag=True, help="Exit once no job is queued.")
@click.pass_context
def worker(ctx: click.Context, local: bool, burst: bool) -> None:
    """Run training jobs: an ARQ worker on RLHF_AUDIT_REDIS_URL, or the local worker."""
    import os

    if ctx.obj.get("home"):
        os.environ["RLHF_AUDIT_HOME"] = str(ctx.obj["home"])
    from .queue import ENV_REDIS

    if not local and not os.environ.get(ENV_REDIS):
        raise click.UsageError(f"set {ENV_REDIS} for an ARQ worker, or pass --local")
    if local:
        from trainers.worker import shutdown, startup

        from .local import run_local_worker

        async def go() -> int:
            state: dict[str, Any] = {}
            await startup(state)
            try:
                return await run_local_worker(state, burst=burst)
            finally:
                await shutdown(state)

        ran = asyncio.run(go())
        click.echo(f"local worker ran {ran} job(s)", err=True)
        return
    from arq.worker import run_worker

    from trainers.worker import WorkerSettings

    run_worker(WorkerSettings, burst=burst)  # type: ignore[arg-type]


@cli.group()
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

    async def body(log: Any, keyring: Any) -> Any:
        from . import service
        from .queue import queue_from_env

        queue = queue_from_env()
        try:
            return await service.submit(log, keyring, queue, doc, await acting_as(log, keyring, as_account),
                                        submitted_by=as_account or "cli")
        finally:
            await queue.close()

    job = on_home_log(ctx, body)
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

    async def body(log: Any, _: Any) -> Any:
        job = await service.get_job(log, run)
        return {**job.to_dict(), "checkpoints": await service.checkpoints(log, run)}

    _print(on_home_log(ctx, body))


@jobs.command("list")
@click.option("--status", default=None, help="Only jobs of this status.")
@click.pass_context
def jobs_list(ctx: click.Context, status: str | None) -> None:
    """List jobs, newest first: run, kind, status, steps, epsilon."""
    from . import service

    async def body(log: Any, _: Any) -> Any:
        return await service.list_jobs(log, status)

    for j in on_home_log(ctx, body):
        eps = "-" if j.epsilon is None else f"{j.epsilon:.4g}"
        click.echo(f"{j.run}\t{j.kind}\t{j.status}\t{j.steps or 0}\t{eps}")


@jobs.command("wait")
@click.argument("run")
@click.option("--timeout", type=click.FloatRange(min=0), default=3600.0, show_default=True, help="Seconds.")
@click.pass_context
def jobs_wait(ctx: click.Context, run: str, timeout: float) -> None:
    """Wait until RUN completes, fails, halts or is cancelled; exit 1 unless it completed."""
    from . import service

    async def body(log: Any, _: Any) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            job = await service.get_job(log, run)
            if job.status in (*service.TERMINAL, "halted"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {run} is still {job.status} after {timeout:g} s")
            await asyncio.sleep(0.5)

    job = on_home_log(ctx, body)
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

    async def body(log: Any, keyring: Any) -> Any:
        queue = queue_from_env()
        try:
            return await service.cancel(log, queue, run, await acting_as(log, keyring, as_account))
        finally:
            await queue.close()

    job = on_home_log(ctx, body)
    click.echo(f"job {run}: {'cancelling' if job.status == 'running' else job.status}", err=True)


_WHY = click.option("--why", "justification", required=True,
                    help="The written justification (at least 10 characters; name no one).")
_AS = click.option("--as", "as_account", required=True, help="The overseer or admin account deciding.")


def _decide(ctx: click.Context, as_account: str,
            act: Callable[[Any, Any, Any], Awaitable[Any]]) -> None:
    async def body(log: Any, keyring: Any) -> Any:
        return await act(log, keyring, await acting_as(log, keyring, as_account))

    decision = on_home_log(ctx, body)
    _print(decision.to_dict() if hasattr(decision, "to_dict") else decision)


@cli.group()
def oversight() -> None:
    """Human oversight (AI Act Article 14): each decision justified and recorded on the log."""


@oversight.command("halt")
@click.argument("run")
@_WHY
@_AS
@click.pass_context
def oversight_halt(ctx: click.Context, run: str, justification: str, as_account: str) -> None:
    """Halt RUN at its next step."""
    from ..oversight import service

    _decide(ctx, as_account, lambda log, _, actor: service.halt(log, run, justification, actor))


@oversight.command("resume")
@click.argument("run")
@_WHY
@_AS
@click.pass_context
def oversight_resume(ctx: click.Context, run: str, justification: str, as_account: str) -> None:
    """Resume halted RUN (needs an overseer other than the one who halted it)."""
    from ..oversight import service
    from .queue import queue_from_env

    async def act(log: Any, _: Any, actor: Any) -> Any:
        queue = queue_from_env()
        try:
            return await service.resume(log, queue, run, justification, actor)
        finally:
            await queue.close()

    _decide(ctx, as_account, act)


@oversight.command("reject-dataset")
@click.argument("dataset")
@click.argument("version", type=click.IntRange(min=1))
@_WHY
@_AS
@click.pass_context
def oversight_reject_dataset(ctx: click.Context, dataset: str, version: int, justification: str,
                             as_account: str) -> None:
    """Keep DATASET VERSION out of every later job."""
    from ..oversight import service

    _decide(ctx, as_account,
            lambda log, _, actor: service.reject_dataset(log, dataset, version, justification, actor))


@oversight.command("reject-annotator")
@click.argument("annotator")
@_WHY
@_AS
@click.pass_context
def oversight_reject_annotator(ctx: click.Context, annotator: str, justification: str,
                               as_account: str) -> None:
    """Keep the records of ANNOTATOR (a pseudonym, pseud:<hex>) out of every later job."""
    from ..oversight import service

    _decide(ctx, as_account,
            lambda log, _, actor: service.reject_annotator(log, annotator, justification, actor))


@oversight.command("rollback")
@click.argument("model")
@click.argument("checkpoint")
@_WHY
@_AS
@click.pass_context
def oversight_rollback(ctx: click.Context, model: str, checkpoint: str, justification: str,
                       as_account: str) -> None:
    """Point MODEL at CHECKPOINT (a step number or root) of its run."""
    from ..oversight import service

    _decide(ctx, as_account,
            lambda log, _, actor: service.rollback(log, model, checkpoint, justification, actor))


@oversight.command("approve")
@click.argument("model")
@_WHY
@_AS
@click.pass_context
def oversight_approve(ctx: click.Context, model: str, justification: str, as_account: str) -> None:
    """Approve MODEL's release."""
    from ..oversight import service

    _decide(ctx, as_account, lambda log, _, actor: service.approve_release(log, model, justification, actor))


@oversight.command("veto")
@click.argument("model")
@_WHY
@_AS
@click.pass_context
def oversight_veto(ctx: click.Context, model: str, justification: str, as_account: str) -> None:
    """Veto MODEL's release."""
    from ..oversight import service

    _decide(ctx, as_account, lambda log, _, actor: service.veto_release(log, model, justification, actor))


@cli.group()
def models() -> None:
    """Trained models."""


@models.command("release")
@click.argument("model")
@_AS
@click.pass_context
def models_release(ctx: click.Context, model: str, as_account: str) -> None:
    """Mark MODEL released (refused without an approval on the log)."""
    from ..oversight import service

    _decide(ctx, as_account, lambda log, _, actor: service.release_model(log, model, actor))
