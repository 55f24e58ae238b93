"""``/api/v1/datasets`` and ``/api/v1/privacy/erasures``: import, list, show, budgets, erasure.

Behind the Bearer guard of :mod:`app.auth.principal`. Importing needs the ``events:write`` scope
(operators and admins hold it); reading needs ``read``; setting a budget and erasing a data
subject are for admins only. The acting account appears on the log as its pseudonym and role.
An import body is the JSON Lines file itself, or ``multipart/form-data`` with a ``file`` part
and an optional ``datasheet`` part (JSON).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, PermissionDeniedException
from litestar.params import PathParameter

# Litestar reads the handlers' annotations at run time: these are real imports.
from app.accounts import Principal
from app.core.roles import PRIVACY_ADMINS

from ..auth.principal import authorized  # tokens and portal sessions
from ..core.deps import CallerDep, DbDep, KeyringDep, LogDep, PrincipalDep, objects_of
from .budget import set_budget
from .erasure import erase_subject
from .importer import import_dataset
from .versions import describe_dataset, list_datasets

__all__ = ["DatasetsController"]

Req = Request[Any, Any, Any]
Name = Annotated[str, PathParameter()]


def _admin(principal: Principal, what: str) -> None:
    if principal.role not in PRIVACY_ADMINS:
        raise PermissionDeniedException(f"only an admin may {what}")


def _json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ClientException(f"{what} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ClientException(f"{what} must be a JSON object")
    return doc


async def _part(value: Any) -> bytes:
    if isinstance(value, UploadFile):
        return await value.read()
    return value.encode() if isinstance(value, str) else bytes(value)


async def _upload(request: Req) -> tuple[bytes, dict[str, Any] | None]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await request.body(), None
    form = await request.form()
    if "file" not in form:
        raise ClientException("the multipart body needs a 'file' part holding the JSON Lines")
    data = await _part(form["file"])
    sheet = form.get("datasheet")
    return data, None if sheet is None else _json_object(await _part(sheet), "the datasheet part")


class DatasetsController(Controller):
    path = "/api/v1"
    guards = [authorized]

    @get("/datasets", opt={"scope": "read"})
    async def index(self, db: DbDep) -> dict[str, Any]:
        """Every dataset: its latest version and its privacy budget."""
        return {"datasets": await list_datasets(db)}

    @get("/datasets/{name:str}", opt={"scope": "read"})
    async def show(self, db: DbDep, name: Name) -> dict[str, Any]:
        """Versions with datasheets, annotator pseudonym statistics, budget left."""
        return await describe_dataset(db, name)

    @post("/datasets/{name:str}/versions", opt={"scope": "events:write"})
    async def import_version(self, request: Req, db: DbDep, log: LogDep, keyring: KeyringDep,
                             caller: CallerDep, name: Name) -> Response[dict[str, Any]]:
        """Import a JSON Lines file as the next version (201), or find it imported already (200)."""
        data, sheet = await _upload(request)
        result = await import_dataset(db, log, keyring, name, data, datasheet=sheet, actor=caller,
                                      objects=objects_of(request))
        body = {"dataset": result.dataset, "version": result.version, "records": result.records,
                "annotators": result.annotators, "root": result.root,
                "source_sha256": result.source_sha256, "leaf_index": result.leaf_index,
                "created": result.created}
        return Response(body, status_code=201 if result.created else 200)

    @put("/datasets/{name:str}/budget", opt={"roles": PRIVACY_ADMINS, "scope": "privacy:admin"})
    async def budget(self, request: Req, db: DbDep, log: LogDep, principal: PrincipalDep, caller: CallerDep,
                     name: Name) -> dict[str, Any]:
        """Set the dataset's total privacy budget: ``{"epsilon_total": ..., "delta": ...}`` (admin)."""
        _admin(principal, "set a privacy budget")
        doc = _json_object(await request.body(), "the body")
        if "epsilon_total" not in doc or "delta" not in doc:
            raise ClientException('the body is {"epsilon_total": <number>, "delta": <number>}')
        b = await set_budget(db, log, name, doc["epsilon_total"], doc["delta"], caller)
        return {"dataset": b.dataset, "epsilon_total": b.epsilon_total, "delta": b.delta, "spent": b.spent,
                "reserved": b.reserved, "remaining": b.remaining}

    @post("/privacy/erasures", opt={"roles": PRIVACY_ADMINS, "scope": "privacy:admin"})
    async def erase(self, request: Req, db: DbDep, log: LogDep, principal: PrincipalDep,
                    caller: CallerDep) -> Response[dict[str, Any]]:
        """Erase one data subject: ``{"annotator", "legal_basis", "request_ref"?}`` (admin)."""
        _admin(principal, "erase a data subject")
        doc = _json_object(await request.body(), "the body")
        annotator, basis, ref = doc.get("annotator"), doc.get("legal_basis"), doc.get("request_ref")
        if not isinstance(annotator, str) or not isinstance(basis, str) or not (
                ref is None or isinstance(ref, str)):
            raise ClientException('the body is {"annotator": "pseud:...", "legal_basis": "...", '
                                  '"request_ref": "..." (optional)}')
        done = await erase_subject(db, log, annotator, legal_basis=basis, request_ref=ref, actor=caller)
        return Response({"annotator": done.annotator, "records": done.records,
                         "leaf_index": done.leaf_index}, status_code=201)
