"""``rlhf-audit verify`` for the product: the ledger's self-audit, then the artefact audit.

The ledger cannot know about the object store (it imports nothing of ``app``), so its
``verify`` command is wrapped here: it runs as before and then every artefact the log names is
re-hashed in the configured object store (:mod:`app.artefact_audit`). Any failure of either
exits 1.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from ledger.cli import cli

__all__ = ["verify"]

_ledger_verify = cli.commands["verify"]


def _audit_artefacts(ctx: click.Context) -> bool:
    from ledger.home import LogHome

    from .artefact_audit import audit_artefacts
    from .objects import object_store

    home = LogHome.resolve(ctx.obj.get("home"))
    objects = object_store(home)

    async def main() -> bool:
        log = await home.open_log()
        try:
            report = await audit_artefacts(log, objects, progress=lambda m: click.echo(f"… {m}", err=True))
        finally:
            await log.close()
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


def _verify(ctx: click.Context, no_artefacts: bool, **given: Any) -> None:
    try:
        ctx.invoke(_ledger_verify, **given)
        log_ok = True
    except SystemExit as e:
        if e.code not in (0, None, 1):
            raise
        log_ok = e.code in (0, None)
    artefacts_ok = True if no_artefacts else _audit_artefacts(ctx)
    if not (log_ok and artefacts_ok):
        sys.exit(1)


# The ledger's options (whatever they are) plus ours; the same name replaces the ledger's command.
verify = click.Command(
    "verify", callback=click.pass_context(_verify),
    params=[*_ledger_verify.params,
            click.Option(["--no-artefacts"], is_flag=True,
                         help="Skip re-hashing the object store's artefacts.")],
    help=(_ledger_verify.help or "").rstrip() + "\n\nThen re-hash every artefact the log names (checkpoints, "
         "models, bundles, reports, dataset archives) in the object store; a missing or changed one fails.",
    short_help="Self-audit of the log and of the stored artefacts.")
cli.add_command(verify)
