"""The server's periodic loops stop between rounds and always end.

Both failures these tests pin down were seen in full runs: a round cancelled inside a SQLite
transaction left a zombie connection holding the write lock (the next append waited out its
60 s busy timeout), and psycopg turned the shutdown's cancellation into ``QueryCanceled``, which
the retrying loop swallowed, so the server's shutdown waited for it forever.
"""

from __future__ import annotations

import asyncio

from app.core.background import every
from ledger.errors import StorageError


async def test_a_round_in_progress_is_finished_not_cancelled() -> None:
    started, rounds = asyncio.Event(), []

    async def work() -> None:
        started.set()
        await asyncio.sleep(0.2)  # a transaction that must not be cut short
        rounds.append("done")

    async with asyncio.timeout(5):
        async with every(0.01, work, name="test loop"):
            await started.wait()
    assert rounds and rounds[-1] == "done"


async def test_rounds_repeat_and_failures_are_retried() -> None:
    calls = []

    async def work() -> None:
        calls.append(1)
        if len(calls) % 2:
            raise StorageError("the database is away for a moment")

    async with asyncio.timeout(5), every(0.01, work, name="test loop"):
        while len(calls) < 4:
            await asyncio.sleep(0.01)
    assert len(calls) >= 4


async def test_a_round_that_turns_cancellation_into_an_error_still_ends() -> None:
    started = asyncio.Event()

    async def work() -> None:  # psycopg's behaviour: the cancelled query raises an error of its own
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise StorageError("canceling statement due to user request") from None

    async with asyncio.timeout(5):  # a plain cancel-and-retry loop never ended here
        async with every(0.01, work, name="test loop", grace=0.1):
            await started.wait()


async def test_first_delay_and_an_early_stop() -> None:
    calls = []

    async def work() -> None:
        calls.append(1)

    async with asyncio.timeout(5), every(60, work, name="test loop", first_delay=60):
        await asyncio.sleep(0.05)
    assert calls == []  # stopped during the first delay: no round ran, and no minute was waited
