"""The training job function: what a worker runs for one queued run.

``run_training(ctx, run)`` is run by ARQ workers (``rlhf-audit worker``, :mod:`app.worker.settings`)
and by the local worker ``rlhf-audit serve`` starts when no Redis is configured
(:func:`app.worker.local.run_local_worker`). ``ctx`` holds the home's ``db``, ``log``, ``keyring``
and ``objects`` (opened by :func:`app.worker.settings.startup`, or handed in). It:

1. claims the queued job row (one conditional UPDATE: a run never trains twice);
2. loads the dataset version (rejected annotators and erased subjects already left out);
3. runs :func:`trainers.training.train` in a thread, with an :class:`AuditCallback` appending to
   the log through a :class:`LogSink`, a :class:`CheckpointStore` hook that uploads each
   checkpoint as it is saved (``runs/<run>/checkpoint-<step>/``, the prefix recorded in
   ``run.checkpoint``), and a :class:`JobControl` that stops the run at its next step once an
   overseer halts it or someone cancels it;
4. on completion stores the final model under ``runs/<run>/final/`` (then ``run.completed``, with
   its files, root and that ``object_prefix``, is recorded by the callback), settles the privacy
   budget with the ε actually spent and marks the row completed; on a halt marks it halted
   (``run.halted`` is the callback's, naming the decision); on a cancel records ``job.cancelled``;
5. on any exception records ``run.failed`` (unless ``train()`` already did), gives back or
   settles the budget and marks the row failed, so the log stays consistent.

Resume, exactly: a resumed run (a second overseer's decision) is the next segment of the same
run (``jobs.segment``, counted by :func:`claim`). The worker downloads the halted checkpoint and
calls ``train()`` with the run's original spec and ``resume_from``: the weights, optimizer, LR
schedule, RNG, data position and (under DP) the privacy accountant continue from where the halt
left them, so steps on the events, checkpoint names and the row's ``steps`` are the run's global
steps, and ε is the accountant's cumulative ε. ``run.started`` of the segment names its number
and what it resumed from (step, checkpoint root, the halt and resume decisions); its
``base_model`` stays the original model. The budget is settled once, at the run's end, with that ε.

The callback is ``trainers``' (which imports nothing from ``app``); its events get the envelope
:func:`envelope` builds with :mod:`app.events.recording`, as the ``worker`` actor.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from ledger.home import LogHome
from ledger.log import Log
from trainers.sinks import LogSink
from trainers.spec import TrainingSpec
from trainers.training import PreferencePair, TrainingResult, train

from ..core.database import Database
from ..core.keyring import Keyring
from ..core.settings import Settings
from ..datasets import DatasetVersion, load_version
from ..datasets.budget import settle
from ..events.recording import Actor, event, record
from ..jobs.service import Job, add_checkpoint, checkpoints, claim, get_job, release_budget, update_job
from ..objects import ObjectStore
from ..oversight.service import get_decision, list_decisions

if TYPE_CHECKING:
    from trainers.callback import AuditCallback

__all__ = ["WORKER", "CheckpointStore", "JobControl", "WorkerContext", "envelope", "run_training"]

CHECK_INTERVAL = 0.2  # seconds between reads of the job row's flags
WORKER = Actor("worker", "service")
T = TypeVar("T")
_log = logging.getLogger("app.worker")


class WorkerContext(TypedDict, total=False):
    """What a worker hands the job function (ARQ adds keys of its own)."""

    db: Database
    log: Log
    keyring: Keyring
    objects: ObjectStore
    workdir: str
    home: LogHome  # with settings: what ``app.worker.settings.startup`` opens
    settings: Settings


@dataclass(frozen=True)
class _Home:
    """The worker context's parts, typed."""

    db: Database
    log: Log
    keyring: Keyring
    objects: ObjectStore

    @classmethod
    def of(cls, ctx: WorkerContext) -> _Home:
        return cls(ctx["db"], ctx["log"], ctx["keyring"], ctx["objects"])


def envelope(kind: str, fields: Mapping[str, Any], /) -> dict[str, Any]:
    """The callback's events in the app's envelope, as the ``worker`` actor."""
    return event(kind, WORKER, **fields)


