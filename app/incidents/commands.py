"""``rlhf-audit incident freeze`` and ``incident list``, on the home's log and object store.

Without ``--as`` the freeze is recorded as ``system`` (whoever holds the home's shell holds its
keys anyway); halting runs (``--halt``) is an oversight decision and needs ``--as`` an overseer
or admin account, whose pseudonym the log records.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..core.commands import Opened, acting_as, on_home, settings_of

__all__ = ["incident"]


@click.group()
def incident() -> None:
    """Incident response (EU AI Act Art. 73): freeze the evidence of a serious incident."""


@incident.command("freeze")
@click.option("--reason", default=None, help="Written justification: what happened, why this scope.")
@click.option("--run", default=None, help="A training run's id.")
@click.option("--release", "model", default=None, metavar="MODEL", help="A model (release) id.")
@click.option("--since", default=None, help="Start of a time range (RFC 3339, inclusive).")
@click.option("--until", default=None, help="End of a time range (RFC 3339, exclusive).")
@click.option("--halt", is_flag=True, help="Also halt the queued or running jobs in scope (needs --as).")
@click.option("--as", "as_account", default=None, help="The overseer or admin freezing (default: system).")
@click.pass_context
def freeze(ctx: click.Context, reason: str | None, halt: bool, as_account: str | None,
           **given: str | None) -> None:
    """Bundle the scope's evidence into incidents/<id>/bundle.zip, put a legal hold on it and on
    every artefact the scope names, record incident.frozen; prints JSON. Scope: --run R |
    --release M | --since T --until T."""
    from ledger.home import LogHome

    from ..evidence.scope import Scope
    from ..objects import object_store
    from .freeze import freeze_evidence

    if reason is None or not reason.strip():
        raise click.UsageError("--reason is required: the written justification of the freeze (Art. 73)")
    chosen = [k for k in ("run", "model") if given[k]]
    timed = given["since"] is not None or given["until"] is not None
    if len(chosen) + timed != 1:
        raise click.UsageError("give exactly one scope: --run, --release or --since/--until")
    if halt and as_account is None:
        raise click.UsageError("--halt is an oversight decision: name the overseer or admin with --as")
    scope = Scope.from_json({"kind": chosen[0] if chosen else "time",
                             **{k: v for k, v in given.items() if v is not None}})  # ScopeError: readable

    home = LogHome.resolve(ctx.obj.get("home"))

    async def body(opened: Opened) -> Any:
        actor = await acting_as(opened.db, opened.keyring, as_account)
        return await freeze_evidence(opened.db, opened.log, scope, reason, actor,
                                     objects=object_store(home, settings_of(ctx)),
                                     evidence_key=opened.keyring.evidence_signer, halt=halt,
                                     settings=settings_of(ctx))

    frozen = on_home(ctx, body)
    click.echo(json.dumps({"incident": frozen.incident, "object_key": frozen.object_key,
                           "sha256": frozen.sha256, "tree_size": frozen.tree_size, "entries": frozen.entries,
                           "held": len(frozen.held), "held_root": frozen.held_root,
                           "missing": frozen.missing, "changed": frozen.changed, "halted": frozen.halted,
                           "leaf_index": frozen.leaf_index}, indent=2, sort_keys=True))
    if frozen.missing or frozen.changed:
        click.echo(f"warning: {len(frozen.missing)} artefact(s) the log names are missing and "
                   f"{len(frozen.changed)} differ from the log; `rlhf-audit verify` names them", err=True)


@incident.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.pass_context
def list_frozen(ctx: click.Context, limit: int) -> None:
    """The incident freezes on the log, newest first (JSON lines)."""
    from ..events.index import EventIndex
    from .freeze import list_incidents

    async def body(opened: Opened) -> Any:
        return await list_incidents(EventIndex(opened.db, opened.log), limit=limit)

    for found in on_home(ctx, body):
        click.echo(json.dumps(found, sort_keys=True))
