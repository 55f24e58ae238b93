"""Training runs: the list (with a link to the job form, ``job_form``, for operators), and one run's page.

A run's page opens with a cockpit that stays in view: status, "step 81 of 200", ε against the
run's plan and the dataset's budget, the decision state in words and links to the oversight
actions that apply. Below it, live metrics (loss, reward accuracy or margin, ε) as SVG charts
drawn on the server; the ``live`` partial is polled by htmx while the job is queued or running
(it carries the cockpit's numbers along as an out-of-band swap) and answers 286 (htmx: stop
polling) once it has finished. Metrics, privacy spend and the run's segments (a halted run
resumed is one run: global steps, cumulative ε, one ``run.started`` per segment) come from the
event index; the job row and its checkpoints from ``app.jobs``.

A run's progress (:class:`Progress`) is worked out once, here, for the run page and the runs
list alike, and shown through one set of macros (``partials/run_numbers.html``), so the two can
never disagree on a run's ε.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import PathParameter
from litestar.response import Template

from ..core.params import QueryIndex
from ..core.roles import JOB_SUBMITTERS
from ..datasets import BudgetError, get_budget
from ..jobs import service as jobs
from ..oversight import service as oversight
from .explorer import event_index
from .web import (
    OVERSIGHT_ROLES,
    Req,
    actor_of,
    db_of,
    page,
    signed_in,
    viewer,
)

__all__ = ["Progress", "RunsController", "metric_series", "progress", "segments"]

LIVE = ("queued", "running")
SHOWN = ("loss", "accuracy", "reward_accuracy", "margin")  # the figures named under the charts
RunId = Annotated[str, PathParameter(pattern=r"^run_[0-9A-Za-z]{1,64}$")]


def metric_series(metric_events: list[Any]) -> dict[str, list[tuple[float, float]]]:
    """``{"loss": [(step, value), ...], ...}`` from ``run.metrics`` events (numeric fields only)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for e in metric_events:
        for s in e.event.get("steps", []):
            if not isinstance(s, dict) or not isinstance(s.get("step"), int | float):
                continue
            for key, value in s.items():
                if key in ("step", "epoch") or isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                series.setdefault(key, []).append((float(s["step"]), float(value)))
    return series


@dataclass(frozen=True)
class Progress:
    """Where a run stands: global steps reached (and planned, when known) and its cumulative ε."""

    steps: int
    planned_steps: int | None  # the first segment's dp.planned_steps, else the spec's max_steps
    epsilon: float | None
    planned_epsilon: float | None  # its reservation; None: a run without DP

    @property
    def dp(self) -> bool:
        return self.planned_epsilon is not None or self.epsilon is not None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def progress(job: jobs.Job, started: list[Any], *, last_step: float = 0,
             last_epsilon: float | None = None) -> Progress:
    """A run's progress from its job row and what its events say (``started``: its ``run.started``
    events in log order). The row is written when a segment ends, the events while it trains: the
    further of the two is current (steps are global and ε cumulative, so neither falls)."""
    planned = next((int(p) for e in started
                    if isinstance(dp := e.event.get("dp"), dict) and (p := _number(dp.get("planned_steps")))),
                   None)  # a resumed segment plans only what is left: the first one has the run's plan
    if planned is None and (max_steps := _number(job.spec.get("max_steps"))):
        planned = int(max_steps)
    spent = [e for e in (last_epsilon, job.epsilon) if e is not None]
    return Progress(int(max(job.steps or 0, last_step)), planned or None, max(spent) if spent else None,
                    job.planned_epsilon)


