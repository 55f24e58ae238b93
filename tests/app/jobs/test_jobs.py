"""Training jobs end to end on SQLite and PostgreSQL: submit, queue, train, store, record.

Real parts throughout: the datasets package, TRL/Opacus training of a tiny Llama, the FileStore,
the local worker and an in-process ARQ worker over the real Redis (a queue name per test).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from app.core.database import Database
from app.core.keyring import Keyring
from app.datasets import get_budget
from app.jobs import Conflict, JobError, cancel, get_job, list_jobs, submit
from app.jobs.queue import ArqQueue, LocalQueue
from app.jobs.service import checkpoints, new_id
from app.worker.local import run_local_worker
from ledger._internal.local_tsa import LocalTSA
from ledger.audit import audit_log
from ledger.log import Log
from tests.support.jobs import (
    ADMIN,
    REDIS_URL,
    arq_worker,
    dataset,
    events,
    is_problem,
    serving,
    spec,
    token,
    worker_ctx,
)
from trainers.hashing import hash_directory, hash_file


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keys")


def test_run_ids_are_ulids() -> None:
    ids = [new_id("run") for _ in range(200)]
    assert len(set(ids)) == 200
    for i in ids:
        assert i.startswith("run_") and len(i) == 30
        assert set(i[4:]) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


async def _stored_matches(ctx: dict[str, Any], prefix: str, files: dict[str, str]) -> None:
    store = ctx["objects"]
    keys = store.list(prefix)
    assert sorted(k[len(prefix) + 1:] for k in keys) == sorted(files)
    for rel, digest in files.items():
        assert hash_file(store.path(f"{prefix}/{rel}")) == digest


async def test_local_worker_runs_a_job_end_to_end(local_tsa: LocalTSA, db: Database, log: Log,
                                                  keyring: Keyring, tmp_path: Path) -> None:
    ds = await dataset(log, keyring, 16)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN, submitted_by="alice")
    assert job.status == "queued" and job.planned_epsilon is None and job.dataset_version == 1
    ctx = worker_ctx(log, keyring, tmp_path)
    assert await run_local_worker(ctx, burst=True) == 1
    done = await get_job(db, job.run)
    assert done.status == "completed", done.error
    assert done.steps == 4 and done.model == "model_" + job.run[4:]

    mine = await events(log, job.run)
    kinds = [e["kind"] for e in mine]
    assert kinds[0] == "job.submitted" and kinds[1] == "run.started" and kinds[-1] == "run.completed"
    submitted = mine[0]
    assert submitted["spec"]["dataset"] == ds and submitted["actor"] == ADMIN.pseudonym
    steps = [s["step"] for e in mine if e["kind"] == "run.metrics" for s in e["steps"] if "loss" in s]
    assert steps == [1, 2, 3, 4]  # every step, batched
    cps = [e for e in mine if e["kind"] == "run.checkpoint"]
    assert [c["step"] for c in cps] == [2, 4]
    for c in cps:  # the log's hashes are the stored files' hashes, and the root is theirs
        await _stored_matches(ctx, c["object_prefix"], c["files"])
        assert hash_directory(ctx["objects"].path(c["object_prefix"]))[1] == c["root"]
    assert [(c["step"], c["root"]) for c in await checkpoints(db, job.run)] == [(c["step"], c["root"])
                                                                                 for c in cps]
    completed = mine[-1]
    assert completed["root"] == done.model_root and completed["model"] == done.model
    assert completed["object_prefix"] == done.model_prefix  # the artefact audit needs no guess
    await _stored_matches(ctx, done.model_prefix, completed["files"])
    assert "model.safetensors" in completed["files"] and "tokenizer.json" in completed["files"]
    assert (await audit_log(log, tsa_roots=[local_tsa.root_certificate])).ok


async def test_arq_worker_runs_a_dp_job_and_settles_the_budget(local_tsa: LocalTSA, db: Database, log: Log,
                                                               keyring: Keyring, tmp_path: Path) -> None:
    queue_name = f"test-jobs-{secrets.token_hex(4)}"
    ds = await dataset(log, keyring, 16, budget=100.0)
    queue = ArqQueue(REDIS_URL, queue_name)
    try:
        dp = {"noise_multiplier": 1.0, "max_grad_norm": 1.0}
        job = await submit(db, log, keyring, queue, spec(ds, dp=dp, save_steps=None), ADMIN)
        assert job.planned_epsilon is not None and 0 < job.planned_epsilon < 100
        assert (await get_budget(db, ds)).reserved == pytest.approx(job.planned_epsilon)
        async with arq_worker(worker_ctx(log, keyring, tmp_path), queue_name) as worker:
            await worker.run_once()
    finally:
        await queue.close()
    done = await get_job(db, job.run)
    assert done.status == "completed", done.error
    mine = await events(log, job.run)
    started = next(e for e in mine if e["kind"] == "run.started")
    assert started["dp"]["enabled"] and started["dp"]["unit"] == "preference_pair"
    privacy = [e for e in mine if e["kind"] == "run.privacy"]
    assert privacy and privacy[-1]["epsilon"] == pytest.approx(done.epsilon)
    assert next(e for e in mine if e["kind"] == "run.completed")["epsilon"] == pytest.approx(done.epsilon)
    budget = await get_budget(db, ds)
    assert budget.reserved == pytest.approx(0) and budget.spent == pytest.approx(done.epsilon)
    assert done.epsilon <= job.planned_epsilon + 1e-9
    assert (await audit_log(log, tsa_roots=[local_tsa.root_certificate])).ok


async def test_submit_refusals(db: Database, log: Log, keyring: Keyring, tmp_path: Path) -> None:
    ds = await dataset(log, keyring, 8, budget=5.0)
    queue = LocalQueue()
    with pytest.raises(JobError, match="learning_rate"):
        await submit(db, log, keyring, queue, spec(ds, learning_rate=None), ADMIN)
    with pytest.raises(JobError, match="unknown spec field"):
        await submit(db, log, keyring, queue, {**spec(ds), "gpus": 8}, ADMIN)
    with pytest.raises(JobError, match="JSON object"):
        await submit(db, log, keyring, queue, ["not", "a", "spec"], ADMIN)
    with pytest.raises(Exception, match="no version 7"):
        await submit(db, log, keyring, queue, spec(ds, dataset_version=7), ADMIN)
    before = await log.sequenced_size()
    with pytest.raises(Conflict, match="exceeds") as refused:
        await submit(db, log, keyring, queue, spec(ds, dp={"target_epsilon": 8.0}), ADMIN)
    assert refused.value.extensions["planned_epsilon"] == 8.0
    assert refused.value.extensions["remaining_epsilon"] == 5.0
    [event] = [e for e in await events(log) if e["_i"] >= before]
    assert event["kind"] == "job.refused" and event["planned_epsilon"] == 8.0
    assert event["remaining_epsilon"] == 5.0 and event["run"] == refused.value.extensions["run"]
    assert await list_jobs(db) == []  # nothing queued
    assert (await get_budget(db, ds)).reserved == 0


async def test_jobs_api(db: Database, log: Log, keyring: Keyring) -> None:
    ds = await dataset(log, keyring, 8, budget=5.0)
    operator = await token(log, keyring, "olga", "operator")
    auditor = await token(log, keyring, "aldo", "auditor")
    async with serving(log, keyring, LocalQueue()) as client:
        r = await client.post("/api/v1/jobs", json=spec(ds, dp={"target_epsilon": 2.0}), headers=operator)
        assert r.status_code == 201, r.text
        run = r.json()["run"]
        assert r.headers["location"] == f"/api/v1/jobs/{run}"
        assert r.json()["status"] == "queued" and r.json()["planned_epsilon"] == 2.0
        assert (await get_budget(db, ds)).reserved == 2.0

        r = await client.post("/api/v1/jobs", json=spec(ds, dp={"target_epsilon": 4.0}), headers=operator)
        body = is_problem(r, 409, "exceeds", "remaining 3")
        assert body["planned_epsilon"] == 4.0 and body["remaining_epsilon"] == 3.0
        r = await client.post("/api/v1/jobs", json=spec(ds, kind="ppo"), headers=operator)
        is_problem(r, 400, "kind")
        is_problem(await client.post("/api/v1/jobs", content=b"{", headers=operator), 400, "not JSON")
        is_problem(await client.post("/api/v1/jobs", json=spec(ds), headers=auditor), 403, "jobs:submit")
        is_problem(await client.post("/api/v1/jobs", json=spec(ds)), 401)

        r = await client.get("/api/v1/jobs", headers=auditor)
        assert [j["run"] for j in r.json()["jobs"]] == [run]
        r = await client.get("/api/v1/jobs?status=completed", headers=auditor)
        assert r.json()["jobs"] == []
        is_problem(await client.get("/api/v1/jobs?status=nope", headers=auditor), 400, "status")
        r = await client.get(f"/api/v1/jobs/{run}", headers=auditor)
        assert r.status_code == 200 and r.json()["checkpoints"] == [] and r.json()["spec"]["dataset"] == ds
        is_problem(await client.get("/api/v1/jobs/run_nope", headers=auditor), 404, "no job")

        is_problem(await client.post(f"/api/v1/jobs/{run}/cancel", headers=auditor), 403)
        r = await client.post(f"/api/v1/jobs/{run}/cancel", headers=operator)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert (await get_budget(db, ds)).reserved == 0  # the reservation came back
        r = await client.post(f"/api/v1/jobs/{run}/cancel", headers=operator)
        is_problem(r, 409, "already cancelled")
    kinds = [e["kind"] for e in await events(log, run)]
    assert kinds == ["job.submitted", "job.cancelled"]


async def test_cancel_queued_then_worker_skips(db: Database, log: Log, keyring: Keyring,
                                               tmp_path: Path) -> None:
    ds = await dataset(log, keyring, 8)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    await cancel(db, log, LocalQueue(), job.run, ADMIN)
    assert await run_local_worker(worker_ctx(log, keyring, tmp_path), burst=True) == 0
    assert (await get_job(db, job.run)).status == "cancelled"
    assert not [e for e in await events(log, job.run) if e["kind"].startswith("run.")]
