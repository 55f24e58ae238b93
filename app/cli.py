"""The ``rlhf-audit`` console script: the ledger's commands plus the server's and workers'.

The web stack is imported inside ``serve`` only, so ``rlhf-audit append`` and the other ledger
commands start as fast as before and work where Litestar is not installed.
"""

from __future__ import annotations

import click

from ledger.cli import cli, run


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


def main() -> None:
    run(cli)


if __name__ == "__main__":
    main()
