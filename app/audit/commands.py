"""``rlhf-audit verify`` for the product: the ledger's self-audit, then the event index, then
the artefact audit; and ``rlhf-audit reindex``, which also repairs the event index.

The ledger cannot know about the object store or the event index (it imports nothing of
``app``), so its ``verify`` and ``reindex`` commands are wrapped here (``app.cli`` mounts these
under the same names, in place of the ledger's): they run as before and
then the app's derived table is checked against the entries (:meth:`EventIndex.check`) and every
artefact the log names is re-hashed in the configured object store (:mod:`app.audit.artefacts`).
Any failure exits 1.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from ledger import cli as ledger_cli

__all__ = ["reindex", "verify"]

_ledger_verify = ledger_cli.verify
_ledger_reindex = ledger_cli.reindex


def _audit_event_index(ctx: click.Context, full: bool) -> bool:
    from ledger.home import LogHome

    from ..core.database import open_home
    from ..events.index import EventIndex

    async def main() -> bool:
        db, log = await open_home(LogHome.resolve(ctx.obj.get("home")))
        try:
            problems = await EventIndex(db, log).check(full=full)
        finally:
            await log.close()
            await db.close()
        click.echo("event index checked: " + ("every row re-derived from the entries" if full else
                                              "rows counted (--derived re-derives every row)"))
        for p in problems:
            click.echo(f"FAIL: {p}")
        click.echo("OK: the event index matches the entries" if not problems else
                   f"FAILED: {len(problems)} event index problem(s)")
        return not problems

    return asyncio.run(main())


def _audit_artefacts(ctx: click.Context) -> bool:
    from ledger.home import LogHome

    from ..core.commands import settings_of
    from ..core.database import open_home
    from ..objects import object_store
    from .artefacts import audit_artefacts

    home = LogHome.resolve(ctx.obj.get("home"))
    objects = object_store(home, settings_of(ctx))

    async def main() -> bool:
        db, log = await open_home(home)
        try:
            report = await audit_artefacts(db, log, objects,
                                           progress=lambda m: click.echo(f"… {m}", err=True))
        finally:
            await log.close()
            await db.close()
        click.echo(f"artefacts checked:   {report.objects_checked} object(s) in {describe(objects)}"
                   + (f" (entries naming artefacts stored elsewhere, not checked: {report.not_stored})"
                      if report.not_stored else ""))
        for p in report.problems:
            click.echo(f"FAIL: {p}")
        click.echo("OK: every stored artefact matches the log" if report.ok else
                   f"FAILED: {len(report.problems)} artefact problem(s)")
        return report.ok

    return asyncio.run(main())


def describe(objects: object) -> str:
    bucket = getattr(objects, "bucket", None)
    return f"bucket {bucket}" if bucket else str(getattr(objects, "root", objects))


def _verify(ctx: click.Context, no_artefacts: bool, derived: bool, **given: Any) -> None:
    try:
        ctx.invoke(_ledger_verify, **given)
        log_ok = True
    except SystemExit as e:
        if e.code not in (0, None, 1):
            raise
        log_ok = e.code in (0, None)
    index_ok = _audit_event_index(ctx, derived)
    artefacts_ok = True if no_artefacts else _audit_artefacts(ctx)
    if not (log_ok and index_ok and artefacts_ok):
        sys.exit(1)


def _reindex(ctx: click.Context, **given: Any) -> None:
    from ledger.home import LogHome

    from ..core.database import open_home
    from ..events.index import EventIndex

    ctx.invoke(_ledger_reindex, **given)

    async def main() -> int:
        db, log = await open_home(LogHome.resolve(ctx.obj.get("home")))
        try:
            return await EventIndex(db, log).repair()
        finally:
            await log.close()
            await db.close()

    click.echo(f"event index repaired: {asyncio.run(main())} row(s) rewritten", err=True)


# The ledger's options (whatever they are) plus ours, under the ledger's command's name.
verify = click.Command(
    "verify", callback=click.pass_context(_verify),
    params=[*_ledger_verify.params,
            click.Option(["--no-artefacts"], is_flag=True,
                         help="Skip re-hashing the object store's artefacts."),
            click.Option(["--derived"], is_flag=True,
                         help="Re-derive every event index row and commitment from the entries and "
                              "compare (without it, the event index's rows are only counted).")],
    help=(_ledger_verify.help or "").rstrip() + "\n\nThen check the event index (row counts; every row "
         "with --derived), and re-hash every artefact the log names (checkpoints, models, bundles, "
         "reports, dataset archives) in the object store; a missing or changed one fails.",
    short_help="Self-audit of the log, its indexes and the stored artefacts.")

reindex = click.Command(
    "reindex", callback=click.pass_context(_reindex), params=[*_ledger_reindex.params],
    help=(_ledger_reindex.help or "").rstrip() + "\n\nThen the event index (/api/v1/events, lookups by "
         "commitment): the rows and commitments that differ from what the entries give are rewritten "
         "in one transaction.",
    short_help="Rebuild the leaf-hash index and repair the event index.")
