"""``/api/v1/jobs``: submit, list, read and cancel training jobs (Bearer tokens, see events_api).

Submitting and cancelling need the ``jobs:submit`` scope, reading needs ``read``. A refused job
(over the privacy budget) is a 409 problem carrying ``planned_epsilon`` and ``remaining_epsilon``
(the :class:`~app.jobs.errors.Conflict`'s ``extensions``, answered by the app's one error handler).
:func:`jobs_lifespan` gives the app its queue (ARQ when ``RLHF_AUDIT_REDIS_URL`` is set) and
closes it on shutdown; handlers declare it (``queue``) like the other dependencies
(:mod:`app.core.deps`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from litestar import Controller, Litestar, Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.params import PathParameter, QueryParameter

from ..auth import authorized
from ..core.deps import CallerDep, DbDep, KeyringDep, LogDep, PrincipalDep, QueueDep, json_body
from . import service
from .queue import queue_from_env
from .schema import STATUSES

__all__ = ["JobsController", "jobs_lifespan"]


@asynccontextmanager
async def jobs_lifespan(app: Litestar) -> AsyncIterator[None]:
    """The job queue on ``app.state.queue`` for the app's lifetime (kept if one was handed in)."""
    owned = getattr(app.state, "queue", None) is None
    if owned:
        app.state.queue = queue_from_env(app.state.app_settings)
    try:
        yield
    finally:
        if owned:
            await app.state.queue.close()
            app.state.queue = None


class JobsController(Controller):
    path = "/api/v1/jobs"
    guards = [authorized]

    @post("/", opt={"scope": "jobs:submit"})
    async def submit(self, request: Request[Any, Any, Any], db: DbDep, log: LogDep, keyring: KeyringDep,
                     queue: QueueDep, caller: CallerDep, principal: PrincipalDep) -> Response[dict[str, Any]]:
        """Submit a job spec (the body); 201 with the queued job."""
        spec = await json_body(request)
        job = await service.submit(db, log, keyring, queue, spec, caller, submitted_by=principal.account)
        return Response(job.to_dict(), status_code=201, headers={"Location": f"/api/v1/jobs/{job.run}"})

    @get("/", opt={"scope": "read"})
    async def list_jobs(self, db: DbDep, status: Annotated[str | None, QueryParameter()] = None,
                        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Jobs, newest first, optionally of one status."""
        if status is not None and status not in STATUSES:
            raise ClientException(f"status must be one of {', '.join(STATUSES)}")
        return {"jobs": [j.to_dict() for j in await service.list_jobs(db, status, limit)]}

    @get("/{run:str}", opt={"scope": "read"})
    async def get_job(self, db: DbDep, run: Annotated[str, PathParameter()]) -> dict[str, Any]:
        """One job, with its stored checkpoints."""
        job = await service.get_job(db, run)
        return {**job.to_dict(), "checkpoints": await service.checkpoints(db, run)}

    @post("/{run:str}/cancel", opt={"scope": "jobs:submit"}, status_code=200)
    async def cancel(self, db: DbDep, log: LogDep, queue: QueueDep, caller: CallerDep,
                     run: Annotated[str, PathParameter()]) -> dict[str, Any]:
        """Cancel a queued or halted job now; a running one stops at its next step."""
        job = await service.cancel(db, log, queue, run, caller)
        return job.to_dict()
