"""``rlhf-audit datasets ...`` and ``rlhf-audit privacy erase``: mounted on the CLI by ``app.cli``.

The CLI acts with the home's own database and keys. Events it records name ``--as ACCOUNT``
(its pseudonym and role; budgets and erasures need an admin) or, without it, ``system``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from ..core.commands import Opened, acting_as, on_home, settings_of
from ..core.roles import DATASET_IMPORTERS, PRIVACY_ADMINS

__all__ = ["datasets", "privacy"]


def _print(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


_AS = click.option("--as", "as_account", default=None, metavar="ACCOUNT",
                   help="The account this is done as, on the log (default: system).")


@click.group()
def datasets() -> None:
    """Human-feedback datasets: import, list, show, privacy budgets."""


@datasets.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dataset", "name", required=True, help="Dataset name (ds_ prefix optional).")
@click.option("--datasheet", type=click.File("rb"), default=None,
              help="JSON datasheet: origin, collection_process, purpose (required), and more.")
@_AS
@click.pass_context
def datasets_import(ctx: click.Context, file: Any, name: str, datasheet: Any, as_account: str | None) -> None:
    """Import JSON Lines FILE as the next version of a dataset (a known file: its version)."""
    data = file.read()
    sheet = None
    if datasheet is not None:
        try:
            sheet = json.loads(datasheet.read())
        except ValueError as e:
            raise click.BadParameter(f"not JSON: {e}", param_hint="--datasheet") from None

    async def body(opened: Opened) -> Any:
        from ledger.home import LogHome

        from ..objects import object_store
        from .importer import import_dataset

        actor = await acting_as(opened.db, opened.keyring, as_account, DATASET_IMPORTERS)
        return await import_dataset(opened.db, opened.log, opened.keyring, name, data, datasheet=sheet,
                                    actor=actor, objects=object_store(LogHome.resolve(ctx.obj.get("home")),
                                                                      settings_of(ctx)))

    r = on_home(ctx, body)
    _print(dataclasses.asdict(r))
    click.echo(f"{'imported' if r.created else 'already imported:'} {r.dataset} version {r.version} "
               f"({r.records} records, {r.annotators} annotators)", err=True)


@datasets.command("list")
@click.pass_context
def datasets_list(ctx: click.Context) -> None:
    """Every dataset with its latest version and budget (JSON)."""
    from .versions import list_datasets

    _print(on_home(ctx, lambda opened: list_datasets(opened.db)))


@datasets.command("show")
@click.argument("name")
@click.pass_context
def datasets_show(ctx: click.Context, name: str) -> None:
    """A dataset's versions, datasheets, annotator pseudonyms and budget (JSON)."""
    from .versions import describe_dataset

    _print(on_home(ctx, lambda opened: describe_dataset(opened.db, name)))


@datasets.group("budget")
def budget_group() -> None:
    """A dataset's differential-privacy budget."""


@budget_group.command("set")
@click.argument("name")
@click.option("--epsilon", "epsilon_total", type=float, required=True, help="Total epsilon for the dataset.")
@click.option("--delta", type=float, required=True, help="Delta, in [0, 1).")
@_AS
@click.pass_context
def budget_set(ctx: click.Context, name: str, epsilon_total: float, delta: float,
               as_account: str | None) -> None:
    """Set (or change) the total privacy budget of dataset NAME (admin)."""

    async def body(opened: Opened) -> Any:
        from .budget import set_budget

        actor = await acting_as(opened.db, opened.keyring, as_account, PRIVACY_ADMINS)
        return await set_budget(opened.db, opened.log, name, epsilon_total, delta, actor)

    b = on_home(ctx, body)
    _print({"dataset": b.dataset, "epsilon_total": b.epsilon_total, "delta": b.delta, "spent": b.spent,
            "reserved": b.reserved, "remaining": b.remaining})


@click.group()
def privacy() -> None:
    """Data subjects' rights (GDPR)."""


@privacy.command("erase")
@click.option("--annotator", required=True, metavar="PSEUDONYM",
              help="The annotator's pseudonym (pseud:...).")
@click.option("--legal-basis", required=True, help="Why, e.g. 'GDPR Art. 17(1)(b): consent withdrawn'.")
@click.option("--request-ref", default=None, help="Your reference of the data subject's request.")
@_AS
@click.pass_context
def privacy_erase(ctx: click.Context, annotator: str, legal_basis: str, request_ref: str | None,
                  as_account: str | None) -> None:
    """Erase an annotator's records, salt and key; the erasure is recorded on the log (admin)."""

    async def body(opened: Opened) -> Any:
        from .erasure import erase_subject

        actor = await acting_as(opened.db, opened.keyring, as_account, PRIVACY_ADMINS)
        return await erase_subject(opened.db, opened.log, annotator, legal_basis=legal_basis,
                                   request_ref=request_ref, actor=actor)

    done = on_home(ctx, body)
    _print({"annotator": done.annotator, "records": done.records, "leaf_index": done.leaf_index})
    click.echo(f"erased {done.annotator}: {done.records} records destroyed; privacy.erased is entry "
               f"{done.leaf_index}", err=True)
