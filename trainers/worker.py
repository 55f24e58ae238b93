"""The training job function and the ARQ worker settings that run it.

``run_training(ctx, run)`` is the one job function, run by ARQ workers (``rlhf-audit worker``,
:class:`WorkerSettings`) and by the local worker ``rlhf-audit serve`` starts when no Redis is
configured (:func:`app.jobs.local.run_local_worker`). ``ctx`` holds ``log``, ``keyring`` and
``objects`` (opened from the home by :func:`startup`, or handed in). It:

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

Resume, exactly: a resumed run (a second overseer's decision) trains again under the same run id,
with the halted checkpoint's weights as its base model (``run.started`` #2 shows that root) for
the steps that remain (``max_steps`` minus the steps done). The optimizer state, learning-rate
schedule and data order start afresh; step numbers on the segment's events restart at 1 while the
object-store prefixes keep counting from the run's start. A DP run's ε is the sum of its
segments' ε (basic composition) when the budget is settled.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledger.log import Log

__all__ = ["CheckpointStore", "JobControl", "WorkerSettings", "run_training"]

CHECK_INTERVAL = 0.2  # seconds between reads of the job row's flags


def _worker_actor() -> Any:
    from app.events.recording import Actor

    return Actor("worker", "service")  # as trainers.callback.WORKER


class JobControl:
    """RunControl over the job row: polled every step, reads the database at most every 0.2 s.

    ``halt_decision`` is the leaf index of the overseer's halt decision once one stopped the run
    (``train()`` puts it in ``run.halted``); a cancel stops the run the same way without one.
    """

    def __init__(self, log: Log, run: str, loop: asyncio.AbstractEventLoop,
                 interval: float = CHECK_INTERVAL) -> None:
        self.log, self.run, self.loop, self.interval = log, run, loop, interval
        self._last = 0.0
        self._stop = False
        self.polls = 0
        self.halt_decision: int | None = None

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def should_halt(self) -> bool:
        from app.jobs.service import get_job
        from app.oversight.service import get_decision

        self.polls += 1
        now = time.monotonic()
        if not self._stop and now - self._last >= self.interval:
            self._last = now
            job = self._call(get_job(self.log, self.run))
            self._stop = job.halted or job.cancel_requested
            if job.halted and job.halt_decision:
                self.halt_decision = self._call(get_decision(self.log, job.halt_decision)).leaf_index
        return self._stop


class CheckpointStore:
    """The callback's checkpoint hook: store each checkpoint as it is saved, return its prefix.

    Runs in the training thread; the job row's checkpoint list is written on the worker's loop.
    Steps in the prefix count from the run's start, across resumed segments.
    """

    def __init__(self, log: Log, objects: Any, run: str, loop: asyncio.AbstractEventLoop,
                 offset: int = 0) -> None:
        self.log, self.objects, self.run, self.loop, self.offset = log, objects, run, loop, offset
        self.saved: list[dict[str, Any]] = []

    def __call__(self, path: Path, files: dict[str, str], root: str) -> str:
        from app.jobs.service import add_checkpoint

        suffix = path.name.removeprefix("checkpoint-")
        step = self.offset + (int(suffix) if suffix.isdigit() else 0)
        prefix = f"runs/{self.run}/checkpoint-{step}"
        self.objects.put_dir(prefix, path)
        asyncio.run_coroutine_threadsafe(add_checkpoint(self.log, self.run, step, prefix, root),
                                         self.loop).result(timeout=60)
        self.saved.append({"step": step, "object_prefix": prefix, "root": root, "files": files})
        return prefix


async def _pairs(log: Log, keyring: Any, spec: Any) -> tuple[Any, list[Any]]:
    """The version's records (rejected annotators and erased subjects already left out)."""
    from app.datasets import load_version
    from trainers.training import PreferencePair

    version = await load_version(log, keyring, spec.dataset, spec.dataset_version)
    pairs = [PreferencePair(prompt=r.prompt, chosen=r.chosen, rejected=r.rejected) for r in version.records]
    return version, pairs


