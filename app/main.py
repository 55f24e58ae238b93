"""``create_app``: the one place the server is assembled.

The app owns one :class:`ledger.Log` for its lifetime: opened on startup (creating and
migrating the home if needed, so ``rlhf-audit serve`` works on a bare machine), with the
background integrator running so appends from any process get checkpointed and timestamped,
and closed on shutdown. A log handed in (tests, embedding) stays the caller's: the app only
starts and stops its integrator.

Operations endpoints (``/healthz``, ``/readyz``, ``/metrics``) and the request-id, access-log
and metrics middleware come from ``app.observability`` and ``app.metrics``; logging itself is
configured by ``rlhf-audit serve``, not here (it is process-wide state).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State

from ledger.home import LogHome, public_keys
from ledger.log import Log
from ledger.timestamping import LocalTSAClient

from .events_api import EventsController
from .log_api import LogController, healthz
from .metrics import Metrics, metrics
from .observability import ObservabilityMiddleware, readyz
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

    observed = Metrics()  # this app's own registry: apps in one process do not share figures
    return Litestar(
        route_handlers=[LogController, EventsController, healthz, readyz, metrics],
        lifespan=[lifespan],
        exception_handlers=exception_handlers(),
        middleware=[ObservabilityMiddleware(observed)],
        state=State({"metrics": observed}),
        logging_config=None,  # Litestar would reconfigure the root logger; `serve` configures logging
    )
