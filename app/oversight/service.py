"""Human oversight (EU AI Act Art. 14): halt, resume, reject, roll back, approve or veto a release.

Every decision is an ``oversight.decision`` event on the log first (who, in which role, why, on
what), then a row for fast listing. A justification of at least ``MIN_JUSTIFICATION`` characters
is required: Art. 14 asks for the reason, not only the act.

- ``halt`` sets the run's halt flag; the running job stops at its next step, saves a checkpoint and
  records ``run.halted`` naming this decision.
- ``resume`` must come from someone other than the overseer who halted (four eyes, 403 otherwise).
  The run is queued again under the same run id and continues exactly from the halted checkpoint
  (weights, optimizer, schedule, data position, privacy accountant; see ``app.worker.runtime``).
  A DP run is resumed only within its privacy budget: the ε it will have spent at its end (its
  plan) must fit its reservation, raised from the dataset's budget if need be; otherwise, or when
  the reservation is no longer held, 409 with the numbers, no decision recorded, the run halted.
- ``reject_dataset`` / ``reject_annotator`` keep a version, or one pseudonymous annotator's
  records, out of every later job.
- ``rollback`` points a model at one of its run's earlier checkpoints.
- ``approve_release`` / ``veto_release``; :func:`release_model` refuses (409) without an approval
  that no later veto overrides, or while the run is halted. A model has one release state
  (:func:`release_state`): undecided, approved, vetoed or released. A second approval while one
  stands, a second veto while one stands, and any approval or veto of a released model are refused
  (409, naming the standing decision's or the release's log entry); a veto overrides a standing
  approval, and an approval a standing veto; a rollback makes the model undecided again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ledger.log import Log

from ..core.database import Database
from ..core.roles import OVERSIGHT_ROLES
from ..events.recording import Actor, record
from ..jobs.errors import Conflict, Forbidden, JobError, JobNotFound
from ..jobs.queue import Queue
from ..jobs.service import Job, checkpoints, get_job, new_id, update_job
from .schema import decisions, model_releases

__all__ = [
    "ACTIONS",
    "MAX_JUSTIFICATION",
    "MIN_JUSTIFICATION",
    "Decision",
    "ReleaseState",
    "approve_release",
    "get_model",
    "halt",
    "list_decisions",
    "release_model",
    "reject_annotator",
    "reject_dataset",
    "release_state",
    "resume",
    "rollback",
    "veto_release",
]

MIN_JUSTIFICATION = 10
MAX_JUSTIFICATION = 10_000  # a reason, not a document: the form says so before anyone hits it
ACTIONS = ("halt", "resume", "reject_dataset", "reject_annotator", "rollback", "approve_release",
           "veto_release")


@dataclass(frozen=True)
class Decision:
    decision_id: str
    leaf_index: int
    action: str
    target: dict[str, Any]
    justification: str
    actor: str
    actor_role: str
    detail: dict[str, Any]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def of(cls, row: Any) -> Decision:
        target = {k: getattr(row, k) for k in ("run", "model", "dataset", "dataset_version", "annotator")
                  if getattr(row, k) is not None}
        at = row.created_at.replace(tzinfo=UTC) if row.created_at.tzinfo is None else row.created_at
        return cls(row.decision_id, int(row.leaf_index), row.action, target, row.justification, row.actor,
                   row.actor_role, json.loads(row.detail or "{}"),
                   at.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def _check(actor: Actor, justification: str) -> str:
    if actor.role not in OVERSIGHT_ROLES:
        raise Forbidden(f"oversight decisions need the overseer or admin role, not {actor.role!r}")
    text = (justification or "").strip()
    if len(text) < MIN_JUSTIFICATION:
        raise JobError(f"a decision needs a written justification of at least {MIN_JUSTIFICATION} "
                       "characters (Art. 14: who decided, and why)")
    if len(text) > MAX_JUSTIFICATION:
        raise JobError(f"the justification is {len(text):,} characters long; a justification may have at "
                       f"most {MAX_JUSTIFICATION:,} characters")
    return text


async def _decide(db: Database, log: Log, action: str, actor: Actor, justification: str,
                  target: dict[str, Any], **detail: Any) -> Decision:
    """Record the decision on the log, then in the register."""
    text = _check(actor, justification)
    decision_id = new_id("dec")
    entry = await record(log, "oversight.decision", actor, action=action, target=target,
                         justification=text, decision_id=decision_id, **detail)
    await db.execute("registering a decision", sa.insert(decisions).values(
        decision_id=decision_id, leaf_index=entry.leaf_index, action=action, justification=text,
        actor=actor.pseudonym, actor_role=actor.role, detail=json.dumps(detail),
        created_at=datetime.now(UTC), **target))
    return await get_decision(db, decision_id)


async def get_decision(db: Database, decision_id: str) -> Decision:
    row = (await db.execute("reading a decision",
                            sa.select(decisions).where(decisions.c.decision_id == decision_id))).first()
    if row is None:
        raise JobNotFound(f"no decision {decision_id!r}")
    return Decision.of(row)


async def list_decisions(db: Database, *, run: str | None = None, model: str | None = None,
                         action: str | None = None, limit: int = 200) -> list[Decision]:
    stmt = sa.select(decisions).order_by(decisions.c.leaf_index.desc()).limit(limit)
    for column, value in (("run", run), ("model", model), ("action", action)):
        if value is not None:
            stmt = stmt.where(decisions.c[column] == value)
    return [Decision.of(r) for r in (await db.execute("listing decisions", stmt)).all()]


async def halt(db: Database, log: Log, run: str, justification: str, actor: Actor) -> Decision:
    """Stop a queued or running job at its next step."""
    _check(actor, justification)
    job = await get_job(db, run)
    if job.status not in ("queued", "running") or job.halted:
        raise Conflict(f"job {run} is {'halted' if job.halted else job.status}; only a queued or running "
                       "job can be halted")
    decision = await _decide(db, log, "halt", actor, justification, {"run": run})
    await update_job(db, run, halted=True, halt_decision=decision.decision_id)
    if await update_job(db, run, where_status=("queued",), status="halted"):
        await record(log, "run.halted", Actor("worker", "service"), run=run, step=0,
                     decision=decision.leaf_index)  # it never started: nothing to checkpoint
    return decision


async def resume(db: Database, log: Log, queue: Queue, run: str, justification: str,
                 actor: Actor) -> Decision:
    """Queue a halted run again; the overseer who halted it may not be the one to resume it."""
    _check(actor, justification)
    job = await get_job(db, run)
    if not job.halted:
        raise Conflict(f"job {run} is {job.status}, not halted")
    if job.status != "halted":
        raise Conflict(f"job {run} is still stopping after the halt; try again in a moment")
    halted_by = await get_decision(db, job.halt_decision) if job.halt_decision else None
    if halted_by is not None and halted_by.actor == actor.pseudonym:
        raise Forbidden("a run must be resumed by an overseer other than the one who halted it "
                        f"(decision {halted_by.decision_id}); ask a second overseer")
    await _hold_budget(db, job)
    decision = await _decide(db, log, "resume", actor, justification, {"run": run},
                             halted_by=job.halt_decision)
    await update_job(db, run, where_status=("halted",), status="queued", halted=False)
    await queue.enqueue(run, f"{run}.{decision.decision_id}")
    return decision


async def _hold_budget(db: Database, job: Job) -> None:
    """Make sure a DP run's reservation covers the ε it will have spent at its end if resumed (its
    plan over the pairs its schedule is over, as at submission), taking any difference from the
    dataset's budget; 409 with the numbers when it does not fit or the reservation is gone."""
    if job.planned_epsilon is None:
        return  # not a DP run: nothing is reserved
    from trainers.spec import TrainingSpec

    from ..datasets.budget import get_reservation, reserve_more
    from ..datasets.errors import BudgetError, BudgetExceeded, UnknownReservation

    try:
        held = await get_reservation(db, job.run)
    except UnknownReservation:
        raise Conflict(f"run {job.run} has no privacy budget reservation, so it cannot be resumed",
                       run=job.run) from None
    if held.state != "reserved":
        raise Conflict(f"run {job.run} cannot be resumed: its privacy budget reservation is {held.state}, "
                       "no longer reserved", run=job.run, reservation=held.state)
    spec = TrainingSpec.from_dict(job.spec)
    planned = spec.planned_epsilon(job.pairs) if job.pairs else job.planned_epsilon
    assert planned is not None
    try:
        await reserve_more(db, job.run, planned)
    except BudgetExceeded as e:
        raise Conflict(
            f"run {job.run} cannot be resumed: it will have spent epsilon {planned:g} at its end, its "
            f"reservation holds {held.planned:g} and the privacy budget of {e.dataset} has {e.remaining:g} "
            f"left (total {e.total:g}, spent {e.spent:g}, reserved {e.reserved:g})",
            run=job.run, planned_epsilon=planned, reserved_epsilon=held.planned,
            remaining_epsilon=e.remaining) from None
    except BudgetError as e:
        raise Conflict(f"run {job.run} cannot be resumed: {e}", run=job.run) from None


