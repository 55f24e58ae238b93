"""Oversight actions from the browser (EU AI Act Art. 14): halt, resume, reject, roll back,
approve or veto a release, and release an approved model.

Each form asks for a written justification and an explicit confirmation (a required checkbox:
it works without JavaScript, and the server checks it too), is offered only to the roles that
may act, and posts with the CSRF token. The decision itself is ``app.oversight``'s: it checks
the role again, the four-eyes rule on resume and the run's state, and records the event. After
recording, the page shows the decision's log entry (leaf index, link to the explorer). A
refused decision shows its form again with what was typed, so it can be fixed and sent again.

``release`` is not an ``oversight.decision``: it records ``model.released`` (with the
justification), under the same rules as ``POST /api/v1/models/{model}/release``.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.response import Redirect, Template

from ledger.errors import LedgerError

from ..core.errors import AppError
from ..core.problems import classify, client_detail
from .web import OVERSIGHT_ROLES, Req, actor_of, db_of, log_of, page, queue_of, redirect, role_guard

__all__ = ["ACTIONS", "OversightController"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
# action -> (label, what it acts on, the form fields it needs beyond the justification)
ACTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "halt": ("Halt now", "run", ("run",)),
    "resume": ("Resume", "run", ("run",)),
    "rollback": ("Roll back", "run", ("run", "to_checkpoint")),
    "approve_release": ("Approve release", "model", ("model",)),
    "veto_release": ("Veto release", "model", ("model",)),
    "release": ("Release model", "model", ("model",)),
    "reject_dataset": ("Reject dataset version", "dataset", ("dataset", "dataset_version")),
    "reject_annotator": ("Reject annotator's records", "annotator", ("annotator",)),
}

DANGEROUS = ("halt", "rollback", "veto_release", "reject_dataset", "reject_annotator")


async def _decide(request: Req, action: str, form: dict[str, str]) -> tuple[int, str]:
    """Record the action; its log entry's leaf index, and what to call it in the message."""
    from app.oversight import service

    if action == "release":
        done = await service.release_model(db_of(request), log_of(request), form["model"], actor_of(request),
                                           form.get("justification", ""))
        return done["leaf_index"], f"release of model {done['model']}"
    decision = await _decision(request, action, form)
    return decision.leaf_index, f"decision {decision.decision_id}"


async def _decision(request: Req, action: str, form: dict[str, str]) -> Any:
    from app.jobs.errors import JobError
    from app.oversight import service

    db, log, actor, text = db_of(request), log_of(request), actor_of(request), form.get("justification", "")
    if action == "halt":
        return await service.halt(db, log, form["run"], text, actor)
    if action == "resume":
        return await service.resume(db, log, queue_of(request), form["run"], text, actor)
    if action == "rollback":
        return await service.rollback(db, log, form["run"], form["to_checkpoint"], text, actor)
    if action == "approve_release":
        return await service.approve_release(db, log, form["model"], text, actor)
    if action == "veto_release":
        return await service.veto_release(db, log, form["model"], text, actor)
    if action == "reject_dataset":
        try:
            version = int(form["dataset_version"])
        except ValueError:
            raise JobError("the dataset version must be a number") from None
        return await service.reject_dataset(db, log, form["dataset"], version, text, actor)
    return await service.reject_annotator(db, log, form["annotator"], text, actor)


def _back(form: dict[str, str]) -> str:
    back = form.get("back", "/")
    return back if back.startswith("/") and not back.startswith("//") else "/"


class OversightController(Controller):
    path = "/oversight"
    guards = [role_guard(*OVERSIGHT_ROLES)]

    @post("/{action:str}")
    async def act(self, request: Req, action: Annotated[str, PathParameter()],
                  data: Form) -> Template | Redirect:
        """Record one decision; on a refusal, show the form's page again with the reason."""
        if action not in ACTIONS:
            return _refused(request, data, f"unknown oversight action {action!r}", 404)
        label, _, needed = ACTIONS[action]
        missing = [f for f in needed if not data.get(f, "").strip()]
        if missing:
            return _refused(request, data, f"{label}: {', '.join(missing)} is missing", 400)
        if data.get("confirm") != "yes":
            return _refused(request, data, f"{label}: tick the confirmation box to record this decision "
                                           "(it goes on the permanent log)", 400)
        try:
            leaf_index, what = await _decide(request, action, {k: v.strip() for k, v in data.items()})
        except (LedgerError, AppError) as e:
            return _refused(request, data, f"{label} refused: {client_detail(e)}", classify(e)[0])
        back = _back(data)
        sep = "&" if "?" in back else "?"
        message = f"{label} recorded as log entry {leaf_index} ({what})."
        return redirect(f"{back}{sep}recorded={leaf_index}", message, "success", request)


def _refused(request: Req, data: dict[str, str], message: str, status: int) -> Template:
    """The reason, and the form again as it was sent (justification included) when the action exists."""
    from app.oversight.service import MAX_JUSTIFICATION, MIN_JUSTIFICATION

    action = request.path_params.get("action", "")
    known = ACTIONS.get(action)
    again = None if known is None else {
        "action": action, "label": known[0], "danger": action in DANGEROUS,
        "hidden": {f: data.get(f, "") for f in known[2]}, "justification": data.get("justification", "")}
    return page(request, "oversight_refused.html", status_code=status, title="Decision not recorded",
                message=message, form=data, again=again, back=_back(data),
                min_justification=MIN_JUSTIFICATION, max_justification=MAX_JUSTIFICATION)
