"""Who is asking: one lookup for Bearer tokens and portal sessions, and the guards built on it.

:func:`current_principal` answers for any connection. With an ``Authorization`` header the token
alone decides (a bad token is no one, even if a session cookie came along: that is what makes
the CSRF exemption of Bearer requests sound); without one, the portal session does, re-reading
the account on every request so a disabled account, a changed role or a new password takes effect
at once, and ending sessions that were idle or alive too long (run-time settings).

Guards (Litestar guards: plain functions raising 401/403 problem details):

- :func:`login_required`: anyone signed in or holding a valid token;
- :func:`enrolment_allowed`: the same, and also an admin or overseer still without a second
  factor (for the enrolment pages only);
- :func:`require_scope` ``(scope)``: a token granted ``scope``, or a session whose role has it;
- :func:`require_role` ``(*roles)``: the account's role is one of ``roles``;
- :func:`authorized`: reads the handler's ``opt`` (``scope``, ``roles``): the API controllers'
  one guard, ``guards=[authorized]`` on the controller and ``opt={"scope": ...}`` per handler.

An admin or overseer signed in without a second factor enrolled (``needs_totp_enrolment``) passes
:func:`enrolment_allowed` only (a 403 elsewhere), so the portal can send them to enrolment;
``authorized`` handlers that must serve them say ``opt={"totp_enrolment": True}``. Each guard
carries its ``permission`` (a dict: ``login``, ``scope``, ``roles``, ``enrolment``; set one on your
own guards too), and :func:`declared_permission` reads a handler's, so a test can check every
route declares one (``opt={"public": True}`` for the public ones).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from ..accounts import Principal, account_by_id, authenticate_token
from ..accounts.service import TOKEN_CACHE_SECONDS
from ..config.runtime import settings_of
from ..core import deps
from ..core.database import Database
from ..core.roles import ROLE_SCOPES, TOTP_ROLES
from .sessions import expired

__all__ = [
    "Guard",
    "authorized",
    "current_principal",
    "declared_permission",
    "enrolment_allowed",
    "login_required",
    "permits",
    "require_role",
    "require_scope",
]

Conn = ASGIConnection[Any, Any, Any, Any]
Guard = Callable[[Conn, BaseRouteHandler], Awaitable[None]]
# TOTP_ROLES (a second factor is expected of these roles): the roles table's, app/core/roles.py
_BEARER = {"WWW-Authenticate": 'Bearer realm="rlhf-audit"'}
_CACHE = "rlhf_auth.principal"


def _db(connection: Conn) -> Database:
    """The app's database (a guard runs before dependencies are resolved)."""
    return deps.db_of(connection)


def _token_cache_seconds(connection: Conn) -> float:
    """The app's ``token_cache_seconds`` (``create_app`` keeps its settings on the state)."""
    settings = getattr(connection.app.state, "app_settings", None)
    return TOKEN_CACHE_SECONDS if settings is None else float(settings.token_cache_seconds)


def _session(connection: Conn) -> dict[str, Any] | None:
    data = connection.scope.get("session")  # type: ignore[misc]
    return data if isinstance(data, dict) and "aid" in data else None


async def _from_session(connection: Conn) -> Principal | None:
    data = _session(connection)
    if data is None:
        return None
    settings = settings_of(connection.app.state)
    idle, absolute = settings["session_idle_seconds"], settings["session_max_seconds"]
    now = time.time()
    info = None
    if not expired(data, idle, absolute, now) and isinstance(data.get("aid"), int):
        info = await account_by_id(_db(connection), data["aid"])
    if info is None or info.disabled or info.name != data.get("name") or info.password_tag != data.get("pw"):
        connection.scope["session"] = {}  # type: ignore[typeddict-unknown-key]  # ends it, drops the cookie
        return None
    if now - float(data["seen"]) >= min(60.0, idle / 4):
        data["seen"] = now  # the session middleware stores the change
    needs = info.role in TOTP_ROLES and not info.totp_enrolled
    scopes = frozenset() if needs else ROLE_SCOPES.get(info.role, frozenset())
    return Principal(info.id, info.name, info.role, scopes, None, via="session", needs_totp_enrolment=needs)


