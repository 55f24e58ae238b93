"""CLI commands for human oversight: ``oversight`` (decisions) and ``models`` (release).

Mounted on the ``rlhf-audit`` group by ``app.cli``, imported only when one of them runs. Each
names the acting account with ``--as`` (an overseer or admin), whose pseudonym the log records,
so the four-eyes rule on resume holds from the CLI too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import click

from ..core.commands import Opened, acting_as, on_home, settings_of
from ..events.recording import Actor
from ..jobs.queue import queue_from_env
from . import service

__all__ = ["models", "oversight"]

_WHY = click.option("--why", "justification", required=True,
                    help="The written justification (at least 10 characters; name no one).")
_AS = click.option("--as", "as_account", required=True, help="The overseer or admin account deciding.")


def _decide(ctx: click.Context, as_account: str, act: Callable[[Opened, Actor], Awaitable[Any]]) -> None:
    """Run ``act`` as the account ``--as`` names; print what it decided (JSON)."""
    async def body(home: Opened) -> Any:
        return await act(home, await acting_as(home.db, home.keyring, as_account))

    decision = on_home(ctx, body)
    doc = decision.to_dict() if hasattr(decision, "to_dict") else decision
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


@click.group()
def oversight() -> None:
    """Human oversight (AI Act Article 14): each decision justified and recorded on the log."""


@oversight.command("halt")
@click.argument("run")
@_WHY
@_AS
@click.pass_context
def oversight_halt(ctx: click.Context, run: str, justification: str, as_account: str) -> None:
    """Halt RUN at its next step."""
    _decide(ctx, as_account, lambda home, actor: service.halt(home.db, home.log, run, justification, actor))


@oversight.command("resume")
@click.argument("run")
@_WHY
@_AS
@click.pass_context
def oversight_resume(ctx: click.Context, run: str, justification: str, as_account: str) -> None:
    """Resume halted RUN (needs an overseer other than the one who halted it)."""

    async def act(home: Opened, actor: Actor) -> Any:
        queue = queue_from_env(settings_of(ctx))
        try:
            return await service.resume(home.db, home.log, queue, run, justification, actor)
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
    _decide(ctx, as_account, lambda home, actor: service.reject_dataset(home.db, home.log, dataset, version,
                                                                        justification, actor))


@oversight.command("reject-annotator")
@click.argument("annotator")
@_WHY
@_AS
@click.pass_context
def oversight_reject_annotator(ctx: click.Context, annotator: str, justification: str,
                               as_account: str) -> None:
    """Keep the records of ANNOTATOR (a pseudonym, pseud:<hex>) out of every later job."""
    _decide(ctx, as_account, lambda home, actor: service.reject_annotator(home.db, home.log, annotator,
                                                                          justification, actor))


@oversight.command("rollback")
@click.argument("model")
@click.argument("checkpoint")
@_WHY
@_AS
@click.pass_context
def oversight_rollback(ctx: click.Context, model: str, checkpoint: str, justification: str,
                       as_account: str) -> None:
    """Point MODEL at CHECKPOINT (a step number or root) of its run."""
    _decide(ctx, as_account, lambda home, actor: service.rollback(home.db, home.log, model, checkpoint,
                                                                  justification, actor))


@oversight.command("approve")
@click.argument("model")
@_WHY
@_AS
@click.pass_context
def oversight_approve(ctx: click.Context, model: str, justification: str, as_account: str) -> None:
    """Approve MODEL's release."""
    _decide(ctx, as_account, lambda home, actor: service.approve_release(home.db, home.log, model,
                                                                         justification, actor))


@oversight.command("veto")
@click.argument("model")
@_WHY
@_AS
@click.pass_context
def oversight_veto(ctx: click.Context, model: str, justification: str, as_account: str) -> None:
    """Veto MODEL's release."""
    _decide(ctx, as_account, lambda home, actor: service.veto_release(home.db, home.log, model,
                                                                      justification, actor))


@click.group()
def models() -> None:
    """Trained models."""


@models.command("release")
@click.argument("model")
@_AS
@click.pass_context
def models_release(ctx: click.Context, model: str, as_account: str) -> None:
    """Mark MODEL released (refused without an approval on the log)."""
    _decide(ctx, as_account, lambda home, actor: service.release_model(home.db, home.log, model, actor))
