"""The authenticated API under ``/api/v1/``: Bearer API tokens, scopes, appending events.

A token (``Authorization: Bearer rat_...``, see ``app.accounts``) is checked by the guard
:func:`authorized` on every handler here; the handler's ``opt["scope"]`` names the scope it
needs. No or a bad token is a 401 problem detail (with ``WWW-Authenticate: Bearer``), a valid
token without the scope a 403.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import orjson
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter

from ledger.canonical import MAX_ENTRY_BYTES, encode_event
from ledger.errors import EntryError
from ledger.log import Log
from ledger.proofs import b64

from .accounts import Principal, authenticate_token

__all__ = ["EventsController", "MAX_BATCH", "authorized"]

Req = Request[Any, Any, Any]
MAX_BATCH = 1000
_BEARER = {"WWW-Authenticate": 'Bearer realm="rlhf-audit"'}


async def authorized(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard: a valid Bearer token with the handler's ``opt["scope"]`` (if any), else 401/403."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise NotAuthorizedException("an API token is required: Authorization: Bearer rat_...",
                                     headers=_BEARER)
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException("use Authorization: Bearer <token>", headers=_BEARER)
    log: Log = connection.app.state.log
    principal = await authenticate_token(log, token.strip())
    if principal is None:
        raise NotAuthorizedException("the API token is invalid, expired or revoked", headers=_BEARER)
    scope = handler.opt.get("scope")
    if scope is not None and scope not in principal.scopes:
        raise PermissionDeniedException(f"this token lacks the {scope!r} scope")
    connection.state.principal = principal


def _principal(request: Req) -> Principal:
    principal: Principal = request.state.principal
    return principal


def _events(body: bytes) -> list[bytes]:
    """The canonical entries of a body: one event object, or ``{"events": [...]}`` alone."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ClientException(f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ClientException("the body must be a JSON object: one event, or {\"events\": [...]}")
    if list(doc) == ["events"]:
        events = doc["events"]
        if not isinstance(events, list) or not events:
            raise ClientException("\"events\" must be a non-empty array of event objects")
        if len(events) > MAX_BATCH:
            raise ClientException(f"at most {MAX_BATCH} events per request, not {len(events)}")
    else:
        events = [doc]
    entries = []
    for i, event in enumerate(events):
        try:
            if not isinstance(event, dict):
                raise EntryError("an event must be a JSON object")
            data = encode_event(event)
            if len(data) > MAX_ENTRY_BYTES:
                raise EntryError(f"it is {len(data)} bytes canonical; entries are at most {MAX_ENTRY_BYTES}")
        except EntryError as e:
            raise EntryError(f"event {i}: {e} (nothing was appended)") from None
        entries.append(data)
    return entries


class EventsController(Controller):
    path = "/api/v1"
    guards = [authorized]

    @get("/whoami")
    async def whoami(self, request: Req) -> dict[str, Any]:
        """The token's account, role and scopes."""
        p = _principal(request)
        return {"account": p.account, "role": p.role, "scopes": sorted(p.scopes)}

    @post("/events", opt={"scope": "events:write"})
    async def append(
        self, request: Req,
        wait: Annotated[bool, QueryParameter()] = False,
        timeout: Annotated[float, QueryParameter(gt=0, le=30)] = 10.0,
    ) -> Response[dict[str, Any]]:
        """Append one event or a batch (all or nothing); with ``wait=true`` also prove inclusion."""
        log: Log = request.app.state.log
        sequenced = await log.append_entries(_events(await request.body()))
        entries: list[dict[str, Any]] = [
            {"leaf_index": s.leaf_index, "leaf_hash": base64.b64encode(s.leaf_hash).decode()}
            for s in sequenced]
        headers = {"X-Recorded-By": _principal(request).account, "Cache-Control": "no-store"}
        if not wait:
            return Response({"entries": entries}, status_code=201, headers=headers)
        try:
            cp = await log.wait_for(sequenced[-1].leaf_index, timeout)
        except TimeoutError:
            return Response({"entries": entries, "checkpoint": None,
                             "detail": f"appended and durable, but not integrated within {timeout} s; "
                                       "ask for proofs later"}, status_code=202, headers=headers)
        for s, out in zip(sequenced, entries, strict=True):
            proof = await log.inclusion_proof(s.leaf_index, cp.size)
            out["inclusion_proof"] = {"tree_size": proof.tree_size,
                                      "audit_path": [b64(h) for h in proof.audit_path]}
        return Response({"entries": entries, "checkpoint": cp.note.decode()}, status_code=201,
                        headers=headers)
