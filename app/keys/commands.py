"""``rlhf-audit keys rotate-records-kek`` and ``rotate-evidence-key``: mounted by ``app.cli`` in the
``keys`` group, beside the ledger's ``rotate-log-key``; and the product's ``rlhf-audit public-keys``,
mounted where the ledger's would be: the ledger's keys plus the evidence- and release-signing keys."""

from __future__ import annotations

from typing import Any

import click

from ..core.commands import Opened, acting_as, on_home, settings_of
from ..core.roles import ADMINS

__all__ = ["public_keys", "rotate_evidence_key_command", "rotate_records_kek_command"]


@click.command("public-keys")
@click.pass_context
def public_keys(ctx: click.Context) -> None:
    """Print the log's verifier key, the TSA certificate chain, the evidence- and release-signing keys (JSON).

    ``evidence_key`` is the key that signs evidence bundles (SubjectPublicKeyInfo PEM) and
    ``evidence_key_id`` the hex SHA-256 of its raw bytes (the DSSE keyid); the log records it as
    ``keys.evidence_key`` the first time it signs a bundle. ``release_key`` (ECDSA P-256, SPKI PEM) signs
    released models' model-signing signatures and provenance, ``release_key_id`` the hex SHA-256 of that
    PEM (model-signing's key hint); the log records it as ``keys.release_key``."""
    import orjson

    from ledger.home import LogHome

    from ..core.keyring import Keyring
    from .public import signing_keys

    home = LogHome.resolve(ctx.obj.get("home"))
    keys = home.public_keys() | signing_keys(Keyring.of(home, settings_of(ctx)), create=True)
    click.echo(orjson.dumps(keys).decode())


@click.command("rotate-evidence-key")
@click.option("--as", "as_account", default=None, metavar="ACCOUNT",
              help="The admin account this is done as, on the log (default: system).")
@click.pass_context
def rotate_evidence_key_command(ctx: click.Context, as_account: str | None) -> None:
    """New evidence-signing key (Ed25519); the old one kept in <keys>/retired/; logs keys.evidence_key
    naming the key it replaces. Bundles built before keep verifying with the key they carry."""
    from ..events.index import EventIndex
    from .evidence_rotation import rotate_evidence_key

    async def body(opened: Opened) -> Any:
        actor = await acting_as(opened.db, opened.keyring, as_account, ADMINS)
        return await rotate_evidence_key(opened.log, EventIndex(opened.db, opened.log), opened.keyring, actor)

    done = on_home(ctx, body)
    click.echo(f"rotated the evidence key: {done.previous_key_id} -> {done.key_id} (event at index "
               f"{done.leaf_index}); old key retired in {done.retired_file}", err=True)
    click.echo("give auditors the new key for --evidence-key (`rlhf-audit public-keys`); keep the old "
               "public key for bundles built before", err=True)


@click.command("rotate-records-kek")
@click.option("--discard-old-key", is_flag=True,
              help="Delete the old records key instead of keeping it in <keys>/retired/.")
@click.option("--recover", is_flag=True,
              help="Only finish (or undo) an interrupted rotation; make no new key.")
@click.option("--as", "as_account", default=None, metavar="ACCOUNT",
              help="The admin account this is done as, on the log (default: system).")
@click.pass_context
def rotate_records_kek_command(ctx: click.Context, discard_old_key: bool, recover: bool,
                               as_account: str | None) -> None:
    """New records key-encryption key: every data subject's record key is re-wrapped and every
    TOTP secret re-encrypted in one transaction, then the new key file replaces the old.

    Stop the server and workers first, or restart them right after: CSRF tokens made with the old
    key stop working (reload forms, sign in again). Logs keys.records_kek_rotated.
    """
    from .kek_rotation import rotate_records_kek, settle_records_kek

    async def body(opened: Opened) -> Any:
        actor = await acting_as(opened.db, opened.keyring, as_account, ADMINS)
        if recover:
            return await settle_records_kek(opened.db, opened.log, opened.keyring,
                                            keep_old=not discard_old_key, actor=actor, strict=True)
        return await rotate_records_kek(opened.db, opened.log, opened.keyring, actor=actor,
                                        keep_old=not discard_old_key)

    done = on_home(ctx, body, settle=False)
    if recover:
        if done is None:
            click.echo("no interrupted rotation of the records key: nothing to do", err=True)
        elif done.outcome == "installed":
            click.echo(f"finished an interrupted rotation: records key {done.kek_id} installed; old key: "
                       f"{'kept in ' + done.retired_file if done.retired_file else 'discarded'}", err=True)
        else:
            click.echo(f"undid an interrupted rotation: the database was never re-wrapped under "
                       f"{done.kek_id}; the installed records key stays", err=True)
        return
    click.echo(f"rotated the records key: {done.previous_kek_id} -> {done.kek_id}; re-wrapped "
               f"{done.subjects} data subjects' record keys and {done.totp_secrets} TOTP secrets "
               f"(event at index {done.leaf_index})", err=True)
    click.echo(f"old key: kept in {done.retired_file}" if done.retired_file else "old key: discarded",
               err=True)
    click.echo("restart the server and workers: CSRF tokens made with the old key are invalid now "
               "(reload forms, sign in again)", err=True)
