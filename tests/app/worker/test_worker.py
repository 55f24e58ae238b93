"""The job function and its workers: the halt/cancel control, crashes, cancel of a running job, and
the embedded default (``rlhf-audit serve`` + its local worker process) driven by ``app.client``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.client import Client, Forbidden, NotFoundError, Refused
from app.core.database import Database, migrate_home, open_home
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.datasets import get_budget
from app.datasets.schema import dataset_records
from app.jobs import cancel, get_job, submit
from app.jobs.queue import ArqQueue, LocalQueue
from app.jobs.service import claim
from app.oversight import halt
from app.worker.local import run_local_worker
from app.worker.runtime import JobControl
from app.worker.settings import WorkerSettings
from ledger._internal.local_tsa import LocalTSA
from ledger.audit import audit_log
from ledger.home import LogHome
from ledger.log import Log
from tests.support.databases import pair
from tests.support.jobs import (
    ADMIN,
    OVERSEER_A,
    REDIS_URL,
    arq_worker,
    dataset,
    events,
    spec,
    wait_status,
    worker_ctx,
)
from tests.support.paths import ROOT


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keys")


def test_worker_settings() -> None:
    [fn] = WorkerSettings.functions
    assert fn.name == "run_training" and fn.max_tries == 1  # a retry would train twice
    assert WorkerSettings.allow_abort_jobs and WorkerSettings.max_jobs == 1
    assert fn.timeout_s is not None and fn.timeout_s >= 24 * 3600


async def test_job_control_reads_the_flag_at_most_every_interval(db: Database, log: Log,
                                                                 keyring: Keyring) -> None:
    ds = await dataset(log, keyring, 8)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    assert await claim(db, job.run) is not None
    assert await claim(db, job.run) is None  # a second worker does not get it
    loop = asyncio.get_running_loop()
    slow = JobControl(db, job.run, loop, interval=3600)
    quick = JobControl(db, job.run, loop, interval=0)
    assert not await asyncio.to_thread(slow.should_halt)
    assert not await asyncio.to_thread(quick.should_halt)
    decision = await halt(db, log, job.run, "stop: the reward hacking probe fired", OVERSEER_A)
    assert not await asyncio.to_thread(slow.should_halt)  # read once; the next read is an hour away
    assert await asyncio.to_thread(quick.should_halt)  # the very next step sees it
    assert quick.halt_decision == decision.leaf_index and quick.polls == 2


async def test_a_broken_base_model_is_recorded_as_a_failure(local_tsa: LocalTSA, db: Database, log: Log,
                                                            keyring: Keyring, tmp_path: Path) -> None:
    ds = await dataset(log, keyring, 8, budget=10.0)
    broken = spec(ds, base_model=str(tmp_path / "no-such-model"), dp={"target_epsilon": 3.0})
    job = await submit(db, log, keyring, LocalQueue(), broken, ADMIN)
    assert (await get_budget(db, ds)).reserved == 3.0
    assert await run_local_worker(worker_ctx(log, keyring, tmp_path), burst=True) == 1
    failed = await get_job(db, job.run)
    assert failed.status == "failed" and "no-such-model" in failed.error
    [on_log] = await events(log, job.run, "run.failed")  # recorded once, by train()
    assert "no-such-model" in on_log["error"]
    budget = await get_budget(db, ds)
    assert budget.reserved == 0 and budget.spent == 0  # nothing was spent: the reservation is back
    assert (await audit_log(log, tsa_roots=[local_tsa.root_certificate])).ok


async def test_a_dataset_gone_before_the_job_runs_is_a_failure(local_tsa: LocalTSA, db: Database, log: Log,
                                                               keyring: Keyring, tmp_path: Path) -> None:
    queue_name = f"test-worker-{secrets.token_hex(4)}"
    ds = await dataset(log, keyring, 8)
    queue = ArqQueue(REDIS_URL, queue_name)
    try:
        job = await submit(db, log, keyring, queue, spec(ds), ADMIN)
        async with db.transaction("deleting the records") as conn:  # they vanish from the database
            await conn.execute(sa.delete(dataset_records))
        async with arq_worker(worker_ctx(log, keyring, tmp_path), queue_name) as worker:
            await worker.run_once()
    finally:
        await queue.close()
    failed = await get_job(db, job.run)
    assert failed.status == "failed" and "Merkle root" in failed.error
    kinds = [e["kind"] for e in await events(log, job.run)]
    assert kinds == ["job.submitted", "run.failed"]  # recorded by the worker: train() never started
    assert (await audit_log(log, tsa_roots=[local_tsa.root_certificate])).ok


async def test_cancel_a_running_job(db: Database, log: Log, keyring: Keyring, tmp_path: Path) -> None:
    queue_name = f"test-worker-{secrets.token_hex(4)}"
    ds = await dataset(log, keyring, 8)
    queue = ArqQueue(REDIS_URL, queue_name)
    try:
        job = await submit(db, log, keyring, queue, spec(ds, max_steps=8, save_steps=None), ADMIN)
        async with arq_worker(worker_ctx(log, keyring, tmp_path), queue_name) as worker:
            running = asyncio.create_task(worker.run_once())
            await wait_status(log, job.run, ("running",))
            assert (await cancel(db, log, queue, job.run, ADMIN)).cancel_requested
            await running
    finally:
        await queue.close()
    done = await get_job(db, job.run)
    assert done.status == "cancelled" and done.steps < 8
    kinds = [e["kind"] for e in await events(log, job.run)]
    assert kinds[0] == "job.submitted" and kinds[-1] == "job.cancelled" and "run.completed" not in kinds
    [stopped] = await events(log, job.run, "run.halted")
    assert "decision" not in stopped  # stopped by a cancel, not by an overseer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_serve_runs_jobs_in_its_local_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded default: no Redis, `serve` starts a worker process; the client drives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_AUDIT_")}
    for name in [k for k in os.environ if k.startswith("RLHF_AUDIT_")]:
        monkeypatch.delenv(name)
    home = LogHome(tmp_path / "home")
    home.init()
    keyring = Keyring.of(home, Settings.load(home.path))
    await migrate_home(home)
    db, log = await open_home(home)
    pair(log, db)
    try:
        from app.accounts import create_account, create_token

        ds = await dataset(log, keyring, 8, budget=1.0)
        tokens = {}
        for name, role in (("op", "operator"), ("ann", "overseer")):
            await create_account(db, log, name, role, "long enough password",
                                 pseudonymizer=keyring.pseudonymizer)
            tokens[name] = (await create_token(db, log, name, pseudonymizer=keyring.pseudonymizer)).token
    finally:
        await log.close()
        await db.close()
    port = _free_port()
    args = [sys.executable, "-m", "app.cli", "--home", str(home.path), "serve", "--port", str(port)]
    server = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        with Client(base, tokens["op"]) as op, Client(base, tokens["ann"]) as ann:
            deadline = time.monotonic() + 90
            while True:
                try:
                    op.list()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            run = await asyncio.to_thread(op.submit, spec(ds))
            job = await asyncio.to_thread(op.wait, run, 240, 0.5)
            assert job["status"] == "completed", job
            assert job["steps"] == 4 and len(job["checkpoints"]) == 2
            with pytest.raises(Refused) as refused:
                op.submit(spec(ds, dp={"target_epsilon": 5.0}))
            assert refused.value.status == 409 and refused.value.problem["remaining_epsilon"] == 1.0
            with pytest.raises(Refused, match="completed"):
                op.cancel(run)
            with pytest.raises(Forbidden, match="overseer"):
                op.halt(run, "stop it, the probe set regressed")
            with pytest.raises(Refused, match="only a queued or running"):
                ann.halt(run, "stop it, the probe set regressed")
            with pytest.raises(NotFoundError):
                op.status("run_nope")
        objects = home.path / "objects" / "runs" / run
        assert sorted(p.name for p in objects.iterdir()) == ["checkpoint-2", "checkpoint-4", "final"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert b"Traceback" not in (server.stderr.read() if server.stderr else b"")
