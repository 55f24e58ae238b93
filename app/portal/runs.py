"""Training runs: the list (and a submit form for operators), and one run's page.

A run's page shows live metrics (loss, reward accuracy, ε against the budget) as SVG charts
drawn on the server; the ``live`` partial is polled by htmx while the job is queued or running
and answers 286 (htmx: stop polling) once it has finished. Metrics, privacy spend and the run's
events come from the event index; the job row and its checkpoints from ``app.jobs``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.response import Redirect, Template

from ledger.errors import LedgerError

from ..core.deps import keyring_of
from ..core.errors import AppError
from ..core.params import QueryIndex
from ..core.problems import client_detail
from ..core.roles import JOB_SUBMITTERS
from ..datasets import list_datasets
from ..jobs import service as jobs
from ..oversight import service as oversight
from .explorer import event_index
from .web import (
    OVERSIGHT_ROLES,
    Req,
    actor_of,
    db_of,
    log_of,
    page,
    queue_of,
    redirect,
    role_guard,
    signed_in,
    viewer,
)

__all__ = ["RunsController", "metric_series"]

LIVE = ("queued", "running")
SHOWN = ("loss", "accuracy", "reward_accuracy", "margin")  # the figures named under the charts
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
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


def _charts(series: dict[str, list[tuple[float, float]]], privacy: list[tuple[float, float]],
            budget: float | None) -> list[dict[str, Any]]:
    loss = [(k, v) for k, v in series.items() if "loss" in k]
    acc = [(k, v) for k, v in series.items() if "acc" in k]
    return [
        {"title": "Loss", "series": loss or [("loss", [])], "limit": None, "limit_label": ""},
        {"title": "Reward accuracy", "series": acc or [("accuracy", [])], "limit": None, "limit_label": ""},
        {"title": "Privacy spent (ε)", "series": [("ε", privacy)], "limit": budget,
         "limit_label": "planned ε"},
    ]


async def run_context(request: Req, run: str) -> dict[str, Any]:
    job = await jobs.get_job(db_of(request), run)  # JobNotFound -> 404 page
    index = event_index(request)
    metrics = await index.query(kind="run.metrics", run=run, limit=2000)
    privacy_events = await index.query(kind="run.privacy", run=run, limit=2000)
    privacy = [(float(e.event["step"]), float(e.event["epsilon"])) for e in privacy_events
               if all(isinstance(e.event.get(k), int | float) for k in ("step", "epsilon"))]
    budget = job.planned_epsilon
    series = metric_series(metrics)
    latest = {k: max(v)[1] for k, v in series.items() if v and k in SHOWN}
    last_step = max((int(max(v)[0]) for v in series.values() if v), default=0)
    return {"run": run, "job": job, "live": job.status in LIVE, "charts": _charts(series, privacy, budget),
            "last_step": last_step,
            "latest": latest, "epsilon": privacy[-1][1] if privacy else job.epsilon, "budget": budget}


class RunsController(Controller):
    path = "/runs"
    guards = [signed_in]

    @get("/")
    async def runs(self, request: Req) -> Template:
        db = db_of(request)
        listed = await jobs.list_jobs(db, limit=200)
        who = viewer(request)
        known = [d["dataset"] for d in await list_datasets(db)]
        return page(request, "runs.html", jobs=listed, may_submit=bool(who and who.may(*JOB_SUBMITTERS)),
                    spec_text=_example_spec(known[-1] if known else None))

    @post("/", guards=[role_guard(*JOB_SUBMITTERS)])
    async def submit(self, request: Req, data: Form) -> Template | Redirect:
        """Submit a job spec (JSON) on behalf of the signed-in operator."""
        text = data.get("spec", "")
        try:
            doc = orjson.loads(text)  # as the API: NaN, Infinity and deep nesting are refused
            job = await jobs.submit(db_of(request), log_of(request), keyring_of(request), queue_of(request),
                                    doc, actor_of(request),
                                    submitted_by=getattr(viewer(request), "account", "portal"))
        except json.JSONDecodeError as e:
            return _submit_error(request, text, f"the spec is not JSON: {e}", 400)
        except (LedgerError, AppError) as e:
            return _submit_error(request, text, client_detail(e), 400)
        return redirect(f"/runs/{job.run}", f"Job {job.run} submitted and queued.", "success", request)

    @get("/{run:str}")
    async def run(self, request: Req, run: RunId,
                  recorded: QueryIndex = None) -> Template:
        ctx = await run_context(request, run)
        return page(request, "run.html", title=f"Run {run}", **ctx, **await _run_extras(request, run),
                    recorded=recorded)

    @get("/{run:str}/live")
    async def live(self, request: Req, run: RunId) -> Template:
        """The metrics part alone; 286 once the job has finished, so htmx stops polling."""
        ctx = await run_context(request, run)
        done = request.headers.get("hx-request") == "true" and not ctx.get("live")
        return page(request, "partials/run_live.html", status_code=286 if done else 200, **ctx)


async def _run_extras(request: Req, run: str) -> dict[str, Any]:
    db = db_of(request)
    who = viewer(request)
    events = await event_index(request).query(run=run, limit=25, descending=True)
    saved = await jobs.checkpoints(db, run)
    may_oversee = bool(who and who.may(*OVERSIGHT_ROLES))
    return {
        "checkpoints": saved,
        "rollback_options": [(c["root"], f"step {c['step']}: {str(c['root'])[:24]}…") for c in saved],
        "decisions": await oversight.list_decisions(db, run=run),
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


def _submit_error(request: Req, text: str, message: str, status: int) -> Template:
    return page(request, "runs.html", status_code=status, jobs=None, may_submit=True, spec_text=text,
                error=message)


def _example_spec(dataset: str | None) -> str:
    """A spec to start from: an imported dataset of this log (the newest by name), never an invented one."""
    return json.dumps({"kind": "reward_model", "base_model": "<path to a local model directory>",
                       "dataset": dataset or "<import a dataset first: /datasets>", "learning_rate": 5e-5,
                       "epochs": 1, "batch_size": 8, "dp": {"target_epsilon": 8.0, "delta": 1e-5}}, indent=2)