async def _resumed_spec(objects: Any, job: Any, spec: Any, n_pairs: int, workdir: Path) -> Any:
    """The spec of a resumed segment: the halted checkpoint's weights, the steps that remain."""
    from trainers.spec import dp_schedule

    start = workdir / "resume"
    await asyncio.to_thread(objects.get_dir, job.resume_from, start)
    if spec.dp is None and spec.max_steps:  # the Trainer lets max_steps override epochs
        planned = spec.max_steps
    else:  # the DP loop runs the Poisson schedule, capped by max_steps
        _, planned = dp_schedule(n_pairs, spec.batch_size, spec.epochs, spec.max_steps)
    remaining = max(1, planned - (job.steps or 0))
    return replace(spec, base_model=str(start), max_steps=remaining)


class _Attempt:
    """What one job run got to, for the failure path."""

    audit: Any = None
    control: JobControl | None = None


async def run_training(ctx: dict[str, Any], run: str) -> str:
    """The job function: train ``run`` under audit and oversight; returns its final status."""
    from app.jobs.service import claim

    log: Log = ctx["log"]
    job = await claim(log, run)
    if job is None:
        return "skipped"
    workdir = Path(tempfile.mkdtemp(prefix=f"{run}-", dir=ctx.get("workdir")))
    attempt = _Attempt()
    try:
        return await _train(ctx, job, workdir, attempt)
    except Exception as e:  # noqa: BLE001 (any failure is recorded, never lost)
        return await _failed(ctx, job, attempt, e)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _audit_callback(objects: Any, final_prefix: str, final_dir: Path, *args: Any, **kwargs: Any) -> Any:
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

    return WorkerAudit(*args, **kwargs)


async def _train(ctx: dict[str, Any], job: Any, workdir: Path, attempt: _Attempt) -> str:
    from trainers.sinks import LogSink
    from trainers.spec import TrainingSpec
    from trainers.training import train

    log: Log = ctx["log"]
    loop = asyncio.get_running_loop()
    spec = TrainingSpec.from_dict(job.spec)
    version, pairs = await _pairs(log, ctx["keyring"], spec)
    if job.resume_from:
        spec = await _resumed_spec(ctx["objects"], job, spec, len(pairs), workdir)
    sink = LogSink(log, loop)
    attempt.control = JobControl(log, job.run, loop)
    attempt.audit = _audit_callback(
        ctx["objects"], f"runs/{job.run}/final", workdir / "out" / "final",
        sink, run=job.run, spec=spec, dataset=version.dataset, dataset_version=version.version,
        dataset_root=version.root,
        checkpoint_hook=CheckpointStore(log, ctx["objects"], job.run, loop, offset=job.steps or 0))
    try:
        result = await asyncio.to_thread(train, spec, pairs, workdir / "out", audit=attempt.audit,
                                         control=attempt.control)
    finally:
        await asyncio.to_thread(sink.close)
    if result.status == "halted":
        return await _stopped(ctx, job, result)
    return await _completed(ctx, job, result)


async def _completed(ctx: dict[str, Any], job: Any, result: Any) -> str:
    """``run.completed`` is the callback's, the final model already stored (:func:`_audit_callback`);
    settle ε, update the row."""
    from app.jobs.service import update_job

    log: Log = ctx["log"]
    model = "model_" + job.run.removeprefix("run_")
    prefix = f"runs/{job.run}/final"
    epsilon = _total_epsilon(job, result.epsilon)
    await _settle(log, job, epsilon)
    await update_job(log, job.run, status="completed", model=model, model_root=result.root,
                     model_prefix=prefix, steps=(job.steps or 0) + result.steps, epsilon=epsilon)
    return "completed"


