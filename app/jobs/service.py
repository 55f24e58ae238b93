"""Submitting, listing and cancelling training jobs; the job rows a worker reads and updates.

``submit`` refuses before anything runs: a bad spec (400), an unknown or rejected dataset version
(404/409), a planned ε over the dataset's remaining budget (``job.refused`` on the log, 409 with
the numbers). An accepted job is ``job.submitted`` on the log, a ``queued`` row, and an entry in
the queue. The row carries the flags oversight sets (``halted``, ``cancel_requested``) that the
running job polls.

Status: ``queued`` -> ``running`` -> ``completed`` | ``failed`` | ``halted`` | ``cancelled``;
``halted`` -> ``queued`` again on resume. Each claim by a worker starts a segment (``segment``
counts them); ``steps`` and ``epsilon`` are the run's global step and cumulative ε.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ledger.canonical import canonicalize
from ledger.log import Log

from ..core.database import Database
from ..core.keyring import Keyring
from ..events.recording import Actor, record
from .errors import Conflict, JobError, JobNotFound
from .queue import Queue
from .schema import jobs, run_checkpoints

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Job",
    "cancel",
    "add_checkpoint",
    "checkpoints",
    "claim",
    "get_job",
    "list_jobs",
    "new_id",
    "next_queued",
    "release_budget",
    "spec_sha256",
    "stop_requested",
    "submit",
    "update_job",
]

ACTIVE = ("queued", "running")
TERMINAL = ("completed", "failed", "cancelled")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """``prefix_`` + 26 Crockford base32 characters: 48 bits of milliseconds, 80 random bits (a ULID)."""
    n = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return prefix + "_" + "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def spec_sha256(spec: dict[str, Any]) -> str:
    """SHA-256 of the spec's RFC 8785 bytes: recomputable from the spec as the log holds it."""
    return "sha256:" + hashlib.sha256(canonicalize(spec)).hexdigest()


@dataclass(frozen=True)
class Job:
    run: str
    kind: str
    status: str
    spec: dict[str, Any]
    dataset: str
    dataset_version: int
    planned_epsilon: float | None
    epsilon: float | None
    steps: int | None
    halted: bool
    halt_decision: str | None
    cancel_requested: bool
    resume_from: str | None
    model: str | None
    model_root: str | None
    model_prefix: str | None
    error: str | None
    submitted_by: str
    created_at: str | None
    updated_at: str | None
    segment: int = 0  # the times a worker claimed it: 1 once it started, 2 once resumed, ...
    pairs: int | None = None  # the preference pairs its schedule is over (set when it first starts)

    @classmethod
    def of(cls, row: Any) -> Job:
        m = row._mapping
        return cls(**{**{k: m[k] for k in cls.__dataclass_fields__ if k in m},
                      "spec": json.loads(m["spec"]), "halted": bool(m["halted"]),
                      "cancel_requested": bool(m["cancel_requested"]),
                      "created_at": _iso(m["created_at"]), "updated_at": _iso(m["updated_at"])})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


async def get_job(db: Database, run: str) -> Job:
    row = (await db.execute("reading a job", sa.select(jobs).where(jobs.c.run == run))).first()
    if row is None:
        raise JobNotFound(f"no job {run!r}")
    return Job.of(row)


async def list_jobs(db: Database, status: str | None = None, limit: int = 100) -> list[Job]:
    stmt = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.run.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(jobs.c.status == status)
    return [Job.of(r) for r in (await db.execute("listing jobs", stmt)).all()]


async def update_job(db: Database, run: str, *, where_status: tuple[str, ...] | None = None,
                     **values: Any) -> bool:
    """Set columns of one job (only while its status is in ``where_status``); True if a row changed."""
    stmt = sa.update(jobs).where(jobs.c.run == run)
    if where_status is not None:
        stmt = stmt.where(jobs.c.status.in_(where_status))
    result = await db.execute("updating a job", stmt.values(updated_at=_now(), **values))
    return bool(result.rowcount)


async def claim(db: Database, run: str) -> Job | None:
    """Move a queued, unhalted job to running, starting its next segment; None if another worker
    has it or it was stopped."""
    stmt = (sa.update(jobs).where(jobs.c.run == run, jobs.c.status == "queued", jobs.c.halted.is_(False),
                                  jobs.c.cancel_requested.is_(False))
            .values(status="running", segment=jobs.c.segment + 1, updated_at=_now()))
    if not (await db.execute("claiming a job", stmt)).rowcount:
        return None
    return await get_job(db, run)


async def next_queued(db: Database) -> str | None:
    stmt = (sa.select(jobs.c.run).where(jobs.c.status == "queued", jobs.c.halted.is_(False))
            .order_by(jobs.c.updated_at).limit(1))
    return (await db.execute("polling the queue", stmt)).scalar()


async def stop_requested(db: Database, run: str) -> bool:
    """What the running job polls: halted by an overseer, or cancelled."""
    stmt = sa.select(jobs.c.halted, jobs.c.cancel_requested).where(jobs.c.run == run)
    row = (await db.execute("polling a job's flags", stmt)).first()
    return row is None or bool(row.halted) or bool(row.cancel_requested)


