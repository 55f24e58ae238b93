"""One run across a halt and a resume: the worker's true resume, on the real log, database and
object store. The second segment continues the first (global steps, the accountant's cumulative
ε), the row holds the run's totals, and the budget is settled once with that ε.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.core.database import Database
from app.core.keyring import Keyring
from app.datasets import get_budget
from app.datasets.budget import get_reservation
from app.jobs import cancel, get_job, submit
from app.jobs.queue import LocalQueue
from app.jobs.service import checkpoints
from app.oversight import halt, resume
from app.worker.runtime import run_training
from ledger.log import Log
from tests.support.jobs import (
    ADMIN,
    OVERSEER_A,
    OVERSEER_B,
    dataset,
    events,
    spec,
    tiny_model,
    wait_status,
    worker_ctx,
)

pytest.importorskip("torch")

PLANNED = 8  # 16 pairs, batch 4: 4 steps an epoch, 2 epochs


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keys")


def _strictly_increasing(steps: list[int]) -> bool:
    return all(a < b for a, b in zip(steps, steps[1:], strict=False))


async def test_a_halted_dp_run_resumed_by_a_second_overseer_is_one_run(
        db: Database, log: Log, keyring: Keyring, tmp_path: Path) -> None:
    from trainers.hashing import hash_directory
    from trainers.spec import epsilon_after

    ds = await dataset(log, keyring, 16, budget=50.0)
    doc = spec(ds, epochs=2, max_steps=PLANNED, save_steps=2, dp={"noise_multiplier": 1.0})
    job = await submit(db, log, keyring, LocalQueue(), doc, ADMIN)
    ctx = worker_ctx(log, keyring, tmp_path)

    first = asyncio.create_task(run_training(ctx, job.run))
    await wait_status(log, job.run, ("running",))
    decision = await halt(db, log, job.run, "the reward probe fired, stop it", OVERSEER_A)
    assert await first == "halted"
    halted = await get_job(db, job.run)
    assert 0 < halted.steps < PLANNED and halted.segment == 1 and halted.epsilon is not None
    [stopped] = await events(log, job.run, "run.halted")
    resumed = await resume(db, log, LocalQueue(), job.run, "checked the probe set: a data glitch", OVERSEER_B)
    assert await run_training(ctx, job.run) == "completed"

    done = await get_job(db, job.run)
    assert done.status == "completed", done.error
    assert done.steps == PLANNED and done.segment == 2  # the global step reached, not a sum

    started = await events(log, job.run, "run.started")
    assert [s["segment"] for s in started] == [1, 2]
    assert "resumed_from" not in started[0]
    assert started[1]["resumed_from"] == {
        "step": halted.steps, "checkpoint_root": stopped["checkpoint_root"], "decision": resumed.leaf_index,
        "halted_by": decision.leaf_index}
    base_root = hash_directory(tiny_model())[1]
    assert started[0]["base_model"]["root"] == started[1]["base_model"]["root"] == base_root

    privacy = await events(log, job.run, "run.privacy")
    assert [p["step"] for p in privacy] == list(range(1, PLANNED + 1))  # one global count
    epsilons = [p["epsilon"] for p in privacy]
    assert epsilons == sorted(epsilons)  # the accountant goes on: ε never falls
    sigma, rate = started[0]["dp"]["noise_multiplier"], started[0]["dp"]["sample_rate"]
    assert epsilons[-1] == pytest.approx(epsilon_after(sigma, rate, PLANNED, 1e-5), rel=1e-9)
    [completed] = await events(log, job.run, "run.completed")
    reservation = await get_reservation(db, job.run)
    assert done.epsilon == epsilons[-1] == completed["epsilon"] == reservation.spent
    assert reservation.state == "settled" and completed["steps"] == PLANNED

    on_log = [c["step"] for c in await events(log, job.run, "run.checkpoint")]
    rows = await checkpoints(db, job.run)
    assert _strictly_increasing(on_log) and [r["step"] for r in rows] == on_log
    assert on_log[0] == halted.steps and on_log[-1] == PLANNED
    assert all(r["object_prefix"] == f"runs/{job.run}/checkpoint-{r['step']}" for r in rows)
    metrics = [s["step"] for e in await events(log, job.run, "run.metrics") for s in e["steps"]]
    assert metrics == sorted(metrics) and sorted(set(metrics)) == list(range(1, PLANNED + 1))


async def test_a_halted_dp_run_cancelled_keeps_what_it_spent(db: Database, log: Log, keyring: Keyring,
                                                             tmp_path: Path) -> None:
    """The first segment's ε was spent: cancelling the halted run settles it, never gives it back."""
    ds = await dataset(log, keyring, 16, budget=50.0)
    doc = spec(ds, epochs=2, max_steps=PLANNED, save_steps=None, dp={"noise_multiplier": 1.0})
    job = await submit(db, log, keyring, LocalQueue(), doc, ADMIN)
    first = asyncio.create_task(run_training(worker_ctx(log, keyring, tmp_path), job.run))
    await wait_status(log, job.run, ("running",))
    await halt(db, log, job.run, "the reward probe fired, stop it", OVERSEER_A)
    assert await first == "halted"
    spent = (await get_job(db, job.run)).epsilon
    assert spent is not None and spent > 0

    await cancel(db, log, LocalQueue(), job.run, ADMIN)
    reservation = await get_reservation(db, job.run)
    assert reservation.state == "settled" and reservation.spent == spent
    budget = await get_budget(db, ds)
    assert budget.spent == pytest.approx(spent) and budget.reserved == pytest.approx(0.0, abs=1e-9)