async def reject_dataset(db: Database, log: Log, dataset: str, version: int, justification: str,
                         actor: Actor) -> Decision:
    from ..datasets import reject_version

    _check(actor, justification)
    await reject_version(db, dataset, version)
    return await _decide(db, log, "reject_dataset", actor, justification,
                         {"dataset": dataset, "dataset_version": version})


async def reject_annotator(db: Database, log: Log, annotator: str, justification: str,
                           actor: Actor) -> Decision:
    from ..datasets import reject_annotator as reject

    _check(actor, justification)
    if not annotator.startswith("pseud:"):
        raise JobError("name the annotator by pseudonym (pseud:<hex>), never by identity")
    await reject(db, annotator)
    return await _decide(db, log, "reject_annotator", actor, justification, {"annotator": annotator})


async def get_model(db: Database, model_or_run: str) -> Job:
    """The completed job behind a model id (or a run id)."""
    from ..jobs.schema import jobs

    column = jobs.c.run if model_or_run.startswith("run_") else jobs.c.model
    row = (await db.execute("reading a model", sa.select(jobs.c.run).where(column == model_or_run))).first()
    if row is None:
        raise JobNotFound(f"no model {model_or_run!r}")
    job = await get_job(db, row.run)
    if job.model is None:
        raise Conflict(f"run {job.run} is {job.status} and has no model yet")
    return job


