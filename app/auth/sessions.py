"""Server-side portal sessions: the cookie holds a random id, the data stays on the server.

Litestar's :class:`ServerSideSessionConfig` with a store: memory (one server process) or Redis
when ``RLHF_AUDIT_REDIS_URL`` is set (several processes; sessions survive a restart). Cookie
``rlhf_session``: HttpOnly, SameSite=Lax, ``Secure`` when ``RLHF_AUDIT_SECURE_COOKIES=1`` (set it
behind HTTPS).

Three changes to Litestar's backend: a request without a session neither writes the store nor
sets a cookie (Litestar would store an empty session for every API call and tile); a session
read but not changed is not written again; and sign-in gets a fresh id (:func:`rotate`), so an
id planted before sign-in (session fixation) is worth nothing after it.

Session data: ``aid`` (account id), ``name``, ``pw`` (a tag of the password hash: a new password
ends older sessions), ``iat`` and ``seen`` (epoch seconds). Expiry is
enforced on every request from the run-time settings ``session_idle_seconds`` and
``session_max_seconds`` (:func:`expired`); the store's own TTL is only the upper bound.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.types import Message, ScopeSession

from ..core.settings import Settings

__all__ = ["ENV_REDIS_URL", "SESSION_COOKIE", "STORE_NAME", "expired", "rotate", "session_config",
           "session_store"]

ENV_REDIS_URL = "RLHF_AUDIT_REDIS_URL"
ENV_SECURE = "RLHF_AUDIT_SECURE_COOKIES"
SESSION_COOKIE = "rlhf_session"
STORE_NAME = "sessions"
MAX_AGE = 30 * 86400  # the largest session_max_seconds accepted
_ROTATE = "rlhf_auth.new_session_id"
_LOADED = "rlhf_auth.loaded_session"
_NOT_FOR_BROWSERS = ["^/log/", "^/metrics", "^/healthz", "^/readyz", "^/schema", "^/static/"]


class _Backend(ServerSideSessionBackend):
    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        rotated = connection.scope.get(_ROTATE)  # type: ignore[misc]
        return str(rotated) if rotated else super().get_session_id(connection)

    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        data = await super().load_from_connection(connection)
        connection.scope[_LOADED] = dict(data)  # type: ignore[literal-required]
        return data

    async def store_in_message(self, scope_session: ScopeSession, message: Message,
                               connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        cookie = connection.cookies.get(self.config.key)
        had_cookie = bool(cookie) and cookie != "null"
        rotated = bool(connection.scope.get(_ROTATE))  # type: ignore[misc]
        if not scope_session:  # none, or ended
            if had_cookie and not rotated:
                from litestar.types import Empty

                await super().store_in_message(Empty, message, connection)  # delete, expire cookie
            return
        if not rotated and scope_session == connection.scope.get(_LOADED):  # type: ignore[misc]
            return
        await super().store_in_message(scope_session, message, connection)


class _Config(ServerSideSessionConfig):
    _backend_class = _Backend


def session_store(settings: Settings) -> Store:
    """Redis when ``RLHF_AUDIT_REDIS_URL`` is set, else memory (one process)."""
    url = settings.redis_url
    if url:
        from litestar.stores.redis import RedisStore

        return RedisStore.with_client(url=url, namespace="rlhf_audit_sessions")
    return MemoryStore()


def session_config(settings: Settings) -> ServerSideSessionConfig:
    return _Config(key=SESSION_COOKIE, store=STORE_NAME, max_age=MAX_AGE, httponly=True, samesite="lax",
                   secure=settings.secure_cookies,
                   exclude=_NOT_FOR_BROWSERS)


async def rotate(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Give this connection a fresh session id, dropping the old session (call at sign-in)."""
    old = connection.cookies.get(SESSION_COOKIE)
    if old and old != "null":
        await connection.app.stores.get(STORE_NAME).delete(old)
    connection.scope[_ROTATE] = secrets.token_hex(32)  # type: ignore[literal-required]


def expired(data: dict[str, Any], idle: float, absolute: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    try:
        return now - float(data["seen"]) > idle or now - float(data["iat"]) > absolute
    except (KeyError, TypeError, ValueError):
        return True
