"""``/api/v1/datasets`` and ``/api/v1/privacy/erasures``: import, list, show, budgets, erasure.

Behind the Bearer guard of :mod:`app.events.api`. Importing needs the ``events:write`` scope
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

from app.accounts import Principal
from app.core.roles import PRIVACY_ADMINS
from app.events.recording import Actor
from app.keys.keyring import Keyring
from ledger.home import LogHome
from ledger.log import Log

from .budget import set_budget
from .erasure import erase_subject
from .importer import import_dataset
from .versions import describe_dataset, list_datasets

try:  # the generalised guard (tokens and portal sessions), where it exists
    from app.auth.principal import authorized
except ImportError:  # pragma: no cover - the Bearer-only guard it grew from
    from app.events.api import authorized

__all__ = ["DatasetsController", "keyring_of"]

Req = Request[Any, Any, Any]
Name = Annotated[str, PathParameter()]


def keyring_of(request: Req) -> Keyring:
    """The app's keyring (``create_app`` puts it on the state), else the default home's."""
    keyring: Keyring | None = getattr(request.app.state, "keyring", None)
    if keyring is None:
        keyring = request.app.state.keyring = Keyring.of(LogHome.resolve(None))
    return keyring


def _actor(request: Req) -> Actor:
    p: Principal = request.state.principal
    return Actor.of_account(keyring_of(request).pseudonymizer, p.account, p.role)


def _admin(request: Req, what: str) -> None:
    if request.state.principal.role not in PRIVACY_ADMINS:
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
    async def index(self, request: Req) -> dict[str, Any]:
        """Every dataset: its latest version and its privacy budget."""
        return {"datasets": await list_datasets(request.app.state.log)}

    @get("/datasets/{name:str}", opt={"scope": "read"})
    async def show(self, request: Req, name: Name) -> dict[str, Any]:
        """Versions with datasheets, annotator pseudonym statistics, budget left."""
        return await describe_dataset(request.app.state.log, name)

    @post("/datasets/{name:str}/versions", opt={"scope": "events:write"})
    async def import_version(self, request: Req, name: Name) -> Response[dict[str, Any]]:
        """Import a JSON Lines file as the next version (201), or find it imported already (200)."""
        data, sheet = await _upload(request)
        log: Log = request.app.state.log
        result = await import_dataset(log, keyring_of(request), name, data, datasheet=sheet,
                                      actor=_actor(request),
                                      objects=getattr(request.app.state, "objects", None))
        body = {"dataset": result.dataset, "version": result.version, "records": result.records,
                "annotators": result.annotators, "root": result.root,
                "source_sha256": result.source_sha256, "leaf_index": result.leaf_index,
                "created": result.created}
        return Response(body, status_code=201 if result.created else 200)

    @put("/datasets/{name:str}/budget", opt={"roles": PRIVACY_ADMINS, "scope": "privacy:admin"})
    async def budget(self, request: Req, name: Name) -> dict[str, Any]:
        """Set the dataset's total privacy budget: ``{"epsilon_total": ..., "delta": ...}`` (admin)."""
        _admin(request, "set a privacy budget")
        doc = _json_object(await request.body(), "the body")
        if "epsilon_total" not in doc or "delta" not in doc:
            raise ClientException('the body is {"epsilon_total": <number>, "delta": <number>}')
        b = await set_budget(request.app.state.log, name, doc["epsilon_total"], doc["delta"], _actor(request))
        return {"dataset": b.dataset, "epsilon_total": b.epsilon_total, "delta": b.delta, "spent": b.spent,
                "reserved": b.reserved, "remaining": b.remaining}

    @post("/privacy/erasures", opt={"roles": PRIVACY_ADMINS, "scope": "privacy:admin"})
    async def erase(self, request: Req) -> Response[dict[str, Any]]:
        """Erase one data subject: ``{"annotator", "legal_basis", "request_ref"?}`` (admin)."""
        _admin(request, "erase a data subject")
        doc = _json_object(await request.body(), "the body")
        annotator, basis, ref = doc.get("annotator"), doc.get("legal_basis"), doc.get("request_ref")
        if not isinstance(annotator, str) or not isinstance(basis, str) or not (
                ref is None or isinstance(ref, str)):
            raise ClientException('the body is {"annotator": "pseud:...", "legal_basis": "...", '
                                  '"request_ref": "..." (optional)}')
        done = await erase_subject(request.app.state.log, annotator, legal_basis=basis,
                                   request_ref=ref, actor=_actor(request))
        return Response({"annotator": done.annotator, "records": done.records,
                         "leaf_index": done.leaf_index}, status_code=201)