async def rollback(db: Database, log: Log, model_or_run: str, to_checkpoint: str, justification: str,
                   actor: Actor) -> Decision:
    """Point the model at an earlier checkpoint of its run (by step number or root)."""
    _check(actor, justification)
    job = await get_model(db, model_or_run)
    chosen = next((c for c in await checkpoints(db, job.run)
                   if to_checkpoint in (str(c["step"]), c["root"], c["object_prefix"])), None)
    if chosen is None:
        raise JobNotFound(f"run {job.run} has no checkpoint {to_checkpoint!r}")
    decision = await _decide(db, log, "rollback", actor, justification, {"model": job.model, "run": job.run},
                             to_checkpoint=chosen["root"], step=chosen["step"])
    await update_job(db, job.run, model_root=chosen["root"], model_prefix=chosen["object_prefix"])
    return decision


@dataclass(frozen=True)
class ReleaseState:
    """Where a model stands: the latest approve/veto/rollback on it, and its release if any."""

    model: str
    run: str
    decision: Decision | None  # the latest approve_release, veto_release or rollback
    release: dict[str, Any] | None  # approval, root, leaf_index, released_by, released_at

    @property
    def state(self) -> str:
        """``released``, ``approved`` (awaiting release), ``vetoed`` or ``undecided``."""
        if self.release is not None:
            return "released"
        if self.decision is not None and self.decision.action == "approve_release":
            return "approved"
        if self.decision is not None and self.decision.action == "veto_release":
            return "vetoed"
        return "undecided"


_RELEASE_ACTIONS = ("approve_release", "veto_release", "rollback")
_deciding = asyncio.Lock()  # one release decision at a time in this process: check, then record


