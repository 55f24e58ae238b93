"""The authenticated API under ``/api/v1/``: Bearer API tokens, scopes, appending and querying events.

Next to the public read API (``app.log.api``) rather than in ``app.events``: it stands on
``app.auth`` and ``app.accounts``, which themselves record events, so ``app.events`` (the
vocabulary and the index every domain uses) stays below them.

A token (``Authorization: Bearer rat_...``, see ``app.accounts``) or a portal session is checked
by the guard :func:`app.auth.authorized` on every handler here; the handler's ``opt["scope"]``
names the scope it needs. No or a bad token is a 401 problem detail (with ``WWW-Authenticate:
Bearer``), a valid one without the scope a 403.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import (
    ClientException,
    NotFoundException,
)
from litestar.params import PathParameter, QueryParameter

from ledger.canonical import decode_event, encode_event
from ledger.errors import EntryError
from ledger.proofs import b64

from ..auth.principal import authorized
from ..core.deps import CallerDep, IndexDep, LogDep, PrincipalDep
from ..core.params import MAX_INT
from ..events.index import IndexedEvent
from ..events.recording import Actor, stamped

__all__ = ["EventsController", "MAX_BATCH", "MAX_PAGE", "authorized"]

Req = Request[Any, Any, Any]
MAX_BATCH = 1000
MAX_PAGE = 1000  # most events one query answers
Text = Annotated[str | None, QueryParameter()]


_IN_BATCH = re.compile(r"\$\.events\[(\d+)\]")


def _events(body: bytes, actor: Actor) -> list[bytes]:
    """The canonical entries of a body: one event object, or ``{"events": [...]}`` alone, each
    stamped as ``rlhf-audit append`` stamps a line (:func:`stamped`): when it was recorded and
    who sent it (``at``, ``actor``, ``role``: whatever it said), ``v`` its own, else 1.

    The body is parsed and each event checked by the ledger's one rule for events from outside
    (``ledger.canonical``: RFC 8785 / I-JSON numbers, no duplicate keys, the kind grammar, no
    kinds the server records itself), as ``rlhf-audit append`` does line by line.
    """
    try:
        doc = decode_event(body)
    except EntryError as e:
        in_batch = _IN_BATCH.match(str(e))  # the parser names the path: name the event, as below
        raise EntryError(f"{f'event {in_batch[1]}' if in_batch else 'the body'}: {e} "
                         "(nothing was appended)") from None
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
            data = encode_event(stamped(event, actor), submitted=True)
        except EntryError as e:
            raise EntryError(f"event {i}: {e} (nothing was appended)") from None
        entries.append(data)
    return entries


def _time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 time from a query parameter (no offset: UTC), or a 400 that says so."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ClientException(f"{name} must be an RFC 3339 time such as 2026-11-25T10:31:00Z, "
                              f"not {value[:40]!r}") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _rfc3339(t: datetime | None) -> str | None:
    if t is None:
        return None
    spec = "milliseconds" if t.microsecond % 1000 == 0 else "microseconds"
    return t.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def _event_json(e: IndexedEvent) -> dict[str, Any]:
    return {"leaf_index": e.index, "leaf_hash": b64(hashlib.sha256(b"\x00" + e.data).digest()),
            "kind": e.kind, "at": _rfc3339(e.at), "event": e.event}


class EventsController(Controller):
    path = "/api/v1"
    guards = [authorized]

    @get("/whoami")
    async def whoami(self, principal: PrincipalDep) -> dict[str, Any]:
        """The token's account, role and scopes."""
        p = principal
        return {"account": p.account, "role": p.role, "scopes": sorted(p.scopes)}

    @post("/events", opt={"scope": "events:write"})
    async def append(
        self, request: Req, log: LogDep, principal: PrincipalDep, caller: CallerDep,
        wait: Annotated[bool, QueryParameter()] = False,
        timeout: Annotated[float, QueryParameter(gt=0, le=30)] = 10.0,
    ) -> Response[dict[str, Any]]:
        """Append one event or a batch (all or nothing); with ``wait=true`` also prove inclusion."""
        sequenced = await log.append_entries(_events(await request.body(), caller))
        entries: list[dict[str, Any]] = [
            {"leaf_index": s.leaf_index, "leaf_hash": base64.b64encode(s.leaf_hash).decode()}
            for s in sequenced]
        headers = {"X-Recorded-By": principal.account, "Cache-Control": "no-store"}
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

    @get("/events", opt={"scope": "events:read"})
    async def list_events(
        self, event_index: IndexDep,
        kind: Annotated[list[str] | None, QueryParameter()] = None,
        run: Text = None, dataset: Text = None,
        dataset_version: Annotated[int | None, QueryParameter(ge=0, le=MAX_INT)] = None,
        model: Text = None, actor: Text = None, annotator: Text = None,
        since: Text = None, until: Text = None,
        after: Annotated[int | None, QueryParameter(ge=0, le=MAX_INT)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
        order: Annotated[Literal["asc", "desc"], QueryParameter()] = "asc",
    ) -> Response[dict[str, Any]]:
        """Events by kind (repeatable), run, dataset, model, actor, annotator and time, paged.

        ``since`` is inclusive, ``until`` exclusive. ``next`` is the cursor for the following
        page (pass it as ``after`` with the same filters and order), null on the last page.
        """
        start, end = _time(since, "since"), _time(until, "until")
        if start is not None and end is not None and start > end:
            raise ClientException("since must not be later than until")
        found = await event_index.query(
            kind=kind, run=run, dataset=dataset, dataset_version=dataset_version, model=model,
            actor=actor, annotator=annotator, since=start, until=end, after=after,
            limit=limit + 1, descending=order == "desc")
        page = found[:limit]
        more = len(found) > limit
        return Response({"events": [_event_json(e) for e in page],
                         "next": page[-1].index if more else None},
                        headers={"Cache-Control": "no-store"})

    @get("/events/{index:int}", opt={"scope": "events:read"})
    async def get_event(
        self, event_index: IndexDep, index: Annotated[int, PathParameter(ge=0, le=MAX_INT)]
    ) -> Response[dict[str, Any]]:
        """One event by its leaf index."""
        found = await event_index.get(index)
        if found is None:
            raise NotFoundException(f"the log has no entry {index}")
        return Response(_event_json(found), headers={"Cache-Control": "no-store"})
