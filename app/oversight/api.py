"""``/api/v1/oversight`` and ``/api/v1/models``: Art. 14 decisions over the API.

Every decision takes a JSON body with a ``justification`` and needs the overseer or admin role
(403 otherwise); the register is readable with the ``read`` scope. ``POST
/api/v1/models/{model}/release`` is refused (409) without an approval on the log.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.exceptions import ClientException
from litestar.params import PathParameter, QueryParameter

from ledger.log import Log

from ..auth import authorized
from ..core.params import PathIndex
from ..core.roles import DECIDERS
from ..jobs.api import actor_of, error_handlers, json_body, queue_of
from . import service

__all__ = ["DECIDERS", "ModelsController", "OversightController"]

# DECIDERS, the handler opt of every decision: the roles table's (app/core/roles.py)

Req = Request[Any, Any, Any]
PathStr = Annotated[str, PathParameter()]


def _log(request: Req) -> Log:
    log: Log = request.app.state.log
    return log


async def _body(request: Req, *required: str) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ClientException("the body must be a JSON object with a justification")
    for name in ("justification", *required):
        if not isinstance(body.get(name), str | int) or body.get(name) in ("", None):
            raise ClientException(f"the body needs {name!r}")
    if not isinstance(body["justification"], str):
        raise ClientException("justification must be text")
    return body


def _out(decision: service.Decision) -> dict[str, Any]:
    return decision.to_dict()


class OversightController(Controller):
    path = "/api/v1/oversight"
    guards = [authorized]
    exception_handlers = error_handlers()

    @get("/decisions", opt={"scope": "read"})
    async def decisions(self, request: Req, run: Annotated[str | None, QueryParameter()] = None,
                        model: Annotated[str | None, QueryParameter()] = None,
                        action: Annotated[str | None, QueryParameter()] = None) -> dict[str, Any]:
        """The oversight register, newest first."""
        found = await service.list_decisions(_log(request), run=run, model=model, action=action)
        return {"decisions": [_out(d) for d in found]}

    @post("/runs/{run:str}/halt", opt=DECIDERS, status_code=201)
    async def halt(self, request: Req, run: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.halt(_log(request), run, body["justification"], actor_of(request)))

    @post("/runs/{run:str}/resume", opt=DECIDERS, status_code=201)
    async def resume(self, request: Req, run: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.resume(_log(request), queue_of(request), run, body["justification"],
                                         actor_of(request)))

    @post("/datasets/{dataset:str}/{version:int}/reject", opt=DECIDERS, status_code=201)
    async def reject_dataset(self, request: Req, dataset: PathStr, version: PathIndex) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.reject_dataset(_log(request), dataset, version, body["justification"],
                                                 actor_of(request)))

    @post("/annotators/{annotator:str}/reject", opt=DECIDERS, status_code=201)
    async def reject_annotator(self, request: Req, annotator: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.reject_annotator(_log(request), annotator, body["justification"],
                                                   actor_of(request)))

    @post("/models/{model:str}/rollback", opt=DECIDERS, status_code=201)
    async def rollback(self, request: Req, model: PathStr) -> dict[str, Any]:
        body = await _body(request, "to_checkpoint")
        return _out(await service.rollback(_log(request), model, str(body["to_checkpoint"]),
                                           body["justification"], actor_of(request)))

    @post("/models/{model:str}/approve", opt=DECIDERS, status_code=201)
    async def approve(self, request: Req, model: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.approve_release(_log(request), model, body["justification"],
                                                  actor_of(request)))

    @post("/models/{model:str}/veto", opt=DECIDERS, status_code=201)
    async def veto(self, request: Req, model: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.veto_release(_log(request), model, body["justification"],
                                               actor_of(request)))


class ModelsController(Controller):
    path = "/api/v1/models"
    guards = [authorized]
    exception_handlers = error_handlers()

    @post("/{model:str}/release", opt=DECIDERS, status_code=201)
    async def release(self, request: Req, model: PathStr) -> dict[str, Any]:
        """Mark a model released; 409 unless an approval on the log stands."""
        return await service.release_model(_log(request), model, actor_of(request))
