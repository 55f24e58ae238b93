"""What the product's commands share: the home's log around a command, and ``--as NAME``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:  # it imports the ledger's log (SQLAlchemy): imported where a command runs
    from ..events.recording import Actor

__all__ = ["Opened", "acting_as", "on_home", "on_home_log"]

T = TypeVar("T")


class Opened:
    """What a command body works with: the home's database, its log over it, and its keyring."""

    __slots__ = ("db", "keyring", "log")

    def __init__(self, db: Any, log: Any, keyring: Any) -> None:
        self.db, self.log, self.keyring = db, log, keyring


def on_home(ctx: click.Context, body: Callable[[Opened], Awaitable[T]], *, settle: bool = True) -> T:
    """Open the home's database (migrated), its log and keyring, run ``body(opened)``, then
    integrate and timestamp what it appended (``verify`` expects every checkpoint timestamped)
    and close.

    ``settle``: first finish or undo an interrupted records-key rotation, if one left
    ``records.key.next`` behind (``app.keys.kek_rotation``)."""
    from ledger.cli import TSA_WAIT
    from ledger.home import LogHome

    from ..keys.keyring import Keyring
    from .database import open_home

    async def go() -> T:
        home = LogHome.resolve(ctx.obj.get("home"))
        db, log = await open_home(home, migrate=True)
        try:
            keyring = Keyring.of(home)
            if settle:
                from ..keys.kek_rotation import settle_records_kek

                await settle_records_kek(log, keyring)
            result = await body(Opened(db, log, keyring))
            await log.integrate()  # the new events get a checkpoint before we exit
            await log.timestamp_pending(force=True, within=TSA_WAIT)  # a slow TSA: left to `serve`
            return result
        finally:
            await log.close()
            await db.close()

    return asyncio.run(go())


def on_home_log(ctx: click.Context, body: Callable[[Any, Any], Awaitable[T]], *, settle: bool = True) -> T:
    """:func:`on_home` for a body that needs only ``(log, keyring)``."""
    return on_home(ctx, lambda opened: body(opened.log, opened.keyring), settle=settle)


async def acting_as(log: Any, keyring: Any, name: str | None,
                    roles: tuple[str, ...] | None = None) -> Actor:
    """The account ``name`` (its pseudonym and role), or ``system`` without one.

    A disabled account, or one whose role is not in ``roles`` (when given), is refused with a
    usage error naming what it needs.
    """
    from ..events.recording import SYSTEM, Actor

    if name is None:
        return SYSTEM
    from ..accounts import service as accounts

    info = await accounts.get_account(log, name)
    if info.disabled or (roles is not None and info.role not in roles):
        needs = f"; it needs {' or '.join(roles)}" if roles else ""
        raise click.UsageError(f"--as {name}: a {info.role} account{' (disabled)' if info.disabled else ''} "
                               f"may not do this{needs}")
    return Actor.of_account(keyring.pseudonymizer, name, info.role)