async def add_checkpoint(db: Database, run: str, step: int, prefix: str, root: str) -> None:
    await db.execute("recording a checkpoint", sa.insert(run_checkpoints).values(
        run=run, step=step, object_prefix=prefix, root=root, created_at=_now()))


async def checkpoints(db: Database, run: str) -> list[dict[str, Any]]:
    stmt = sa.select(run_checkpoints).where(run_checkpoints.c.run == run).order_by(run_checkpoints.c.id)
    return [{"step": r.step, "object_prefix": r.object_prefix, "root": r.root}
            for r in (await db.execute("listing checkpoints", stmt)).all()]


def _parse_spec(spec: Any) -> Any:
    from trainers.spec import JobSpecError, TrainingSpec

    if not isinstance(spec, dict):
        raise JobError("a job spec must be a JSON object")
    try:
        return TrainingSpec.from_dict(spec)
    except JobSpecError as e:
        raise JobError(f"bad job spec: {e}") from None
    except (TypeError, ValueError, KeyError) as e:
        raise JobError(f"bad job spec: {e}") from None


async def _reserve(db: Database, log: Log, actor: Actor, run: str, dataset: str,
                   planned: float | None) -> None:
    """Hold ``planned`` ε of the dataset's budget for ``run``; over budget: job.refused and 409."""
    if planned is None:
        return
    from ..datasets.budget import reserve
    from ..datasets.errors import BudgetExceeded

    try:
        await reserve(db, dataset, run, planned)
    except BudgetExceeded as e:
        remaining = _number(e, "remaining", "remaining_epsilon")
        await record(log, "job.refused", actor, run=run, reason="privacy budget exceeded",
                     planned_epsilon=planned, remaining_epsilon=remaining)
        raise Conflict(f"refused: {e}", run=run, planned_epsilon=planned,
                       remaining_epsilon=remaining) from None


def _number(e: Exception, *names: str) -> float | None:
    for name in names:
        value = getattr(e, name, None)
        if isinstance(value, int | float):
            return float(value)
    return None


async def submit(db: Database, log: Log, keyring: Keyring, queue: Queue, spec_doc: Any, actor: Actor,
                 *, submitted_by: str = "cli") -> Job:
    """Validate, budget, record and enqueue a training job; returns its row."""
    from ..datasets import DatasetRejected, load_version

    spec = _parse_spec(spec_doc)
    try:
        version = await load_version(db, log, keyring, spec.dataset, spec.dataset_version)
    except DatasetRejected as e:
        raise Conflict(str(e)) from None
    pairs = len(version.records)  # rejected annotators and erased subjects are left out already
    if pairs == 0:
        raise JobError(f"dataset {version.dataset} version {version.version} has no usable records")
    run = new_id("run")
    planned = spec.planned_epsilon(pairs)
    await _reserve(db, log, actor, run, version.dataset, planned)
    doc = spec.to_dict()
    now = _now()
    try:
        await record(log, "job.submitted", actor, run=run, job_kind=spec.kind, spec_sha256=spec_sha256(doc),
                     spec=doc, dataset=version.dataset, dataset_version=version.version,
                     planned_epsilon=planned)
        await db.execute("storing a job", sa.insert(jobs).values(
            run=run, kind=spec.kind, status="queued", spec=json.dumps(doc), dataset=version.dataset,
            dataset_version=version.version, planned_epsilon=planned, halted=False, cancel_requested=False,
            submitted_by=submitted_by, created_at=now, updated_at=now))
    except BaseException:
        await release_budget(db, run, planned)
        raise
    await queue.enqueue(run, run)
    return await get_job(db, run)


async def release_budget(db: Database, run: str, planned: float | None) -> None:
    """Give a run's unspent reservation back (cancelled, or failed before spending anything)."""
    if planned is not None:
        from ..datasets.budget import release

        await release(db, run)


async def cancel(db: Database, log: Log, queue: Queue, run: str, actor: Actor) -> Job:
    """Cancel a queued or halted job now, or ask a running one to stop at its next step."""
    job = await get_job(db, run)
    if job.status in TERMINAL:
        raise Conflict(f"job {run} is already {job.status}")
    if job.status == "running":  # the job polls the flag; aborting its task would orphan the training
        await update_job(db, run, cancel_requested=True)
        return await get_job(db, run)
    if not await update_job(db, run, where_status=("queued", "halted"), status="cancelled",
                            cancel_requested=True):
        return await cancel(db, log, queue, run, actor)  # it started meanwhile
    await queue.abort(run)
    if job.planned_epsilon is not None and job.epsilon:  # halted after spending: that ε stays spent
        from ..datasets.budget import settle

        await settle(db, run, job.epsilon)
    else:
        await release_budget(db, run, job.planned_epsilon)
    await record(log, "job.cancelled", actor, run=run, step=job.steps or 0)
    return await get_job(db, run)