async def release_state(db: Database, model_or_run: str) -> ReleaseState:
    job = await get_model(db, model_or_run)
    assert job.model is not None
    row = (await db.execute("reading releases", sa.select(model_releases).where(
        model_releases.c.model == job.model))).first()
    release = None if row is None else {
        "approval": row.approval, "root": row.root, "leaf_index": int(row.leaf_index),
        "released_by": row.released_by, "released_at": row.released_at}
    latest = next(iter(d for d in await list_decisions(db, model=job.model) if d.action in _RELEASE_ACTIONS),
                  None)
    return ReleaseState(job.model, job.run, latest, release)


def _refuse_when_settled(state: ReleaseState, action: str) -> None:
    if state.release is not None:
        raise Conflict(f"model {state.model} is already released (log entry {state.release['leaf_index']}); "
                       f"{action} no longer applies", model=state.model,
                       leaf_index=state.release["leaf_index"])
    d = state.decision
    if d is not None and d.action == action:
        done = "approved" if action == "approve_release" else "vetoed"
        raise Conflict(f"model {state.model} is already {done} by {d.actor} (decision {d.decision_id}, "
                       f"log entry {d.leaf_index})", model=state.model, decision=d.decision_id,
                       leaf_index=d.leaf_index)


async def approve_release(db: Database, log: Log, model: str, justification: str, actor: Actor) -> Decision:
    """Approve a model for release; refused (409) while an approval stands or once it is released."""
    _check(actor, justification)
    async with _deciding:
        job = await get_model(db, model)
        _refuse_when_settled(await release_state(db, job.run), "approve_release")
        return await _decide(db, log, "approve_release", actor, justification,
                             {"model": job.model, "run": job.run}, root=job.model_root)


async def veto_release(db: Database, log: Log, model: str, justification: str, actor: Actor) -> Decision:
    """Veto a model's release; refused (409) while a veto stands or once it is released."""
    _check(actor, justification)
    async with _deciding:
        job = await get_model(db, model)
        _refuse_when_settled(await release_state(db, job.run), "veto_release")
        return await _decide(db, log, "veto_release", actor, justification,
                             {"model": job.model, "run": job.run})


async def release_model(db: Database, log: Log, model: str, actor: Actor,
                        justification: str | None = None) -> dict[str, Any]:
    """Mark a model released: only with an approval on the log that no later veto overrides.

    A ``justification`` (the portal asks for one) is checked like a decision's and recorded on the
    ``model.released`` event."""
    if actor.role not in OVERSIGHT_ROLES:
        raise Forbidden(f"releasing a model needs the overseer or admin role, not {actor.role!r}")
    why = {} if justification is None else {"justification": _check(actor, justification)}
    async with _deciding:
        return await _release(db, log, model, actor, why)


async def _release(db: Database, log: Log, model: str, actor: Actor, why: dict[str, str]) -> dict[str, Any]:
    job = await get_model(db, model)
    assert job.model is not None and job.model_root is not None
    state = await release_state(db, job.run)
    if state.release is not None:
        raise Conflict(f"model {job.model} is already released (entry {state.release['leaf_index']})")
    if job.halted or job.status == "halted":
        raise Conflict(f"model {job.model} cannot be released: its run {job.run} is halted")
    latest = state.decision
    if latest is None or latest.action != "approve_release":
        why_not = ("no approve_release decision exists" if latest is None else
                   f"the latest decision on it is {latest.action} ({latest.decision_id}); approve it again")
        raise Conflict(f"model {job.model} cannot be released: {why_not}", model=job.model)
    entry = await record(log, "model.released", actor, model=job.model, run=job.run,
                         approval=latest.decision_id, root=job.model_root, **why)
    try:
        await db.execute("recording a release", sa.insert(model_releases).values(
            model=job.model, run=job.run, approval=latest.decision_id, root=job.model_root,
            leaf_index=entry.leaf_index, released_by=actor.pseudonym, released_at=datetime.now(UTC)))
    except IntegrityError:
        raise Conflict(f"model {job.model} is already released") from None
    return {"model": job.model, "run": job.run, "approval": latest.decision_id, "root": job.model_root,
            "leaf_index": entry.leaf_index}
