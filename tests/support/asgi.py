"""The app with its lifespan on the test's event loop, and an httpx client over ASGI.

Litestar's AsyncTestClient runs the lifespan on a portal thread's own event loop, where the
log's database connections and integrator task would not be usable: so plain httpx over
ASGI, with the lifespan in a task of its own (as a server runs it; fixtures tear down in another).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar

from app.core.keyring import Keyring
from app.server.core import create_app
from ledger.log import Log
from tests.support.databases import database_of


@asynccontextmanager
async def lifespan_of(app: Litestar) -> AsyncIterator[None]:
    """The app's lifespan running in a task of its own until the block ends."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    while not started.is_set():
        if task.done():
            task.result()  # startup failed: raise its error
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        stop.set()
        await task


@asynccontextmanager
async def serving(log: Log) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ``log`` (integrator running) and a client, as an auditor reaches it."""
    app = create_app(db=database_of(log), log=log)
    async with lifespan_of(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url="http://auditor.test") as client:
        yield client


@asynccontextmanager
async def running(log: Log, keyring: Keyring) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    """The app over ``log`` with ``keyring`` (accounts, tokens, sessions), and a client."""
    app = create_app(db=database_of(log), log=log, keyring=keyring)
    async with lifespan_of(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                   base_url="http://t") as client:
        yield app, client
