"""``/api/v1/incidents``: freeze the evidence of a serious incident, and list the freezes.

Freezing is an oversight act (it halts runs when asked, and holds evidence against deletion), so
it needs what every oversight decision needs: the overseer or admin role and, for a token, the
``oversight:decide`` scope. The list is readable with ``read``: auditors are whom it is for.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.params import QueryParameter

from ..auth import authorized
from ..core.deps import AppSettingsDep, CallerDep, DbDep, IndexDep, KeyringDep, LogDep, json_body, objects_of
from ..core.roles import DECIDERS
from ..evidence.scope import Scope
from .freeze import freeze_evidence, list_incidents

__all__ = ["IncidentsController"]

Req = Request[Any, Any, Any]
_FIELDS = {"reason", "scope", "halt"}


def _body(doc: Any) -> tuple[str, Scope, bool]:
    if not isinstance(doc, dict):
        raise ClientException('the body must be a JSON object: {"reason": ..., "scope": {...}}')
    unknown = set(doc) - _FIELDS
    if unknown:
        raise ClientException(f"unknown field(s): {', '.join(sorted(unknown))}")
    reason = doc.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ClientException("the body needs a 'reason': the written justification of the freeze")
    if not isinstance(doc.get("scope"), dict):
        raise ClientException('the body needs a \'scope\', e.g. {"kind": "run", "run": "run_..."}')
    scope = dict(doc["scope"])
    if scope.get("kind") == "release":  # as report scopes accept it
        scope["kind"] = "model"
    halt = doc.get("halt", False)
    if not isinstance(halt, bool):
        raise ClientException("'halt' must be true or false")
    return reason, Scope.from_json(scope), halt  # ScopeError is Invalid: a 400


class IncidentsController(Controller):
    path = "/api/v1/incidents"
    guards = [authorized]

    @post("/", opt=DECIDERS, status_code=201)
    async def freeze(self, request: Req, db: DbDep, log: LogDep, keyring: KeyringDep,
                     event_index: IndexDep, caller: CallerDep,
                     app_settings: AppSettingsDep) -> Response[dict[str, Any]]:
        """Freeze the scope's evidence; 201 with the incident id, the bundle's key and SHA-256."""
        reason, scope, halt = _body(await json_body(request))
        frozen = await freeze_evidence(db, log, scope, reason, caller, objects=objects_of(request),
                                       evidence_key=keyring.evidence_signer, halt=halt, index=event_index,
                                       settings=app_settings)
        return Response(frozen.to_dict(), status_code=201, headers={"Cache-Control": "no-store"})

    @get("/", opt={"scope": "read"})
    async def frozen(self, event_index: IndexDep,
                     limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """The freezes on the log, newest first."""
        return {"incidents": await list_incidents(event_index, limit=limit)}
