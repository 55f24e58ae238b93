"""``rlhf-audit append``: events from outside the product, appended in its envelope.

The ledger's ``append`` (``ledger.cli``) stores each line as it is: a library knows no accounts.
The product's CLI mounts this one in its place, so that an event appended from the command line
says when it was recorded and by whom (``at``, ``actor``, ``role``), as the HTTP API stamps its
caller. The actor is ``--as ACCOUNT``, else ``system``: the default of every command that acts
for someone (``jobs submit``, ``datasets import``, ``incident freeze``), and what an operator
with the home's files is; the OS user name would put a person's name on the log.

Imported by ``app.cli`` at start: nothing heavy at module level.
"""

from __future__ import annotations

from typing import Any

import click

from ..core.roles import ROLE_SCOPES

__all__ = ["append"]

WRITERS = tuple(role for role, scopes in sorted(ROLE_SCOPES.items()) if "events:write" in scopes)


def _read(stream: Any) -> list[tuple[int, dict[str, Any]]]:
    """(line number, event) for each non-blank line, parsed by the ledger's one rule for input."""
    from ledger.canonical import decode_event
    from ledger.errors import EntryError

    events = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            events.append((number, decode_event(line)))
        except EntryError as e:
            raise EntryError(f"line {number}: {e} (nothing was appended)") from e
    return events


def _entries(events: list[tuple[int, dict[str, Any]]], actor: Any) -> list[bytes]:
    """The lines' entries in the envelope, checked as any submitted event (no reserved kinds)."""
    from ledger.canonical import encode_event
    from ledger.errors import EntryError

    from .recording import stamped

    entries = []
    for number, event in events:
        try:
            entries.append(encode_event(stamped(event, actor), submitted=True))
        except EntryError as e:
            raise EntryError(f"line {number}: {e} (nothing was appended)") from e
    return entries


async def _append(log: Any, entries: list[bytes]) -> None:
    import base64

    import orjson

    sequenced = await log.append_entries(entries)
    click.echo(b"".join(
        orjson.dumps({"leaf_index": s.leaf_index, "leaf_hash": base64.b64encode(s.leaf_hash).decode()})
        + b"\n" for s in sequenced), nl=False)


@click.command()
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--as", "as_account", default=None, metavar="ACCOUNT",
              help=f"The account appending ({' or '.join(WRITERS)}; default: system).")
@click.pass_context
def append(ctx: click.Context, file: Any, as_account: str | None) -> None:
    """Append JSON Lines events from FILE (or stdin); print each entry's index and leaf hash.

    Each event goes on the log in the product's envelope: `at` (now), `actor` and `role` (the
    account given with --as, else system) and `v` (1 unless the line gives one), replacing what
    the line says for them. The entries are integrated into a checkpoint before the command
    exits, and timestamped by TSAs that answer within a couple of seconds; a slower TSA's stamp
    is left, with a warning, to the background timestamper of `serve` or `integrate`.
    """
    import asyncio

    events = _read(file)
    if as_account is not None:
        from ..core.commands import Opened, acting_as, on_home

        async def body(opened: Opened) -> None:
            actor = await acting_as(opened.db, opened.keyring, as_account, WRITERS)
            await _append(opened.log, _entries(events, actor))

        on_home(ctx, body, settle=False)  # it integrates and timestamps
        return

    from ledger.cli import timestamp_briefly
    from ledger.home import LogHome

    from .recording import SYSTEM

    entries = _entries(events, SYSTEM)

    async def main() -> None:  # no account to look up: the ledger's light path, no migrations
        log = await LogHome.resolve(ctx.obj.get("home")).open_log()
        try:
            await _append(log, entries)
            await log.integrate()
            await timestamp_briefly(log)
        finally:
            await log.close()

    asyncio.run(main())
