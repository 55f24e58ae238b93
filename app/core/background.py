"""Periodic work inside the server (event index, settings reload, compliance schedule).

Each round runs to its end: at shutdown the loop is asked to stop and finishes the round in
hand, and is cancelled only if that takes longer than ``grace`` seconds. Cancelling a round in
the middle of a database transaction is what this avoids: on SQLite the cancelled connection
could be closed with its statement still open, leaving a zombie that holds the write lock
(every later write then waited out its busy timeout), and psycopg may turn a cancellation into
``QueryCanceled``, which a loop that retries failed rounds would swallow, never ending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from ledger.errors import LedgerError

from .errors import AppError

__all__ = ["every"]

_log = logging.getLogger("app")


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _loop(work: Callable[[], Awaitable[object]], interval: float, stop: asyncio.Event,
                name: str, first_delay: float) -> None:
    if first_delay:
        await _stopped(stop, first_delay)
    while not stop.is_set():
        try:
            await work()
        except (LedgerError, AppError) as e:
            _log.warning("%s failed (will retry): %s", name, e)
        except Exception:  # a bug must not stop the loop for the server's lifetime
            _log.exception("%s failed (will retry)", name)
        if _cancelling():  # a library turned our cancellation into an error of its own
            raise asyncio.CancelledError
        await _stopped(stop, interval)


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; whether it was set."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True


@contextlib.asynccontextmanager
async def every(interval: float, work: Callable[[], Awaitable[object]], *, name: str,
                first_delay: float = 0.0, grace: float = 10.0) -> AsyncIterator[None]:
    """Run ``work`` every ``interval`` seconds while the block runs (after ``first_delay``).

    Failures are logged and retried next round. On exit the loop stops between rounds; a round
    still running after ``grace`` seconds is cancelled.
    """
    stop = asyncio.Event()
    task = asyncio.create_task(_loop(work, interval, stop, name, first_delay), name=name)
    try:
        yield
    finally:
        stop.set()
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(task)
        except TimeoutError:
            _log.warning("%s: the round in progress outlived the %s s grace; cancelling it", name, grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
