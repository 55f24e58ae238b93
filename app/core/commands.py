"""What the product's commands share: the entry point that turns errors into one line, the
settings, the home's log around a command, and ``--as NAME``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ledger.errors import LedgerError, NotFound

from .errors import AppError, Missing

if TYPE_CHECKING:  # it imports the ledger's log (SQLAlchemy): imported where a command runs
    from ..events.recording import Actor
    from .settings import Settings

__all__ = ["Opened", "acting_as", "on_home", "run", "settings_of"]

T = TypeVar("T")


def run(group: click.Group) -> None:  # noqa: C901 (one branch per error kind)
    """Run the console script: every error ends as one line on stderr and an exit status, never a
    traceback (``RLHF_AUDIT_DEBUG=1`` shows one). The one place the CLI maps errors: the ledger's
    and the application's alike (2 usage, 3 not found, 1 any other refusal, 70 a bug of ours)."""
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except (NotFound, Missing) as e:
        if _debugging():
            raise
        click.echo(f"error: {e}", err=True)
        sys.exit(3)
    except (LedgerError, AppError) as e:
        if _debugging():
            raise
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except TimeoutError as e:
        click.echo(f"error: timed out: {e}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a bug of ours: still no traceback for the user
        if _debugging():
            raise
        click.echo(f"internal error: {type(e).__name__}: {e} (set RLHF_AUDIT_DEBUG=1 for details)",
                   err=True)
        sys.exit(70)


def _debugging() -> bool:
    from .settings import debugging  # imported once something failed

    return debugging()


def settings_of(ctx: click.Context, **flags: Any) -> Settings:
    """The process's :class:`Settings`, built once, on first use, from ``flags`` (the command's
    options, ``None`` where not given), the environment and the home's ``config.toml``."""
    from .settings import Settings

    root = ctx.find_root()
    root.ensure_object(dict)
    settings = root.obj.get("settings")
    if settings is None:
        settings = root.obj["settings"] = Settings.load(root.obj.get("home"), flags)
    return settings


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

    from .database import open_home
    from .keyring import Keyring

    async def go() -> T:
        home = LogHome.resolve(ctx.obj.get("home"))
        db, log = await open_home(home, migrate=True)
        try:
            keyring = Keyring.of(home, settings_of(ctx))
            if settle:
                from ..keys.kek_rotation import settle_records_kek

                await settle_records_kek(db, log, keyring)
            result = await body(Opened(db, log, keyring))
            await log.integrate()  # the new events get a checkpoint before we exit
            await log.timestamp_pending(force=True, within=TSA_WAIT)  # a slow TSA: left to `serve`
            return result
        finally:
            await log.close()
            await db.close()

    return asyncio.run(go())


async def acting_as(db: Any, keyring: Any, name: str | None,
                    roles: tuple[str, ...] | None = None) -> Actor:
    """The account ``name`` in ``db`` (its pseudonym and role), or ``system`` without one.

    A disabled account, or one whose role is not in ``roles`` (when given), is refused with a
    usage error naming what it needs.
    """
    from ..events.recording import SYSTEM, Actor

    if name is None:
        return SYSTEM
    from ..accounts import service as accounts

    info = await accounts.get_account(db, name)
    if info.disabled or (roles is not None and info.role not in roles):
        needs = f"; it needs {' or '.join(roles)}" if roles else ""
        raise click.UsageError(f"--as {name}: a {info.role} account{' (disabled)' if info.disabled else ''} "
                               f"may not do this{needs}")
    return Actor.of_account(keyring.pseudonymizer, name, info.role)
