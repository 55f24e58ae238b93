"""``/api/v1/jobs``: submit, list, read and cancel training jobs (Bearer tokens, see events_api).

Submitting and cancelling need the ``jobs:submit`` scope, reading needs ``read``. A refused job
(over the privacy budget) is a 409 problem carrying ``planned_epsilon`` and ``remaining_epsilon``.
:func:`jobs_lifespan` gives the app its queue (ARQ when ``RLHF_AUDIT_REDIS_URL`` is set) and
closes it on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from litestar import Controller, Litestar, Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.params import PathParameter, QueryParameter

from ledger.home import LogHome
from ledger.log import Log

from ..auth import authorized
from ..core.problems import problem
from ..events.recording import Actor
from ..keys.keyring import Keyring
from . import service
from .errors import Conflict, Forbidden
from .queue import Queue, queue_from_env
from .schema import STATUSES

__all__ = ["JobsController", "actor_of", "error_handlers", "jobs_lifespan", "json_body", "keyring_of",
           "queue_of"]

Req = Request[Any, Any, Any]


@asynccontextmanager
async def jobs_lifespan(app: Litestar) -> AsyncIterator[None]:
    """The job queue on ``app.state.queue`` for the app's lifetime (kept if one was handed in)."""
    owned = getattr(app.state, "queue", None) is None
    if owned:
        app.state.queue = queue_from_env()
    try:
        yield
    finally:
        if owned:
            await app.state.queue.close()
            app.state.queue = None


def queue_of(request: Req) -> Queue:
    queue: Queue | None = getattr(request.app.state, "queue", None)
    if queue is None:
        queue = request.app.state.queue = queue_from_env()
    return queue


def keyring_of(request: Req) -> Keyring:
    keyring: Keyring | None = getattr(request.app.state, "keyring", None)
    if keyring is None:
        keyring = request.app.state.keyring = Keyring.of(LogHome.resolve(None))
    return keyring


def actor_of(request: Req) -> Actor:
    principal = request.state.principal
    return Actor.of_account(keyring_of(request).pseudonymizer, principal.account, principal.role)


def _conflict(_: Req, exc: Conflict) -> Response[dict[str, Any]]:
    return problem(409, str(exc), **exc.extensions)


def _forbidden(_: Req, exc: Forbidden) -> Response[dict[str, Any]]:
    return problem(403, str(exc))


def error_handlers() -> dict[type[Exception], Any]:
    return {Conflict: _conflict, Forbidden: _forbidden}


async def json_body(request: Req) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as e:
        raise ClientException(f"the body is not JSON: {e}") from None


def _log(request: Req) -> Log:
    log: Log = request.app.state.log
    return log


class JobsController(Controller):
    path = "/api/v1/jobs"
    guards = [authorized]
    exception_handlers = error_handlers()

    @post("/", opt={"scope": "jobs:submit"})
    async def submit(self, request: Req) -> Response[dict[str, Any]]:
        """Submit a job spec (the body); 201 with the queued job."""
        spec = await json_body(request)
        job = await service.submit(_log(request), keyring_of(request), queue_of(request), spec,
                                   actor_of(request), submitted_by=request.state.principal.account)
        return Response(job.to_dict(), status_code=201, headers={"Location": f"/api/v1/jobs/{job.run}"})

    @get("/", opt={"scope": "read"})
    async def list_jobs(self, request: Req, status: Annotated[str | None, QueryParameter()] = None,
                        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Jobs, newest first, optionally of one status."""
        if status is not None and status not in STATUSES:
            raise ClientException(f"status must be one of {', '.join(STATUSES)}")
        return {"jobs": [j.to_dict() for j in await service.list_jobs(_log(request), status, limit)]}

    @get("/{run:str}", opt={"scope": "read"})
    async def get_job(self, request: Req, run: Annotated[str, PathParameter()]) -> dict[str, Any]:
        """One job, with its stored checkpoints."""
        job = await service.get_job(_log(request), run)
        return {**job.to_dict(), "checkpoints": await service.checkpoints(_log(request), run)}

    @post("/{run:str}/cancel", opt={"scope": "jobs:submit"}, status_code=200)
    async def cancel(self, request: Req, run: Annotated[str, PathParameter()]) -> dict[str, Any]:
        """Cancel a queued or halted job now; a running one stops at its next step."""
        job = await service.cancel(_log(request), queue_of(request), run, actor_of(request))
        return job.to_dict()
