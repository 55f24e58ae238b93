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

from ..auth import authorized
from ..core.deps import CallerDep, DbDep, LogDep, QueueDep, json_body
from ..core.params import PathIndex
from ..core.roles import DECIDERS
from . import service

__all__ = ["DECIDERS", "ModelsController", "OversightController"]

# DECIDERS, the handler opt of every decision: the roles table's (app/core/roles.py)

Req = Request[Any, Any, Any]
PathStr = Annotated[str, PathParameter()]


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

    @get("/decisions", opt={"scope": "read"})
    async def decisions(self, db: DbDep, run: Annotated[str | None, QueryParameter()] = None,
                        model: Annotated[str | None, QueryParameter()] = None,
                        action: Annotated[str | None, QueryParameter()] = None) -> dict[str, Any]:
        """The oversight register, newest first."""
        found = await service.list_decisions(db, run=run, model=model, action=action)
        return {"decisions": [_out(d) for d in found]}

    @post("/runs/{run:str}/halt", opt=DECIDERS, status_code=201)
    async def halt(self, request: Req, db: DbDep, log: LogDep, caller: CallerDep,
                   run: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.halt(db, log, run, body["justification"], caller))

    @post("/runs/{run:str}/resume", opt=DECIDERS, status_code=201)
    async def resume(self, request: Req, db: DbDep, log: LogDep, queue: QueueDep, caller: CallerDep,
                     run: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.resume(db, log, queue, run, body["justification"], caller))

    @post("/datasets/{dataset:str}/{version:int}/reject", opt=DECIDERS, status_code=201)
    async def reject_dataset(self, request: Req, db: DbDep, log: LogDep, caller: CallerDep, dataset: PathStr,
                             version: PathIndex) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.reject_dataset(db, log, dataset, version, body["justification"],
                                                 caller))

    @post("/annotators/{annotator:str}/reject", opt=DECIDERS, status_code=201)
    async def reject_annotator(self, request: Req, db: DbDep, log: LogDep, caller: CallerDep,
                               annotator: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.reject_annotator(db, log, annotator, body["justification"], caller))

    @post("/models/{model:str}/rollback", opt=DECIDERS, status_code=201)
    async def rollback(self, request: Req, db: DbDep, log: LogDep, caller: CallerDep,
                       model: PathStr) -> dict[str, Any]:
        body = await _body(request, "to_checkpoint")
        return _out(await service.rollback(db, log, model, str(body["to_checkpoint"]),
                                           body["justification"], caller))

    @post("/models/{model:str}/approve", opt=DECIDERS, status_code=201)
    async def approve(self, request: Req, db: DbDep, log: LogDep, caller: CallerDep,
                      model: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.approve_release(db, log, model, body["justification"], caller))

    @post("/models/{model:str}/veto", opt=DECIDERS, status_code=201)
    async def veto(self, request: Req, db: DbDep, log: LogDep, caller: CallerDep,
                   model: PathStr) -> dict[str, Any]:
        body = await _body(request)
        return _out(await service.veto_release(db, log, model, body["justification"], caller))


class ModelsController(Controller):
    path = "/api/v1/models"
    guards = [authorized]

    @post("/{model:str}/release", opt=DECIDERS, status_code=201)
    async def release(self, db: DbDep, log: LogDep, caller: CallerDep, model: PathStr) -> dict[str, Any]:
        """Mark a model released; 409 unless an approval on the log stands."""
        return await service.release_model(db, log, model, caller)
