"""The ``rlhf-audit`` console script: the ledger's commands plus the server's and workers'.

The web stack is imported inside ``serve`` only, so ``rlhf-audit append`` and the other ledger
commands start as fast as before and work where Litestar is not installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click

from ledger.cli import cli, run

ROLE_NAMES = ("admin", "overseer", "operator", "auditor", "service")  # app.accounts.schema.ROLES


def _run_with_log(ctx: click.Context, body: Callable[[Any], Awaitable[None]]) -> None:
    """Open the home's log (migrating it: older homes lack the accounts tables), run, close."""
    import asyncio

    from ledger.home import LogHome

    async def _go() -> None:
        log = await LogHome.resolve(ctx.obj.get("home")).open_log(migrate=True)
        try:
            await body(log)
            await log.integrate()  # the account/token events get a checkpoint before we exit
        finally:
            await log.close()

    asyncio.run(_go())


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port to listen on.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the public read API (tiles, proofs, checkpoints, timestamps) over HTTP.

    Creates the home first if it does not exist, and integrates appends from any process.
    """
    import uvicorn

    from ledger.home import LogHome

    from .main import create_app
    from .observability import configure_logging

    configure_logging()  # JSON lines on stderr (uvicorn's too); the app's middleware logs each request
    uvicorn.run(create_app(LogHome.resolve(ctx.obj.get("home"))), host=host, port=port,
                log_level="info", lifespan="on", access_log=False, log_config=None)


@cli.group()
def users() -> None:
    """Accounts of the authenticated API (each change is an event on the log)."""


@users.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLE_NAMES),
              help="admin, overseer, operator, auditor or service (no password).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin instead of prompting.")
@click.pass_context
def users_create(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Create account NAME with ROLE; asks for a password unless it is a service account."""
    import sys

    password: str | None = None
    if role == "service":
        if password_stdin:
            raise click.UsageError("service accounts have no password; create a token for them")
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on stdin")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def body(log: Any) -> None:
        from .accounts import create_account

        await create_account(log, name, role, password, by="cli")

    _run_with_log(ctx, body)
    click.echo(f"created {role} account {name}", err=True)


@cli.group()
def tokens() -> None:
    """API tokens (shown once, stored hashed, each change an event on the log)."""


@tokens.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True,
              help="A scope to grant (repeatable); default: all of the role's scopes.")
@click.option("--expires-in", type=click.FloatRange(min=0), default=None, metavar="DAYS",
              help="Days until the token expires (default: never).")
@click.pass_context
def tokens_create(ctx: click.Context, name: str, scopes: tuple[str, ...], expires_in: float | None) -> None:
    """Create a token for account NAME and print it once on stdout."""
    from datetime import timedelta

    async def body(log: Any) -> None:
        from .accounts import create_token

        created = await create_token(log, name, scopes or None,
                                     None if expires_in is None else timedelta(days=expires_in), by="cli")
        click.echo(created.token)
        until = created.expires_at.isoformat() if created.expires_at else "never"
        click.echo(f"token {created.prefix} for {name}: scopes {' '.join(created.scopes)}; "
                   f"expires {until}. It is shown only once.", err=True)

    _run_with_log(ctx, body)


@tokens.command("revoke")
@click.argument("prefix")
@click.pass_context
def tokens_revoke(ctx: click.Context, prefix: str) -> None:
    """Revoke the token whose prefix (as shown at creation, `rat_` optional) is PREFIX."""

    async def body(log: Any) -> None:
        from .accounts import revoke_token

        await revoke_token(log, prefix, by="cli")

    _run_with_log(ctx, body)
    click.echo(f"revoked token {prefix}", err=True)


def main() -> None:
    run(cli)


if __name__ == "__main__":
    main()
