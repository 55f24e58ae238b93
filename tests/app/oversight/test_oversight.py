"""Human oversight (Art. 14) on a real log, SQLite and PostgreSQL: halt, resume, reject, roll back,
approve, veto, release; over the API and the CLI. Training is real (tiny model) where a decision
acts on a run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.accounts import create_account
from app.core.database import Database, migrate_home, open_home
from app.core.keyring import Keyring
from app.core.settings import Settings
from app.datasets import import_dataset, load_version
from app.jobs import get_job, submit
from app.jobs.queue import ArqQueue, LocalQueue
from app.jobs.service import checkpoints
from app.oversight import halt, list_decisions
from app.worker.local import run_local_worker
from ledger._internal.local_tsa import LocalTSA
from ledger.audit import audit_log
from ledger.home import LogHome
from ledger.log import Log
from tests.support.databases import pair
from tests.support.jobs import (
    ADMIN,
    REDIS_URL,
    SHEET,
    arq_worker,
    dataset,
    events,
    is_problem,
    jsonl,
    serving,
    spec,
    token,
    wait_status,
    worker_ctx,
)
from tests.support.paths import ROOT

WHY = "loss diverged on the safety probe set"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keys")


async def test_halt_stops_a_running_job_and_resume_needs_a_second_overseer(
        local_tsa: LocalTSA, db: Database, log: Log, keyring: Keyring, tmp_path: Path) -> None:
    queue_name = f"test-oversight-{secrets.token_hex(4)}"
    ds = await dataset(log, keyring, 16)
    ann = await token(log, keyring, "ann", "overseer")
    bob = await token(log, keyring, "bob", "overseer")
    queue = ArqQueue(REDIS_URL, queue_name)
    max_steps = 8
    try:
        job = await submit(db, log, keyring, queue, spec(ds, max_steps=max_steps, save_steps=None), ADMIN)
        async with serving(log, keyring, queue) as client, arq_worker(worker_ctx(log, keyring, tmp_path),
                                                                        queue_name) as worker:
            running = asyncio.create_task(worker.run_once())
            await wait_status(log, job.run, ("running",))  # claimed: loading data and model, then steps
            r = await client.post(f"/api/v1/oversight/runs/{job.run}/halt", json={"justification": "no"},
                                  headers=ann)
            is_problem(r, 400, "justification")
            asked = time.monotonic()
            r = await client.post(f"/api/v1/oversight/runs/{job.run}/halt", json={"justification": WHY},
                                  headers=ann)
            assert r.status_code == 201, r.text
            decision = r.json()
            await running
            stopped_after = time.monotonic() - asked
            halted = await get_job(db, job.run)
            assert halted.status == "halted" and halted.halted and 0 < halted.steps < max_steps
            assert stopped_after < 30  # the flag is read every 0.2 s and the run stops at its next step
            assert halted.steps <= 3
            [on_log] = await events(log, job.run, "run.halted")
            assert on_log["decision"] == decision["leaf_index"] and on_log["step"] == halted.steps
            [saved] = await checkpoints(db, job.run)
            assert on_log["checkpoint_root"] == saved["root"] and saved["step"] == halted.steps

            r = await client.post(f"/api/v1/oversight/runs/{job.run}/resume", json={"justification": WHY},
                                  headers=ann)
            is_problem(r, 403, "other than the one who halted")
            r = await client.post(f"/api/v1/oversight/runs/{job.run}/resume",
                                  json={"justification": "checked the probe set: a data glitch"}, headers=bob)
            assert r.status_code == 201, r.text
            assert r.json()["detail"]["halted_by"] == decision["decision_id"]
            assert (await get_job(db, job.run)).status == "queued"
            await worker.run_once()
    finally:
        await queue.close()
    done = await get_job(db, job.run)
    assert done.status == "completed", done.error
    assert done.steps == max_steps and done.segment == 2  # the run's global step, resumed exactly
    started = await events(log, job.run, "run.started")
    assert len(started) == 2 and started[1]["resumed_from"]["checkpoint_root"] == saved["root"]
    assert started[1]["base_model"] == started[0]["base_model"]  # the original base model
    resume = [e for e in await events(log, kind="oversight.decision") if e["action"] == "resume"]
    assert [(e["target"], e["actor"], e["halted_by"]) for e in resume] == [
        ({"run": job.run}, r.json()["actor"], decision["decision_id"])]
    assert (await audit_log(log, tsa_roots=[local_tsa.root_certificate])).ok


async def test_release_needs_a_standing_approval(db: Database, log: Log, keyring: Keyring,
                                                 tmp_path: Path) -> None:
    ds = await dataset(log, keyring, 16)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    await run_local_worker(worker_ctx(log, keyring, tmp_path), burst=True)
    done = await get_job(db, job.run)
    assert done.status == "completed", done.error
    model = done.model
    ann = await token(log, keyring, "ann", "overseer")
    aud = await token(log, keyring, "aud", "auditor")
    op = await token(log, keyring, "op", "operator")
    async with serving(log, keyring, LocalQueue()) as client:
        async def post(path: str, who: dict[str, str], **body: object) -> object:
            return await client.post(f"/api/v1{path}", json=body, headers=who)

        is_problem(await post(f"/models/{model}/release", ann), 409, "no approve_release")
        is_problem(await post(f"/models/{model}/release", op), 403, "overseer or admin")
        is_problem(await post(f"/oversight/models/{model}/approve", aud, justification=WHY), 403)
        is_problem(await post(f"/oversight/models/{model}/approve", ann, justification="ok"), 400,
                   "justification")
        is_problem(await post(f"/oversight/models/{model}/approve", ann), 400, "justification")
        is_problem(await post("/oversight/models/model_nope/approve", ann, justification=WHY), 404,
                   "no model")
        approve = await post(f"/oversight/models/{model}/approve", ann, justification=WHY)
        assert approve.status_code == 201, approve.text
        veto = await post(f"/oversight/models/{model}/veto", ann, justification="bias probe failed, see T-12")
        assert veto.status_code == 201
        is_problem(await post(f"/models/{model}/release", ann), 409, "veto_release")
        r = await post(f"/oversight/models/{model}/rollback", ann, justification=WHY, to_checkpoint="9")
        is_problem(r, 404, "no checkpoint")
        rollback = await post(f"/oversight/models/{model}/rollback", ann, justification=WHY, to_checkpoint=2)
        assert rollback.status_code == 201, rollback.text
        first = (await checkpoints(db, job.run))[0]
        assert rollback.json()["detail"]["to_checkpoint"] == first["root"]
        assert (await get_job(db, job.run)).model_root == first["root"]
        is_problem(await post(f"/models/{model}/release", ann), 409, "rollback")
        approve = await post(f"/oversight/models/{model}/approve", ann, justification=WHY)
        released = await post(f"/models/{model}/release", ann)
        assert released.status_code == 201, released.text
        assert released.json()["approval"] == approve.json()["decision_id"]
        assert released.json()["root"] == first["root"]
        is_problem(await post(f"/models/{model}/release", ann), 409, "already released")
        r = await client.get(f"/api/v1/oversight/decisions?model={model}", headers=aud)
        assert [d["action"] for d in r.json()["decisions"]] == [
            "approve_release", "rollback", "veto_release", "approve_release"]
    [on_log] = [e for e in await events(log) if e["kind"] == "model.released"]
    assert on_log["model"] == model and on_log["approval"] == approve.json()["decision_id"]
    decisions = [e for e in await events(log) if e["kind"] == "oversight.decision"]
    assert len(decisions) == 4 and all(e["justification"] and e["decision_id"] for e in decisions)
    assert all(e["role"] == "overseer" for e in decisions)


async def test_rejections(db: Database, log: Log, keyring: Keyring) -> None:
    ds = await dataset(log, keyring, 12)
    ann = await token(log, keyring, "ann", "overseer")
    op = await token(log, keyring, "op", "operator")
    annotator = next(e["annotator"] for e in await events(log) if e["kind"] == "dataset.record")
    async with serving(log, keyring, LocalQueue()) as client:
        r = await client.post(f"/api/v1/oversight/datasets/{ds}/1/reject", json={"justification": WHY},
                              headers=op)
        is_problem(r, 403)
        r = await client.post(f"/api/v1/oversight/datasets/{ds}/1/reject", json={"justification": WHY},
                              headers=ann)
        assert r.status_code == 201, r.text
        is_problem(await client.post("/api/v1/jobs", json=spec(ds, dataset_version=1), headers=op), 409,
                   "rejected")
        r = await client.post("/api/v1/oversight/annotators/alice@example.org/reject",
                              json={"justification": WHY}, headers=ann)
        is_problem(r, 400, "pseudonym")
        r = await client.post(f"/api/v1/oversight/annotators/{annotator}/reject", json={"justification": WHY},
                              headers=ann)
        assert r.status_code == 201, r.text
        assert r.json()["target"] == {"annotator": annotator}
    await import_dataset(db, log, keyring, ds, jsonl(12, seed=5), datasheet=SHEET, actor=ADMIN)
    v2 = await load_version(db, log, keyring, ds, 2)
    assert v2.excluded > 0 and all(rec.annotator != annotator for rec in v2.records)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    assert job.dataset_version == 2
    actions = [d.action for d in await list_decisions(db)]
    assert actions == ["reject_annotator", "reject_dataset"]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RLHF_AUDIT_DATABASE_URL", "RLHF_AUDIT_HOME", "RLHF_AUDIT_REDIS_URL",
                        "RLHF_AUDIT_DEBUG", "RLHF_AUDIT_KEYS_DIR")}
    return subprocess.run([sys.executable, "-m", "app.cli", "--home", str(home), *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


async def test_cli_oversight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RLHF_AUDIT_DATABASE_URL", "RLHF_AUDIT_KEYS_DIR", "RLHF_AUDIT_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    assert _cli(home, "init").returncode == 0
    await migrate_home(LogHome(home))
    db, log = await open_home(LogHome(home))
    pair(log, db)
    try:
        keyring = Keyring.of(LogHome(home), Settings.load(home))
        for name, role in (("ann", "overseer"), ("bob", "overseer"), ("op", "operator")):
            await create_account(db, log, name, role, "long enough password",
                                 pseudonymizer=keyring.pseudonymizer)
        ds = await dataset(log, keyring, 8)
        job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    finally:
        await log.close()
        await db.close()
    spec_file = tmp_path / "spec.json"
    spec_file.write_text('{"kind": "reward_model"}')
    r = _cli(home, "jobs", "submit", str(spec_file))
    assert r.returncode == 1 and "base_model" in r.stderr and "Traceback" not in r.stderr

    r = _cli(home, "oversight", "halt", job.run, "--why", WHY, "--as", "op")
    assert r.returncode == 1 and "overseer or admin" in r.stderr, r.stderr
    r = _cli(home, "oversight", "halt", job.run, "--why", WHY, "--as", "ann")
    assert r.returncode == 0, r.stderr
    assert '"action": "halt"' in r.stdout
    r = _cli(home, "oversight", "resume", job.run, "--why", WHY, "--as", "ann")
    assert r.returncode == 1 and "other than the one who halted" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli(home, "oversight", "resume", job.run, "--why", WHY, "--as", "bob")
    assert r.returncode == 0, r.stderr
    r = _cli(home, "jobs", "cancel", job.run)
    assert r.returncode == 0, r.stderr
    r = _cli(home, "jobs", "wait", job.run, "--timeout", "5")
    assert r.returncode == 1 and r.stdout.strip() == "cancelled"
    r = _cli(home, "models", "release", "model_nope", "--as", "ann")
    assert r.returncode == 3 and "no model" in r.stderr
    assert _cli(home, "integrate", "--once").returncode == 0
    r = _cli(home, "verify")
    assert r.returncode == 0, r.stderr


async def test_halt_needs_a_live_job(db: Database, log: Log, keyring: Keyring) -> None:
    from app.events.recording import Actor
    from app.jobs import Conflict
    from app.jobs.errors import Forbidden

    ds = await dataset(log, keyring, 8)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    with pytest.raises(Forbidden):
        await halt(db, log, job.run, WHY, Actor("pseud:" + "d" * 32, "operator"))
    decision = await halt(db, log, job.run, WHY, ADMIN)
    assert (await get_job(db, job.run)).status == "halted"
    [on_log] = await events(log, job.run, "run.halted")
    assert on_log["decision"] == decision.leaf_index and on_log["step"] == 0
    with pytest.raises(Conflict, match="halted"):
        await halt(db, log, job.run, WHY, ADMIN)