def segments(started: list[Any], resumes: list[oversight.Decision]) -> list[dict[str, Any]]:
    """The run's segments, one a ``run.started`` (log order): the first from the start, each later
    one from a step and checkpoint (``resumed_from``), resumed by the ``resume`` decision (of
    ``resumes``) recorded between the previous segment's start and its own."""
    out: list[dict[str, Any]] = []
    for n, e in enumerate(started, 1):
        after = out[-1]["index"] if out else -1
        resumed_by = max((d for d in resumes if after < d.leaf_index < e.index), default=None,
                         key=lambda d: d.leaf_index) if out else None
        resumed = e.event.get("resumed_from")
        resumed = resumed if isinstance(resumed, dict) else {}
        segment = e.event.get("segment")
        from_step = _number(resumed.get("step"))
        out.append({"segment": segment if isinstance(segment, int) and not isinstance(segment, bool) else n,
                    "from_step": None if from_step is None else int(from_step),
                    "decision": resumed.get("decision"), "checkpoint_root": resumed.get("checkpoint_root"),
                    "resumed_by": resumed_by, "index": e.index})
    return out


def _charts(series: dict[str, list[tuple[float, float]]], privacy: list[tuple[float, float]],
            planned: float | None, dataset_budget: float | None,
            resumes: list[tuple[float, str]]) -> list[dict[str, Any]]:
    loss = [(k, v) for k, v in series.items() if "loss" in k]
    acc = [(k, v) for k, v in series.items() if "acc" in k]
    margin = [(k, v) for k, v in series.items() if "margin" in k]
    limits = ([(planned, "planned ε")] if planned is not None else []) + (
        [(dataset_budget, "dataset budget")] if dataset_budget is not None else [])
    # a reward model logs accuracy; DPO logs reward accuracy and margin: accuracy first, else margin
    title, second = ("Reward accuracy", acc) if acc or not margin else ("Reward margin", margin)
    return [
        {"title": "Loss", "series": loss or [("loss", [])], "limits": [], "marks": resumes},
        {"title": title, "series": second or [("accuracy", [])], "limits": [], "marks": resumes},
        {"title": "Privacy spent (ε)", "series": [("ε", privacy)], "limits": limits, "marks": resumes},
    ]


async def run_context(request: Req, run: str) -> dict[str, Any]:
    """What the run page and its live part show: the job, its progress, segments, charts, budget."""
    db = db_of(request)
    job = await jobs.get_job(db, run)  # JobNotFound -> 404 page
    index = event_index(request)
    metrics = await index.query(kind="run.metrics", run=run, limit=2000)
    privacy_events = await index.query(kind="run.privacy", run=run, limit=2000)
    started = await index.query(kind="run.started", run=run, limit=100)
    privacy = [(float(e.event["step"]), float(e.event["epsilon"])) for e in privacy_events
               if all(_number(e.event.get(k)) is not None for k in ("step", "epsilon"))]
    series = metric_series(metrics)
    latest = {k: max(v)[1] for k, v in series.items() if v and k in SHOWN}
    last_step = max((int(max(v)[0]) for v in [*series.values(), privacy] if v), default=0)
    now = progress(job, started, last_step=last_step, last_epsilon=privacy[-1][1] if privacy else None)
    budget = None
    if now.dp:
        try:
            budget = await get_budget(db, job.dataset)
        except BudgetError:  # no budget set for the dataset (a run without DP needs none)
            budget = None
    parts = segments(started, await oversight.list_decisions(db, run=run, action="resume")
                     if len(started) > 1 else [])
    resumes = [(float(s["from_step"]), "resumed") for s in parts[1:] if s["from_step"] is not None]
    return {"run": run, "job": job, "live": job.status in LIVE, "progress": now, "segments": parts,
            "charts": _charts(series, privacy, job.planned_epsilon,
                              budget.epsilon_total if budget else None, resumes),
            "latest": latest, "dataset_budget": budget}


async def _listed_progress(request: Req, listed: list[jobs.Job]) -> dict[str, Progress]:
    """Each listed run's progress: from its row, and for a run still training (whose row lags)
    from its newest events, as on its page. A DP run planned in epochs has its planned steps
    only in its first ``run.started``."""
    index = event_index(request)
    out = {}
    for job in listed:
        plan = [] if job.planned_epsilon is None or job.spec.get("max_steps") else \
            await index.query(kind="run.started", run=job.run, limit=1)
        if job.status not in LIVE:
            out[job.run] = progress(job, plan)
            continue
        privacy = await index.query(kind="run.privacy", run=job.run, limit=1, descending=True)
        metrics = await index.query(kind="run.metrics", run=job.run, limit=1, descending=True)
        steps = [s for pts in metric_series(metrics).values() for s, _ in pts] + [
            p for e in privacy if (p := _number(e.event.get("step"))) is not None]
        out[job.run] = progress(job, plan, last_step=max(steps, default=0),
                                last_epsilon=next((_number(e.event.get("epsilon")) for e in privacy), None))
    return out


