"""A resume is a privacy decision too: a halted DP run is queued again only when the ε it will have
spent at its end fits its reservation, raised from the dataset's budget if need be. Refused (409,
with the numbers): nothing recorded as a decision, the run stays halted. Real log, database and
training (tiny model), SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.core.database import Database
from app.core.keyring import Keyring
from app.datasets import get_budget, set_budget
from app.datasets.budget import get_reservation, release
from app.datasets.schema import dataset_records
from app.jobs import get_job, submit
from app.jobs.queue import LocalQueue
from app.oversight import halt, list_decisions, reject_annotator
from app.worker.runtime import run_training
from ledger.log import Log
from tests.support.jobs import (
    ADMIN,
    OVERSEER_A,
    dataset,
    is_problem,
    serving,
    spec,
    token,
    wait_status,
    worker_ctx,
)

WHY = "checked the probe set: a data glitch"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keys")


def _doc(ds: str) -> dict:
    return spec(ds, epochs=4, max_steps=8, save_steps=None, dp={"noise_multiplier": 1.0})


async def _resume(client, run: str, who: dict[str, str]):  # noqa: ANN001, ANN202
    return await client.post(f"/api/v1/oversight/runs/{run}/resume", json={"justification": WHY}, headers=who)


async def _busiest_annotator(db: Database, ds: str) -> str:
    rows = await db.execute("test", sa.select(dataset_records.c.annotator).where(
        dataset_records.c.annotator.is_not(None)))
    return Counter(r.annotator for r in rows.all()).most_common(1)[0][0]


async def test_a_resume_beyond_the_budget_is_refused_until_it_fits(
        db: Database, log: Log, keyring: Keyring, tmp_path: Path) -> None:
    """The plan grew after submission (an annotator rejected before the run started: fewer pairs,
    a higher sample rate), so the resume needs more than the reservation holds."""
    from trainers.spec import TrainingSpec

    pytest.importorskip("torch")
    ds = await dataset(log, keyring, 16, budget=50.0)
    job = await submit(db, log, keyring, LocalQueue(), _doc(ds), ADMIN)
    await reject_annotator(db, log, await _busiest_annotator(db, ds), "this annotator's labels are noise",
                           OVERSEER_A)
    ctx = worker_ctx(log, keyring, tmp_path)
    first = asyncio.create_task(run_training(ctx, job.run))
    await wait_status(log, job.run, ("running",))
    await halt(db, log, job.run, "the reward probe fired, stop it", OVERSEER_A)
    assert await first == "halted"
    halted = await get_job(db, job.run)
    assert halted.pairs is not None and halted.pairs <= 12  # 3 batches of 4, not 4
    reserved = halted.planned_epsilon
    assert reserved is not None
    planned = TrainingSpec.from_dict(halted.spec).planned_epsilon(halted.pairs)
    assert planned is not None and planned > reserved
    tight = reserved + (planned - reserved) / 2  # half the difference remains
    await set_budget(db, log, ds, tight, 1e-5, ADMIN)
    bob = await token(log, keyring, "bob", "overseer")

    async with serving(log, keyring, LocalQueue()) as client:
        body = is_problem(await _resume(client, job.run, bob), 409, "cannot be resumed", f"{planned:g}")
        assert body["planned_epsilon"] == pytest.approx(planned)
        assert body["reserved_epsilon"] == pytest.approx(reserved)
        assert body["remaining_epsilon"] == pytest.approx((planned - reserved) / 2)
        assert await list_decisions(db, run=job.run, action="resume") == []  # nothing was decided
        still = await get_job(db, job.run)
        assert still.status == "halted" and still.halted
        assert (await get_reservation(db, job.run)).planned == pytest.approx(reserved)
        assert (await get_budget(db, ds)).reserved == pytest.approx(reserved)

        await set_budget(db, log, ds, 50.0, 1e-5, ADMIN)
        r = await _resume(client, job.run, bob)
        assert r.status_code == 201, r.text
    assert (await get_job(db, job.run)).status == "queued"
    assert (await get_reservation(db, job.run)).planned == pytest.approx(planned)  # the difference, taken
    assert (await get_budget(db, ds)).reserved == pytest.approx(planned)

    assert await run_training(ctx, job.run) == "completed"
    done, held = await get_job(db, job.run), await get_reservation(db, job.run)
    assert held.state == "settled" and held.spent == done.epsilon == pytest.approx(planned, rel=1e-6)
    budget = await get_budget(db, ds)
    assert budget.reserved == pytest.approx(0.0, abs=1e-9) and budget.spent == pytest.approx(planned)


async def test_a_resume_without_a_standing_reservation_is_refused(db: Database, log: Log,
                                                                    keyring: Keyring) -> None:
    ds = await dataset(log, keyring, 16, budget=50.0)
    job = await submit(db, log, keyring, LocalQueue(), _doc(ds), ADMIN)
    await halt(db, log, job.run, "hold it until the datasheet is reviewed", OVERSEER_A)  # never started
    await release(db, job.run)  # its reservation closed meanwhile (given back)
    bob = await token(log, keyring, "bob", "overseer")
    async with serving(log, keyring, LocalQueue()) as client:
        is_problem(await _resume(client, job.run, bob), 409, "reservation is released", "no longer reserved")
    assert await list_decisions(db, run=job.run, action="resume") == []
    assert (await get_job(db, job.run)).status == "halted"
