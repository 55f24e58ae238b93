"""``rlhf-audit verify-bundle``: check an evidence bundle offline, as an auditor would.

It needs nothing but the zip and the keys given: no home, no database, no server. The verifier
(:mod:`.verify`) is imported when the command runs, so mounting it costs the CLI nothing.
"""

from __future__ import annotations

import sys

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
def verify_bundle(file: str, log_key: str | None, tsa_roots: tuple[str, ...],
                  evidence_key: str | None) -> None:
    """Check an evidence bundle offline (no database, no server) and print every check.

    Without --log-key/--tsa-root/--evidence-key it trusts the copies inside the bundle, and says
    so. Exits 1 when any check fails, naming it.
    """
    from pathlib import Path

    from .verify import verify_bundle as verify

    if log_key is not None and Path(log_key).is_file():
        log_key = Path(log_key).read_text()
    data = Path(file).read_bytes()
    report = verify(data, log_key=log_key, tsa_roots=[Path(p).read_bytes() for p in tsa_roots],
                    evidence_key=Path(evidence_key).read_bytes() if evidence_key else None)
    click.echo(f"bundle: {file}")
    click.echo(report.text(), nl=False)
    if not report.ok:
        sys.exit(1)