class RunsController(Controller):
    path = "/runs"
    guards = [signed_in]

    @get("/")
    async def runs(self, request: Req) -> Template:
        db = db_of(request)
        listed = await jobs.list_jobs(db, limit=200)
        who = viewer(request)
        return page(request, "runs.html", jobs=listed, may_submit=bool(who and who.may(*JOB_SUBMITTERS)),
                    progress=await _listed_progress(request, listed))

    @get("/{run:str}")
    async def run(self, request: Req, run: RunId,
                  recorded: QueryIndex = None) -> Template:
        ctx = await run_context(request, run)
        return page(request, "run.html", title=f"Run {run}", **ctx, **await _run_extras(request, run),
                    recorded=recorded)

    @get("/{run:str}/live")
    async def live(self, request: Req, run: RunId) -> Template:
        """The live part alone, with the cockpit's numbers out of band (for htmx); 286 once the job
        has finished, so htmx stops polling."""
        ctx = await run_context(request, run)
        done = request.headers.get("hx-request") == "true" and not ctx.get("live")
        return page(request, "partials/run_live.html", status_code=286 if done else 200, **ctx)


async def _run_extras(request: Req, run: str) -> dict[str, Any]:
    db = db_of(request)
    who = viewer(request)
    events = await event_index(request).query(run=run, limit=25, descending=True)
    saved = await jobs.checkpoints(db, run)
    may_oversee = bool(who and who.may(*OVERSIGHT_ROLES))
    decisions = await oversight.list_decisions(db, run=run)  # newest first
    return {
        "checkpoints": saved,
        "rollback_options": [(c["root"], f"step {c['step']}: {str(c['root'])[:24]}…") for c in saved],
        "decisions": decisions,
        "resumed_by": decisions[0] if decisions and decisions[0].action == "resume" else None,
        "me": actor_of(request).pseudonym,
        "events": events,
        "may_oversee": may_oversee,
        "min_justification": oversight.MIN_JUSTIFICATION,
        "max_justification": oversight.MAX_JUSTIFICATION,
        **await _oversight_state(request, run, may_oversee),
    }


async def _oversight_state(request: Req, run: str, may_oversee: bool) -> dict[str, Any]:
    """Which oversight actions apply to this run, this person and this state, and the release state.

    ``actions``: ``halt`` (queued or running), ``resume`` (halted, for an overseer other than the
    one who halted), ``approve_release`` / ``veto_release`` (a model not yet decided), ``release``
    (approved, not released; ``veto_release`` still applies), ``rollback`` (a model with checkpoints,
    not released). The service checks each again when the form is sent."""
    db = db_of(request)
    job = await jobs.get_job(db, run)
    halted_by = None
    if (job.halted or job.status == "halted") and job.halt_decision:
        halted_by = await oversight.get_decision(db, job.halt_decision)
    release = await oversight.release_state(db, run) if job.model else None
    me = actor_of(request).pseudonym if may_oversee else None
    actions: list[str] = []
    if may_oversee:
        if job.status in ("queued", "running") and not job.halted:
            actions.append("halt")
        if job.status == "halted" and (halted_by is None or halted_by.actor != me):
            actions.append("resume")
        if release is not None:
            actions += {"undecided": ["approve_release", "veto_release"],
                        "approved": ["release", "veto_release"], "vetoed": [], "released": []}[release.state]
            if release.state != "released" and await jobs.checkpoints(db, run):
                actions.append("rollback")
    return {"actions": actions, "halted_by": halted_by, "release": release,
            "halted_by_me": bool(halted_by and halted_by.actor == me)}

