"""``rlhf-audit verify-bundle``: check an evidence bundle offline, as an auditor would.

It needs nothing but the zip and the keys given: no home, no database, no server. The verifier
(:mod:`.verify`) is imported when the command runs, so mounting it costs the CLI nothing.

A pin is a pin: a ``--log-key`` or ``--evidence-key`` that is empty, unreadable or not a key is a
usage error (exit 2), never a reason to fall back to the copy inside the bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["verify_bundle"]


@click.command("verify-bundle")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--log-key", default=None, metavar="VKEY",
              help="The log's verifier key (or a file holding it), obtained out of band.")
@click.option("--tsa-root", "tsa_roots", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="PEM", help="A trusted TSA root certificate (PEM file; repeatable).")
@click.option("--evidence-key", default=None, type=click.Path(exists=True, dir_okay=False),
              metavar="PEM", help="The operator's evidence-signing public key (PEM file).")
@click.option("--allow-untimestamped", is_flag=True,
              help="Accept checkpoints without an RFC 3161 timestamp (a warning, not a failure).")
def verify_bundle(file: str, log_key: str | None, tsa_roots: tuple[str, ...],
                  evidence_key: str | None, allow_untimestamped: bool) -> None:
    """Check an evidence bundle offline (no database, no server) and print every check.

    Without --log-key/--tsa-root/--evidence-key it trusts the copies inside the bundle, and says
    so. A checkpoint without an RFC 3161 timestamp fails unless --allow-untimestamped. Exits 1
    when any check fails, naming it.
    """
    from .verify import verify_bundle as verify

    data = Path(file).read_bytes()
    report = verify(data, log_key=None if log_key is None else _log_key_pin(log_key),
                    tsa_roots=[Path(p).read_bytes() for p in tsa_roots],
                    evidence_key=None if evidence_key is None else _evidence_key_pin(evidence_key),
                    allow_untimestamped=allow_untimestamped)
    click.echo(f"bundle: {file}")
    click.echo(report.text(), nl=False)
    if not report.ok:
        sys.exit(1)


def _log_key_pin(value: str) -> str:
    """The pinned verifier key: the file's text when ``value`` names a file, else ``value``."""
    from ledger.errors import VerificationError
    from ledger.note import Verifier

    text, what = value, "the value"
    if Path(value).is_file():
        try:
            text, what = Path(value).read_text(), f"the file {value}"
        except (OSError, UnicodeDecodeError) as e:
            raise click.BadParameter(f"cannot read {value}: {e}", param_hint="--log-key") from None
    if not text.strip():
        raise click.BadParameter(f"{what} is empty: a pinned key must be the key", param_hint="--log-key")
    try:
        Verifier.from_vkey(text.strip())
    except VerificationError as e:
        raise click.BadParameter(f"{what} is not a C2SP verifier key: {e}", param_hint="--log-key") from None
    return text.strip()


def _evidence_key_pin(path: str) -> bytes:
    """The pinned evidence key's PEM, once it reads as an Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        pem = Path(path).read_bytes()
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e}", param_hint="--evidence-key") from None
    if not pem.strip():
        raise click.BadParameter(f"the file {path} is empty: a pinned key must be the key",
                                 param_hint="--evidence-key")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise click.BadParameter(f"{path} is not a PEM public key: {e}",
                                 param_hint="--evidence-key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise click.BadParameter(f"{path} is not an Ed25519 key", param_hint="--evidence-key")
    return pem