class JobControl:
    """RunControl over the job row: polled every step, reads the database at most every 0.2 s.

    ``halt_decision`` is the leaf index of the overseer's halt decision once one stopped the run
    (``train()`` puts it in ``run.halted``); a cancel stops the run the same way without one.
    """

    def __init__(self, db: Database, run: str, loop: asyncio.AbstractEventLoop,
                 interval: float = CHECK_INTERVAL) -> None:
        self.db, self.run, self.loop, self.interval = db, run, loop, interval
        self._last = 0.0
        self._stop = False
        self.polls = 0
        self.halt_decision: int | None = None

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def should_halt(self) -> bool:
        self.polls += 1
        now = time.monotonic()
        if not self._stop and now - self._last >= self.interval:
            self._last = now
            job = self._call(get_job(self.db, self.run))
            self._stop = job.halted or job.cancel_requested
            if job.halted and job.halt_decision:
                self.halt_decision = self._call(get_decision(self.db, job.halt_decision)).leaf_index
        return self._stop


class CheckpointStore:
    """The callback's checkpoint hook: store each checkpoint as it is saved, return its prefix.

    Runs in the training thread; the job row's checkpoint list is written on the worker's loop.
    A checkpoint's directory is named by the run's global step, which the prefix and row keep.
    """

    def __init__(self, db: Database, objects: ObjectStore, run: str, loop: asyncio.AbstractEventLoop) -> None:
        self.db, self.objects, self.run, self.loop = db, objects, run, loop
        self.saved: list[dict[str, Any]] = []

    def __call__(self, path: Path, files: dict[str, str], root: str) -> str:
        suffix = path.name.removeprefix("checkpoint-")
        step = int(suffix) if suffix.isdigit() else 0
        prefix = f"runs/{self.run}/checkpoint-{step}"
        self.objects.put_dir(prefix, path)
        asyncio.run_coroutine_threadsafe(add_checkpoint(self.db, self.run, step, prefix, root),
                                         self.loop).result(timeout=60)
        self.saved.append({"step": step, "object_prefix": prefix, "root": root, "files": files})
        return prefix


async def _pairs(home: _Home, spec: TrainingSpec) -> tuple[DatasetVersion, list[PreferencePair]]:
    """The version's records (rejected annotators and erased subjects already left out)."""
    version = await load_version(home.db, home.log, home.keyring, spec.dataset, spec.dataset_version)
    pairs = [PreferencePair(prompt=r.prompt, chosen=r.chosen, rejected=r.rejected) for r in version.records]
    return version, pairs