async def _stopped(ctx: dict[str, Any], job: Any, result: Any) -> str:
    """Halted by an overseer (``run.halted``, the callback's) or cancelled (``job.cancelled``)."""
    from app.events.recording import record
    from app.jobs.service import checkpoints, get_job, update_job

    log: Log = ctx["log"]
    now = await get_job(log, job.run)
    steps = (job.steps or 0) + result.steps
    epsilon = _total_epsilon(job, result.epsilon)
    saved = await checkpoints(log, job.run)
    if now.cancel_requested:
        await _close_budget(log, job, epsilon)
        await record(log, "job.cancelled", _worker_actor(), run=job.run, step=steps)
        await update_job(log, job.run, status="cancelled", steps=steps, epsilon=epsilon)
        return "cancelled"
    await update_job(log, job.run, status="halted", steps=steps, epsilon=epsilon,
                     resume_from=saved[-1]["object_prefix"] if saved else job.resume_from)
    return "halted"


def _total_epsilon(job: Any, spent: float | None) -> float | None:
    if spent is None:
        return job.epsilon
    return (job.epsilon or 0.0) + float(spent)


async def _settle(log: Log, job: Any, epsilon: float | None) -> None:
    if job.planned_epsilon is None:
        return
    from app.datasets.budget import settle

    await settle(log, job.run, epsilon or 0.0)


async def _close_budget(log: Log, job: Any, epsilon: float | None) -> None:
    """Settle what was spent; a run that spent nothing gives its reservation back."""
    from app.jobs.service import release_budget

    if epsilon:
        await _settle(log, job, epsilon)
    else:
        await release_budget(log, job.run, job.planned_epsilon)


async def _failed(ctx: dict[str, Any], job: Any, attempt: _Attempt, error: Exception) -> str:
    """``run.failed`` on the log (unless ``train()`` recorded it already), the row failed, ε settled."""
    import logging

    from app.events.recording import record
    from app.jobs.service import update_job

    log: Log = ctx["log"]
    logging.getLogger("trainers.worker").warning("run %s failed: %s: %s", job.run, type(error).__name__,
                                                 error)
    message = f"{type(error).__name__}: {error}"[:2000]
    audit = attempt.audit
    step = (job.steps or 0) + (audit.step if audit is not None else 0)
    if audit is None or audit.ended != "failed":
        await record(log, "run.failed", _worker_actor(), run=job.run, step=step, error=message)
    spent = _total_epsilon(job, audit.epsilon if audit is not None else None)
    await _close_budget(log, job, spent)
    await update_job(log, job.run, status="failed", error=message, steps=step, epsilon=spent)
    return "failed"


async def startup(ctx: dict[str, Any]) -> None:
    """Open the home's log (``RLHF_AUDIT_HOME``), its keyring and object store for this worker."""
    from app.keys.keyring import Keyring
    from app.objects import object_store
    from ledger.home import LogHome

    home = LogHome.resolve(os.environ.get("RLHF_AUDIT_HOME"))
    ctx["log"] = await home.open_log(migrate=True)
    ctx["keyring"] = Keyring.of(home)
    ctx["objects"] = object_store(home)


async def shutdown(ctx: dict[str, Any]) -> None:
    log = ctx.get("log")
    if log is not None:
        await log.integrate()
        await log.close()


def _redis_settings() -> Any:
    from arq.connections import RedisSettings

    from app.jobs.queue import ENV_REDIS

    return RedisSettings.from_dsn(os.environ.get(ENV_REDIS) or "redis://127.0.0.1:6379")


def _functions() -> list[Any]:
    from arq import func

    # training may take hours; a retry would train twice, so none
    return [func(run_training, name="run_training", timeout=7 * 24 * 3600, max_tries=1)]


def _cron_jobs() -> list[Any]:
    """The compliance checks, hourly (the server runs them itself when there is no Redis)."""
    from arq import cron

    from app.compliance.schedule import compliance_check

    return [cron(compliance_check, minute={0}, run_at_startup=False, unique=True)]


class WorkerSettings:
    """``arq trainers.worker.WorkerSettings`` (what ``rlhf-audit worker`` runs)."""

    functions = _functions()
    cron_jobs = _cron_jobs()
    on_startup = startup
    on_shutdown = shutdown
    allow_abort_jobs = True
    max_jobs = 1  # one training at a time per worker process
    queue_name = os.environ.get("RLHF_AUDIT_QUEUE") or "rlhf-audit:jobs"
    redis_settings = _redis_settings()
