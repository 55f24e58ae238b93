"""``POST /api/v1/bundles``: build an evidence bundle for a scope and download it.

Any token with the ``read`` scope may ask (auditors are who bundles are for). The answer is the
zip itself (``application/zip``); building 10,000 entries takes well under the 5 s target, so
no asynchronous job is needed. The zip is archived in the object store and its creation is
recorded on the log (``bundle.created``, with the archive's key and SHA-256) under the caller's
pseudonym.
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Controller, Request, Response, post
from litestar.exceptions import ClientException

from ..auth.principal import authorized
from ..core.deps import AppSettingsDep, CallerDep, DbDep, IndexDep, KeyringDep, LogDep, objects_of
from ..core.keyring import Keyring
from .builder import build_bundle
from .dsse import public_key_pem
from .scope import Scope

__all__ = ["BundlesController", "evidence_key_pem"]

Req = Request[Any, Any, Any]


def evidence_key_pem(keyring: Keyring) -> str:
    """The evidence-signing public key as PEM, for ``GET /log/v1/keys`` (``evidence_key``)."""
    return public_key_pem(keyring.evidence_signer.public_key()).decode()


def _scope(raw: bytes) -> Scope:
    try:
        doc = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as e:
        raise ClientException(f"the body is not JSON: {e}") from None
    if isinstance(doc, dict) and set(doc) == {"scope"}:
        doc = doc["scope"]
    return Scope.from_json(doc)  # ScopeError is Invalid: a 400 problem detail


class BundlesController(Controller):
    path = "/api/v1"
    guards = [authorized]

    @post("/bundles", opt={"scope": "read"}, status_code=200)
    async def create(self, request: Req, db: DbDep, log: LogDep, keyring: KeyringDep, event_index: IndexDep,
                     caller: CallerDep, app_settings: AppSettingsDep) -> Response[bytes]:
        """Build the bundle for the scope in the body, e.g. ``{"kind": "run", "run": "run_..."}``."""
        scope = _scope(await request.body())
        bundle = await build_bundle(db, log, scope, evidence_key=keyring.evidence_signer,
                                    actor=caller, index=event_index,
                                    objects=objects_of(request), settings=app_settings)
        return Response(bundle.data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{bundle.filename}"',
            "X-Manifest-SHA256": bundle.manifest_sha256, "X-Tree-Size": str(bundle.tree_size),
            "X-Entries": str(bundle.entries), "Cache-Control": "no-store"})