async def _authenticate(connection: Conn) -> Principal:
    """The principal, or a 401 saying what is wrong with the credentials."""
    cached = connection.scope.get(_CACHE)  # type: ignore[misc]
    if isinstance(cached, Principal):
        return cached
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("use Authorization: Bearer <token>", headers=_BEARER)
        principal = await authenticate_token(_db(connection), token.strip(),
                                             cache_seconds=_token_cache_seconds(connection))
        if principal is None:
            raise NotAuthorizedException("the API token is invalid, expired or revoked", headers=_BEARER)
    else:
        found = await _from_session(connection)
        if found is None:
            raise NotAuthorizedException("sign in, or send an API token: Authorization: Bearer rat_...",
                                         headers=_BEARER)
        principal = found
    connection.scope[_CACHE] = principal  # type: ignore[literal-required]
    return principal


async def current_principal(connection: Conn) -> Principal | None:
    """Who the request speaks for (Bearer token, else portal session), or None."""
    try:
        return await _authenticate(connection)
    except NotAuthorizedException:
        return None


def permits(principal: Principal, scope: str | None = None, roles: tuple[str, ...] | None = None) -> bool:
    """Whether ``principal`` may do what needs ``scope`` and one of ``roles`` (for showing buttons)."""
    if principal.needs_totp_enrolment:
        return False
    return (scope is None or scope in principal.scopes) and (roles is None or principal.role in roles)


def _check(principal: Principal, scope: str | None, roles: tuple[str, ...] | None, enrolment: bool) -> None:
    if principal.needs_totp_enrolment and not enrolment:
        raise PermissionDeniedException("enrol a second factor first (POST /auth/totp/enroll): "
                                        f"{principal.role} accounts need one")
    holder = "token" if principal.via == "token" else f"{principal.role} account"
    if roles is not None and principal.role not in roles:  # first: the more telling refusal
        raise PermissionDeniedException(f"only {' or '.join(roles)} accounts may do this, "
                                        f"not a {principal.role}")
    if scope is not None and scope not in principal.scopes:
        raise PermissionDeniedException(f"this {holder} lacks the {scope!r} scope")


async def authorized(connection: Conn, handler: BaseRouteHandler) -> None:
    """Guard: signed in or a valid token, with the handler's ``opt`` ``scope`` and ``roles``."""
    principal = await _authenticate(connection)
    roles = handler.opt.get("roles")
    _check(principal, handler.opt.get("scope"), tuple(roles) if roles else None,
           bool(handler.opt.get("totp_enrolment")))
    connection.state.principal = principal


authorized.permission = "opt"  # type: ignore[attr-defined]


async def login_required(connection: Conn, handler: BaseRouteHandler) -> None:
    """Guard: anyone signed in or holding a valid token (with the second factor their role needs)."""
    principal = await _authenticate(connection)
    _check(principal, None, None, False)
    connection.state.principal = principal


login_required.permission = {"login": True}  # type: ignore[attr-defined]


async def enrolment_allowed(connection: Conn, handler: BaseRouteHandler) -> None:
    """Guard: anyone signed in, second factor still pending included (the enrolment pages)."""
    connection.state.principal = await _authenticate(connection)


enrolment_allowed.permission = {"login": True, "enrolment": True}  # type: ignore[attr-defined]


def require_scope(scope: str) -> Guard:
    """A guard: the principal holds ``scope``."""

    async def guard(connection: Conn, handler: BaseRouteHandler) -> None:
        principal = await _authenticate(connection)
        _check(principal, scope, None, False)
        connection.state.principal = principal

    guard.permission = {"scope": scope}  # type: ignore[attr-defined]
    return guard


def require_role(*roles: str) -> Guard:
    """A guard: the principal's account has one of ``roles``."""

    async def guard(connection: Conn, handler: BaseRouteHandler) -> None:
        principal = await _authenticate(connection)
        _check(principal, None, roles, False)
        connection.state.principal = principal

    guard.permission = {"roles": tuple(roles)}  # type: ignore[attr-defined]
    return guard


def declared_permission(handler: BaseRouteHandler) -> dict[str, Any] | None:
    """What a handler requires: ``{"public": True}``, or ``login`` with any of ``scope``, ``roles``
    and ``enrolment`` (open before the second factor); None when it declares nothing."""
    if handler.opt.get("public"):
        return {"public": True}
    found: dict[str, Any] = {}
    for guard in handler.resolve_guards():
        permission = getattr(guard, "permission", None)
        if permission == "opt":
            found["login"] = True
            if handler.opt.get("scope"):
                found["scope"] = handler.opt["scope"]
            if handler.opt.get("roles"):
                found["roles"] = tuple(handler.opt["roles"])
            if handler.opt.get("totp_enrolment"):
                found["enrolment"] = True
        elif isinstance(permission, dict):
            found.update(permission)
            found["login"] = True
    return found or None
