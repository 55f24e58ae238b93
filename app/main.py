"""``create_app``: the one place the server is assembled.

The app owns one :class:`ledger.Log` for its lifetime: opened on startup (creating and
migrating the home if needed, so ``rlhf-audit serve`` works on a bare machine), with the
background integrator running so appends from any process get checkpointed and timestamped,
and closed on shutdown. A log handed in (tests, embedding) stays the caller's: the app only
starts and stops its integrator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from ledger.home import LogHome, public_keys
from ledger.log import Log
from ledger.timestamping import LocalTSAClient

from .log_api import LogController, healthz
from .problems import exception_handlers

__all__ = ["create_app"]


async def _open(home: LogHome) -> Log:
    if not home.exists():
        home.init()
    return await home.open_log(migrate=True)


def _keys_of(log: Log) -> dict[str, str]:
    local = next((t.tsa for t in log.tsas if isinstance(t, LocalTSAClient)), None)
    return public_keys(log.origin, log.signer.verifier, local)


def create_app(home: LogHome | None = None, *, log: Log | None = None) -> Litestar:
    """The Litestar app over ``log``, or over the log of ``home`` (default: LogHome.resolve())."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = log is None
        the_log = log if log is not None else await _open(home or LogHome.resolve(None))
        app.state.log = the_log
        app.state.public_keys = _keys_of(the_log)
        await the_log.start()
        try:
            yield
        finally:
            if owned:
                await the_log.close()
            else:
                await the_log.stop()

    return Litestar(
        route_handlers=[LogController, healthz],
        lifespan=[lifespan],
        exception_handlers=exception_handlers(),
    )
