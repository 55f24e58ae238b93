"""``rlhf-audit keys``: the ledger's key rotation, a group the product mounts (``app.cli``) beside its
own keys' commands."""

from __future__ import annotations

import asyncio

import click

from .cli import _home

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """Rotate keys without breaking old checkpoints, proofs or records."""


@keys.command("rotate-log-key")
@click.option("--discard-old-key", is_flag=True,
              help="Delete the old private key instead of keeping it in <home>/retired/.")
@click.pass_context
def rotate_log_key_command(ctx: click.Context, discard_old_key: bool) -> None:
    """New Ed25519 log key under the same name (the origin); the old one co-signs the transition.

    Stop the other integrators first (server, workers, `integrate`), or restart them after.
    Prints the new verifier key on stdout: publish it where auditors pinned the old one.
    """
    from .key_rotation import rotate_log_key

    home = _home(ctx)
    done = asyncio.run(rotate_log_key(home, keep_retired=not discard_old_key))
    click.echo(done.vkey)
    click.echo(f"rotated the log key: checkpoint {done.transition.size} is signed by the old and the "
               f"new key; later ones by the new key only. History: {home.history_file}", err=True)
    click.echo(f"old key: kept in {done.retired_file}" if done.retired_file else "old key: discarded",
               err=True)
