"""A model's release state over the API: one standing approval at a time, no decision on a released
model, a release only from a standing approval. Training is real (tiny model)."""

from __future__ import annotations

from pathlib import Path

from app.core.keyring import Keyring
from app.jobs import get_job, submit
from app.jobs.queue import LocalQueue
from app.oversight.service import release_state
from app.worker.local import run_local_worker
from ledger.log import Log
from tests.support.databases import database_of
from tests.support.jobs import ADMIN, dataset, events, is_problem, serving, spec, token, worker_ctx

WHY = "evaluation passed on the held-out probe set"
NO = "bias probe failed, see T-12"


async def test_a_second_approval_or_veto_is_refused_and_a_released_model_takes_no_decision(
        log: Log, tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    db = database_of(log)
    ds = await dataset(log, keyring, 16)
    job = await submit(db, log, keyring, LocalQueue(), spec(ds), ADMIN)
    await run_local_worker(worker_ctx(log, keyring, tmp_path), burst=True)
    model = (await get_job(db, job.run)).model
    ann = await token(log, keyring, "ann", "overseer")
    bob = await token(log, keyring, "bob", "overseer")
    async with serving(log, keyring, LocalQueue()) as client:
        async def post(path: str, who: dict[str, str], **body: object) -> object:
            return await client.post(f"/api/v1{path}", json=body, headers=who)

        assert (await release_state(db, model)).state == "undecided"
        veto = await post(f"/oversight/models/{model}/veto", ann, justification=NO)
        assert veto.status_code == 201, veto.text
        again = await post(f"/oversight/models/{model}/veto", bob, justification=NO)
        is_problem(again, 409, f"log entry {veto.json()['leaf_index']}")
        assert (await release_state(db, model)).state == "vetoed"
        approve = await post(f"/oversight/models/{model}/approve", ann, justification=WHY)
        assert approve.status_code == 201, approve.text
        state = await release_state(db, model)
        assert state.state == "approved"
        assert state.decision and state.decision.actor == approve.json()["actor"]
        second = await post(f"/oversight/models/{model}/approve", bob, justification=WHY)
        is_problem(second, 409, f"log entry {approve.json()['leaf_index']}")
        assert "already approved" in second.json()["detail"]
        released = await post(f"/models/{model}/release", bob)
        assert released.status_code == 201, released.text
        for action in ("approve", "veto"):
            r = await post(f"/oversight/models/{model}/{action}", bob, justification=WHY)
            is_problem(r, 409, f"log entry {released.json()['leaf_index']}")
        assert (await release_state(db, model)).state == "released"
    decisions = [e for e in await events(log) if e["kind"] == "oversight.decision"]
    assert [e["action"] for e in decisions] == ["veto_release", "approve_release"]
