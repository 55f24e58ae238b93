"""Who may do what: API tokens and portal sessions, one principal lookup, guards, CSRF, throttling.

For controllers and the portal::

    from app.auth import current_principal, require_scope, require_role, login_required

- ``await current_principal(connection)`` -> :class:`app.accounts.Principal` or None: the Bearer
  token when an ``Authorization`` header is sent (the session is then ignored), else the portal
  session. ``principal.via`` is ``token`` or ``session``; ``principal.needs_totp_enrolment`` is
  set for an admin or overseer signed in without a second factor (send them to enrolment).
- Guards (Litestar ``guards=[...]``): ``login_required``; ``enrolment_allowed`` (also lets in an
  admin/overseer whose second factor is pending: enrolment pages); ``require_scope("events:write")``;
  ``require_role("overseer", "admin")``; ``authorized`` (reads ``opt={"scope": ..., "roles":
  (...)}`` of each handler; the API controllers use it). They put the principal on
  ``request.state.principal``; no credentials is a 401, too little a 403 (problem details). A
  portal page that wants a redirect to ``/login`` instead handles ``NotAuthorizedException``.
- ``permits(principal, scope=..., roles=...)``: for showing only the actions a user may take.
- Every route declares its permission through these guards, or ``opt={"public": True}``:
  ``tests/app/auth/test_roles_matrix.py`` fails for a route that does neither (``declared_permission``).
  A guard of your own declares what it checks as an attribute, e.g.
  ``my_guard.permission = {"login": True, "roles": ("overseer", "admin")}``.
- Sessions: cookie ``rlhf_session`` (server-side data; ``app.auth.sessions``); sign-in at
  ``POST /auth/login``, ``POST /auth/logout``, ``GET /auth/session``, TOTP at
  ``/auth/totp/enroll`` and ``/auth/totp/confirm`` (``app.auth.api``).
- CSRF (``app.auth.csrf``): cookie ``csrftoken``; send it back as the ``_csrf_token`` form field
  (templates: ``{{ csrf_input | safe }}``) or the ``X-CSRFToken`` header (htmx:
  ``hx-headers='{"X-CSRFToken": "{{ csrf_token() }}"}'``). Required on every POST/PUT/PATCH/DELETE
  that carries the session cookie, and on sign-in; Bearer requests are exempt.
- Rate limits (``app.auth.throttle``): failed sign-ins and write requests, 429 with Retry-After.

``create_app`` installs it all: :func:`middleware`, :func:`stores`, :class:`AuthController`.
"""

from __future__ import annotations

from litestar.middleware import DefineMiddleware
from litestar.stores.base import Store

from ..core.settings import Settings
from .api import AuthController
from .csrf import CSRF_COOKIE, CSRF_HEADER, CSRFGate
from .principal import (
    authorized,
    current_principal,
    declared_permission,
    enrolment_allowed,
    login_required,
    permits,
    require_role,
    require_scope,
)
from .sessions import SESSION_COOKIE, STORE_NAME, session_config, session_store
from .throttle import WindowCounter, WriteThrottle

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AuthController",
    "authorized",
    "current_principal",
    "declared_permission",
    "enrolment_allowed",
    "login_required",
    "middleware",
    "permits",
    "require_role",
    "require_scope",
    "stores",
]


def middleware(settings: Settings) -> list[DefineMiddleware]:
    """Sessions, then CSRF, then the write throttle (outermost first); one set per app."""
    return [
        session_config(settings).middleware,
        DefineMiddleware(CSRFGate, settings=settings),
        DefineMiddleware(WriteThrottle, counter=WindowCounter(), session_cookie=SESSION_COOKIE,
                         exempt=("/auth/login",)),
    ]


def stores(settings: Settings) -> dict[str, Store]:
    return {STORE_NAME: session_store(settings)}