async def _resume_point(home: _Home, job: Job, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """The halted checkpoint, downloaded, and what ``run.started`` says of it beyond its step and
    root (which ``train()`` reads from the checkpoint): the leaf indices of the decision that
    resumed the run (``decision``) and of the halt it lifted (``halted_by``)."""
    assert job.resume_from is not None
    start = workdir / "resume"
    await asyncio.to_thread(home.objects.get_dir, job.resume_from, start)
    halted_by = (await get_decision(home.db, job.halt_decision)).leaf_index if job.halt_decision else None
    resumed_by = await list_decisions(home.db, run=job.run, action="resume", limit=1)
    return start, {"decision": resumed_by[0].leaf_index if resumed_by else None, "halted_by": halted_by}


class _Attempt:
    """What one job run got to, for the failure path."""

    audit: AuditCallback | None = None
    control: JobControl | None = None


async def run_training(ctx: WorkerContext, run: str) -> str:
    """The job function: train ``run`` under audit and oversight; returns its final status."""
    home = _Home.of(ctx)
    job = await claim(home.db, run)
    if job is None:
        return "skipped"
    workdir = Path(tempfile.mkdtemp(prefix=f"{run}-", dir=ctx.get("workdir")))
    attempt = _Attempt()
    try:
        return await _train(home, job, workdir, attempt)
    except Exception as e:  # noqa: BLE001 (any failure is recorded, never lost)
        return await _failed(home, job, attempt, e)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _audit_callback(objects: ObjectStore, final_prefix: str, final_dir: Path, sink: LogSink,
                    **kwargs: Any) -> AuditCallback:
    """The run's AuditCallback, storing the final model (``train()`` writes it to ``final_dir``)
    before ``run.completed`` is recorded, which then names where (``object_prefix``): the artefact
    audit need not guess, and the log never names a model the store does not hold yet."""
    from trainers.callback import AuditCallback  # imports transformers: only where a job runs

    class WorkerAudit(AuditCallback):
        def record_completed(self, **fields: Any) -> None:
            objects.put_dir(final_prefix, final_dir)
            super().record_completed(**fields)

        def _emit(self, kind: str, **fields: Any) -> None:
            if kind == "run.completed":
                fields["object_prefix"] = final_prefix
            super()._emit(kind, **fields)

    return WorkerAudit(sink, envelope=envelope, **kwargs)


async def _train(home: _Home, job: Job, workdir: Path, attempt: _Attempt) -> str:
    loop = asyncio.get_running_loop()
    spec = TrainingSpec.from_dict(job.spec)
    version, pairs = await _pairs(home, spec)
    if job.pairs is None:  # the first segment fixes the schedule a resume is checked against
        await update_job(home.db, job.run, pairs=len(pairs))
    resume_from, resumed = await _resume_point(home, job, workdir) if job.resume_from else (None, None)
    sink = LogSink(home.log, loop)
    attempt.control = JobControl(home.db, job.run, loop)
    attempt.audit = _audit_callback(
        home.objects, f"runs/{job.run}/final", workdir / "out" / "final",
        sink, run=job.run, spec=spec, dataset=version.dataset, dataset_version=version.version,
        dataset_root=version.root, segment=max(job.segment, 1), resumed_from=resumed,
        checkpoint_hook=CheckpointStore(home.db, home.objects, job.run, loop))
    try:
        result = await asyncio.to_thread(train, spec, pairs, workdir / "out", audit=attempt.audit,
                                         control=attempt.control, resume_from=resume_from)
    finally:
        await asyncio.to_thread(sink.close)
    if result.status == "halted":
        return await _stopped(home, job, result)
    return await _completed(home, job, result)


async def _completed(home: _Home, job: Job, result: TrainingResult) -> str:
    """``run.completed`` is the callback's, the final model already stored (:func:`_audit_callback`);
    settle ε, update the row."""
    model = "model_" + job.run.removeprefix("run_")
    prefix = f"runs/{job.run}/final"
    await _settle(home, job, result.epsilon)
    await update_job(home.db, job.run, status="completed", model=model, model_root=result.root,
                     model_prefix=prefix, steps=result.steps, epsilon=result.epsilon)
    return "completed"


async def _stopped(home: _Home, job: Job, result: TrainingResult) -> str:
    """Halted by an overseer (``run.halted``, the callback's) or cancelled (``job.cancelled``)."""
    now = await get_job(home.db, job.run)
    steps, epsilon = result.steps, result.epsilon  # global step, cumulative ε
    saved = await checkpoints(home.db, job.run)
    if now.cancel_requested:
        await _close_budget(home, job, epsilon)
        await record(home.log, "job.cancelled", WORKER, run=job.run, step=steps)
        await update_job(home.db, job.run, status="cancelled", steps=steps, epsilon=epsilon)
        return "cancelled"
    await update_job(home.db, job.run, status="halted", steps=steps, epsilon=epsilon,
                     resume_from=saved[-1]["object_prefix"] if saved else job.resume_from)
    return "halted"


async def _settle(home: _Home, job: Job, epsilon: float | None) -> None:
    if job.planned_epsilon is not None:
        await settle(home.db, job.run, epsilon or 0.0)


async def _close_budget(home: _Home, job: Job, epsilon: float | None) -> None:
    """Settle what was spent; a run that spent nothing gives its reservation back."""
    if epsilon:
        await _settle(home, job, epsilon)
    else:
        await release_budget(home.db, job.run, job.planned_epsilon)


async def _failed(home: _Home, job: Job, attempt: _Attempt, error: Exception) -> str:
    """``run.failed`` on the log (unless ``train()`` recorded it already), the row failed, ε settled."""
    _log.warning("run %s failed: %s: %s", job.run, type(error).__name__, error)
    message = f"{type(error).__name__}: {error}"[:2000]
    audit = attempt.audit
    step = max(job.steps or 0, audit.step if audit is not None else 0)  # global steps
    if audit is None or audit.ended != "failed":
        await record(home.log, "run.failed", WORKER, run=job.run, step=step, error=message)
    # the accountant's ε is cumulative (a resumed segment starts from the halted one's)
    spent = audit.epsilon if audit is not None and audit.epsilon is not None else job.epsilon
    await _close_budget(home, job, spent)
    await update_job(home.db, job.run, status="failed", error=message, steps=step, epsilon=spent)
    return "failed"
