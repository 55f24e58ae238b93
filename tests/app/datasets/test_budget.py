"""The privacy-budget manager: set, reserve (atomic under concurrency), settle, release.

On SQLite and PostgreSQL; the race runs through two separate engines (connection pools), as
two API workers would.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson
import pytest

from app.core.database import Database
from app.core.keyring import Keyring
from app.datasets import (
    BudgetError,
    BudgetExceeded,
    UnknownDataset,
    get_budget,
    import_dataset,
    release,
    remaining,
    reserve,
    set_budget,
    settle,
)
from app.datasets.errors import UnknownReservation
from app.events.recording import Actor
from ledger.log import Log
from tests.support.datasets_data import jsonl, rows

ADMIN = Actor("pseud:" + "a" * 32, "admin")


async def _dataset(db: Database, log: Log, tmp_path: Path, name: str = "b") -> str:
    return (await import_dataset(db, log, Keyring(tmp_path / "keys"), name, jsonl(rows(3)))).dataset


async def test_set_reserve_settle_release(db: Database, log: Log, tmp_path: Path) -> None:
    name = await _dataset(db, log, tmp_path)
    with pytest.raises(BudgetError, match="no privacy budget is set"):
        await reserve(db, name, "run_1", 1.0)
    budget = await set_budget(db, log, "b", 8.0, 1e-5, ADMIN)
    assert (budget.epsilon_total, budget.delta, budget.remaining) == (8.0, 1e-5, 8.0)
    [event] = [orjson.loads(await log.entry(i)) for i in range(await log.sequenced_size())
               if orjson.loads(await log.entry(i))["kind"] == "dataset.budget_set"]
    assert (event["dataset"], event["epsilon_total"], event["delta"]) == (name, 8.0, 1e-5)
    assert (event["actor"], event["role"]) == (ADMIN.pseudonym, "admin")

    await reserve(db, name, "run_1", 3.0)
    await reserve(db, name, "run_2", 4.0)
    assert await remaining(db, name) == pytest.approx(1.0)
    with pytest.raises(BudgetExceeded) as refused:
        await reserve(db, name, "run_3", 2.5)
    message = str(refused.value)
    for number in ("2.5", "total 8", "spent 0", "reserved by running jobs 7", "remaining 1"):
        assert number in message, message
    assert refused.value.remaining == pytest.approx(1.0)
    with pytest.raises(BudgetError, match="already has"):
        await reserve(db, name, "run_1", 0.1)

    settled = await settle(db, "run_1", 2.25)  # the accountant spent less than planned
    assert (settled.state, settled.planned) == ("settled", 3.0)
    b = await get_budget(db, name)
    assert (b.spent, b.reserved, b.remaining) == pytest.approx((2.25, 4.0, 1.75))
    await release(db, "run_2")  # failed before it started: all of it comes back
    b = await get_budget(db, name)
    assert (b.spent, b.reserved, b.remaining) == pytest.approx((2.25, 0.0, 5.75))
    await reserve(db, name, "run_3", 5.75)  # exactly what remains fits

    with pytest.raises(BudgetError, match="already settled"):
        await settle(db, "run_1", 1.0)
    with pytest.raises(BudgetError, match="already released"):
        await release(db, "run_2")
    with pytest.raises(UnknownReservation):
        await settle(db, "run_unknown", 1.0)
    with pytest.raises(BudgetError, match="below what"):
        await set_budget(db, log, name, 5.0, 1e-5, ADMIN)  # spent 2.25 + reserved 5.75 = 8
    await set_budget(db, log, name, 10.0, 1e-6, ADMIN)
    assert await remaining(db, name) == pytest.approx(2.0)


async def test_bad_numbers_and_unknown_dataset(db: Database, log: Log, tmp_path: Path) -> None:
    name = await _dataset(db, log, tmp_path)
    for total, delta in [(0, 1e-5), (-1, 1e-5), (float("inf"), 1e-5), (1.0, 1.0), (1.0, -0.1), ("1", 0)]:
        with pytest.raises(BudgetError):
            await set_budget(db, log, name, total, delta, ADMIN)  # type: ignore[arg-type]
    with pytest.raises(UnknownDataset):
        await set_budget(db, log, "nope", 1.0, 1e-5, ADMIN)
    await set_budget(db, log, name, 1.0, 1e-5, ADMIN)
    for planned in (0, -1.0, float("nan")):
        with pytest.raises(BudgetError):
            await reserve(db, name, "run_x", planned)
    await reserve(db, name, "run_x", 0.5)
    with pytest.raises(BudgetError):
        await settle(db, "run_x", -0.1)


async def test_racing_reservations_never_overspend(db: Database, log: Log, tmp_path: Path,
                                                   database_url: str) -> None:
    name = await _dataset(db, log, tmp_path)
    await set_budget(db, log, name, 1.0, 1e-5, ADMIN)
    other = Database.open(database_url)  # a second process's connection pool
    try:
        async def attempt(i: int) -> bool:
            try:
                await reserve(other if i % 2 else db, name, f"run_{i}", 0.4)
                return True
            except BudgetExceeded:
                return False

        for round_ in range(3):
            if round_:
                for i in range(8):
                    with contextlib.suppress(BudgetError, UnknownReservation):  # only the winners hold one
                        await release(db, f"run_{i}")
                await _clear(db)
            won = await asyncio.gather(*(attempt(i) for i in range(8)))
            assert sum(won) == 2, won  # 2 x 0.4 fit in 1.0, a third never does
            b = await get_budget(db, name)
            assert b.reserved == pytest.approx(0.8) and b.remaining == pytest.approx(0.2)
    finally:
        await other.close()


async def _clear(db: Database) -> None:
    """Forget released reservations so the next round can reuse the run ids."""
    import sqlalchemy as sa

    from app.datasets.schema import budget_reservations

    async with db.engine.begin() as conn:
        await conn.execute(sa.delete(budget_reservations).where(budget_reservations.c.state == "released"))
