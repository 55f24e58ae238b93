"""``rlhf-audit releases``: attest a released model, rotate the release-signing key.

Mounted on the ``rlhf-audit`` group by ``app.cli``, imported only when one of them runs.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..core.commands import Opened, acting_as, on_home, settings_of
from ..core.roles import ADMINS

__all__ = ["releases"]


@click.group()
def releases() -> None:
    """Released models: model signature, SLSA provenance and COSE receipt of the release."""


@releases.command("attest")
@click.argument("model")
@click.pass_context
def releases_attest(ctx: click.Context, model: str) -> None:
    """Sign MODEL (released) with model-signing, attest its SLSA provenance, issue the COSE receipt
    of its release; store them under releases/MODEL/ in the object store and print where (JSON)."""
    from ledger.home import LogHome

    from ..objects import object_store

    try:
        from .service import attest_release
    except ImportError as e:  # the optional packages (model-signing, pycose) are not installed
        raise click.ClickException(f"releases attest needs the release-signing extra ({e.name} is missing): "
                                   "pip install 'rlhf-audit-trail[release-signing]'") from None

    async def body(opened: Opened) -> Any:
        objects = object_store(LogHome.resolve(ctx.obj.get("home")), settings_of(ctx))
        return await attest_release(opened.db, opened.log, opened.keyring, objects, model)

    done = on_home(ctx, body)
    click.echo(json.dumps(done.to_dict(), indent=2, sort_keys=True))
    click.echo(f"check the signature: model_signing verify key <model dir> --signature model.sig "
               f"--public_key release-key.pem (key {done.key_id})", err=True)


@releases.command("rotate-key")
@click.option("--as", "as_account", default=None, metavar="ACCOUNT",
              help="The admin account this is done as, on the log (default: system).")
@click.pass_context
def releases_rotate_key(ctx: click.Context, as_account: str | None) -> None:
    """New release-signing key (ECDSA P-256); the old one kept in <keys>/retired/; logs
    keys.release_key naming the key it replaces. Releases attested before keep their key."""
    from ..events.index import EventIndex
    from .keys import rotate_release_key

    async def body(opened: Opened) -> Any:
        actor = await acting_as(opened.db, opened.keyring, as_account, ADMINS)
        return await rotate_release_key(opened.log, EventIndex(opened.db, opened.log), opened.keyring, actor)

    done = on_home(ctx, body)
    click.echo(f"rotated the release key: {done.previous_key_id} -> {done.key_id} (event at index "
               f"{done.leaf_index}); old key kept in {done.retired_file}", err=True)
