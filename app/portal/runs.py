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
        listed = await jobs.list_jobs(db_of(request), limit=200)
        who = viewer(request)
        return page(request, "runs.html", jobs=listed,
                    may_submit=bool(who and who.may(*JOB_SUBMITTERS)), spec_text=_example_spec())

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
    return {
        "checkpoints": saved,
        "rollback_options": [(c["root"], f"step {c['step']}: {str(c['root'])[:24]}…") for c in saved],
        "decisions": await oversight.list_decisions(db, run=run),
        "events": events,
        "may_oversee": bool(who and who.may(*OVERSIGHT_ROLES)),
        "min_justification": oversight.MIN_JUSTIFICATION,
    }


def _submit_error(request: Req, text: str, message: str, status: int) -> Template:
    return page(request, "runs.html", status_code=status, jobs=None, may_submit=True, spec_text=text,
                error=message)


def _example_spec() -> str:
    return json.dumps({"kind": "reward_model", "base_model": "<path to a local model directory>",
                       "dataset": "ds_example", "learning_rate": 5e-5, "epochs": 1, "batch_size": 8,
                       "dp": {"target_epsilon": 8.0, "delta": 1e-5}}, indent=2)
