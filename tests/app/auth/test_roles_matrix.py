"""Roles x endpoints: every route of the app, as each kind of caller, gets exactly what its declared
permission says (401 without credentials, 403 without the scope or role, through otherwise).

The routes are enumerated from the app, so a new endpoint is checked the day it appears, and one
that declares no permission (no ``app.auth`` guard, no ``opt={"public": True}``) fails here unless
it is one of the public read paths listed below. Allowed calls carry made-up path values and an
empty body: guards run before any of that is read, so they end in 2xx/4xx but never 401/403.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from app.accounts import ROLE_SCOPES, create_account
from app.auth import declared_permission
from app.core.database import Database
from app.core.keyring import Keyring
from app.server.core import create_app
from ledger.log import Log
from tests.support.accounts import PASSWORD, auth, bootstrap
from tests.support.asgi import running
from tests.support.sessions import csrf, sign_in

# Public by design (auditors need no account): the transparency log, probes, metrics, the schema.
PUBLIC_PREFIXES = ("/log/", "/healthz", "/readyz", "/metrics", "/schema", "/static/")
CALLERS: list[tuple[str, str, list[str] | None]] = [
    # label, role, token scopes (None: the role's)
    ("admin", "admin", None),
    ("overseer", "overseer", None),
    ("operator", "operator", None),
    ("auditor", "auditor", None),
    ("service-writer", "service", ["events:write"]),
    ("service-reader", "service", ["read", "events:read"]),
]
# The policy itself, pinned for the endpoints whose permission is this package's to set.
PINNED = {
    ("GET", "/api/v1/accounts"): {"admin"},
    ("POST", "/api/v1/accounts"): {"admin"},
    ("PUT", "/api/v1/config"): {"admin"},
    ("GET", "/api/v1/config"): {"admin"},
    ("POST", "/api/v1/events"): {"admin", "overseer", "operator", "service-writer"},
    ("GET", "/api/v1/whoami"): {c[0] for c in CALLERS},
    ("POST", "/api/v1/incidents"): {"admin", "overseer"},  # an Art. 73 freeze is an oversight act
    ("GET", "/api/v1/incidents"): {"admin", "overseer", "operator", "auditor", "service-reader"},
    ("POST", "/reports/incidents"): {"admin", "overseer"},  # the portal's freeze form, as the API
}


def _routes(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                out.append((method, route.path, handler))
    return out


def _concrete(path: str) -> str:
    """Made-up values for the path parameters: an int, or a name nothing has."""
    return re.sub(r"\{(\w+):(\w+)\}", lambda m: "7" if m.group(2) == "int" else "nothing-here", path)


def _expected(permission: dict[str, Any], role: str, scopes: frozenset[str]) -> bool:
    scope, roles = permission.get("scope"), permission.get("roles")
    return (scope is None or scope in scopes) and (roles is None or role in roles)


def _refused_for_lack_of_credentials(r: httpx.Response) -> bool:
    """401, or the portal's way of saying it: a redirect to the sign-in page."""
    return r.status_code == 401 or (r.status_code in (302, 303) and "/login" in r.headers.get("location", ""))


def test_every_route_declares_its_permission() -> None:
    undeclared = [f"{method} {path}" for method, path, handler in _routes(create_app())
                  if not path.startswith(PUBLIC_PREFIXES) and declared_permission(handler) is None]
    assert not undeclared, (
        "these routes declare no permission; guard them with app.auth (login_required, require_scope, "
        "require_role, authorized + opt) or mark them opt={'public': True}:\n" + "\n".join(undeclared))


async def _call(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, _concrete(path), json=body, headers=headers)


async def test_roles_by_token(log: Log, keyring: Keyring) -> None:
    tokens = {label: await bootstrap(log, keyring, label, role, scopes) for label, role, scopes in CALLERS}
    async with running(log, keyring) as (app, client):
        granted = {label: ROLE_SCOPES[role] if scopes is None else frozenset(scopes)
                   for label, role, scopes in CALLERS}
        checked, wrong = 0, []
        allowed_by: dict[tuple[str, str], set[str]] = {}
        for method, path, handler in _routes(app):
            permission = declared_permission(handler)
            if permission is None or permission.get("public"):
                continue
            r = await _call(client, method, path, {})
            if not _refused_for_lack_of_credentials(r):
                wrong.append(f"{method} {path} without credentials -> {r.status_code}")
            for label, role, _ in CALLERS:
                r = await _call(client, method, path, auth(tokens[label]))
                checked += 1
                if _expected(permission, role, granted[label]):
                    allowed_by.setdefault((method, path), set()).add(label)
                    if r.status_code in (401, 403):
                        wrong.append(f"{method} {path} as {label} -> {r.status_code} (should pass): "
                                     f"{r.text[:200]}")
                elif r.status_code != 403:
                    wrong.append(f"{method} {path} as {label} -> {r.status_code} (should be 403)")
        assert not wrong, "\n".join(wrong)
        assert checked >= 6 * 15  # the accounts, config and events endpoints at least
        for key, who in PINNED.items():
            assert allowed_by.get(key, set()) == who, (key, allowed_by.get(key))


async def test_roles_by_session(db: Database, log: Log, keyring: Keyring) -> None:
    """The same guards for portal sessions (with their CSRF token on writes); an admin without a
    second factor gets nothing but enrolment."""
    for name, role in (("aud", "auditor"), ("op", "operator"), ("ada", "admin")):
        await create_account(db, log, name, role, PASSWORD, pseudonymizer=keyring.pseudonymizer)
    async with running(log, keyring) as (app, _):
        routes = [(m, p, declared_permission(h)) for m, p, h in _routes(app)]
        routes = [(m, p, perm) for m, p, perm in routes if perm is not None and not perm.get("public")]
        wrong = []
        for name, role in (("aud", "auditor"), ("op", "operator"), ("ada", "admin")):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await sign_in(client, name)).status_code == 200
                headers = {"X-CSRFToken": await csrf(client)}
                for method, path, permission in routes:
                    r = await _call(client, method, path, headers)
                    if role == "admin":  # no second factor yet: only what enrolment_allowed lets through
                        ok = bool(permission.get("enrolment"))
                    else:
                        ok = _expected(permission, role, ROLE_SCOPES[role])
                    if ok and r.status_code in (401, 403):
                        wrong.append(f"{method} {path} as {role} session -> {r.status_code}: {r.text[:200]}")
                    if not ok and r.status_code != 403:
                        wrong.append(f"{method} {path} as {role} session -> {r.status_code} (should be 403)")
        assert not wrong, "\n".join(wrong)
