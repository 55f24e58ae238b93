"""Administration: accounts and roles, API tokens (shown once), privacy budgets, configuration.

Admins only. Every change goes through the owning module (``app.accounts``, ``app.datasets``,
``app.config.runtime``), which validates it and records it on the log with the admin as actor; a
refusal is shown in the page with the module's own message. Every change redirects (POST-redirect-
GET): a new token's secret is kept in the server-side session and rendered once, on the page the
POST redirects to, and never again.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Annotated, Any

import orjson
from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.response import Redirect, Template

from ledger.errors import LedgerError

from .. import accounts
from ..accounts import MAX_TOKEN_DAYS
from ..config.runtime import SETTINGS, change, settings_of
from ..core.deps import keyring_of
from ..core.errors import AppError
from ..core.problems import classify
from ..core.roles import ADMINS, ALL_SCOPES, ROLES, is_service
from ..datasets import list_datasets, set_budget
from .web import Req, actor_of, db_of, log_of, page, redirect, role_guard

__all__ = ["AdminController"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
_NEW_TOKEN = "_admin_new_token"  # the session key holding a new token's secret until the next page


async def _context(request: Req) -> dict[str, Any]:
    db = db_of(request)
    listed = await accounts.list_accounts(db)
    tokens = {a.name: await accounts.list_tokens(db, a.name) for a in listed}
    settings = getattr(request.app.state, "settings", None)
    return {"accounts": listed, "tokens": tokens, "roles": ROLES, "scopes": ALL_SCOPES,
            "datasets": await list_datasets(db),
            # each value as the JSON the form posts back; autoescape writes it into the attribute
            # (``|tojson`` would not: its output is marked safe and keeps its double quotes)
            "settings": None if settings is None else {
                k: json.dumps(v, ensure_ascii=False) for k, v in settings.snapshot().items()},
            "descriptions": {k: s.description for k, s in SETTINGS.items()}}


def _token_lifetime(days: str) -> timedelta | None:
    """The form's expiry, under the bound of every entrance (``app.accounts.MAX_TOKEN_DAYS``);
    blank is never."""
    if not days:
        return None
    try:
        n = float(days)
    except ValueError:
        n = math.nan
    if not 0 < n <= MAX_TOKEN_DAYS:  # NaN and the infinities fail this too
        raise ValueError(f"the expiry must be a number of days above 0 and at most {MAX_TOKEN_DAYS}, "
                         "or blank for a token that never expires")
    return timedelta(days=n)


async def _change(request: Req, what: str, data: dict[str, str]) -> Any:  # noqa: C901 (one branch per form)
    """Do the change the form asks for; returns the message for the page (or the new token)."""
    db, log, by = db_of(request), log_of(request), actor_of(request)
    p = keyring_of(request).pseudonymizer
    name = data.get("name", "").strip()
    if what == "create_account":
        role = data.get("role", "")
        password = None if is_service(role) else data.get("password", "")
        await accounts.create_account(db, log, name, role, password, pseudonymizer=p, by=by)
        return f"Account {name} ({role}) created."
    if what == "set_role":
        await accounts.set_role(db, log, name, data.get("role", ""), pseudonymizer=p, by=by)
        return f"{name} is now {data.get('role')}."
    if what in ("disable", "enable"):
        await accounts.set_disabled(db, log, name, what == "disable", pseudonymizer=p, by=by)
        return f"{name} {what}d."
    if what == "create_token":
        expires = _token_lifetime(data.get("expires_days", "").strip())
        scopes = [s for s in data.get("scopes", "").split() if s] or None
        return await accounts.create_token(db, log, name, scopes, expires, pseudonymizer=p, by=by)
    if what == "revoke_token":
        await accounts.revoke_token(db, log, data.get("prefix", ""), pseudonymizer=p, by=by)
        return f"Token {data.get('prefix')} revoked."
    if what == "set_budget":
        try:
            total, delta = float(data.get("epsilon_total", "")), float(data.get("delta", "") or 1e-5)
        except ValueError:
            raise ValueError("ε and δ must be numbers") from None
        await set_budget(db, log, data.get("dataset", ""), total, delta, by)
        return f"Budget of {data.get('dataset')} set to ε {total:g} (δ {delta:g})."
    if what == "setting":
        key, raw = data.get("key", ""), data.get("value", "").strip()
        try:
            value = orjson.loads(raw) if raw else None  # as the API: no NaN, Infinity, deep nesting
        except json.JSONDecodeError:
            value = raw  # a bare string (a URL)
        changed = await change(settings_of(request.app.state), key, value, by=by)
        return f"{key} changed." if changed else f"{key} already had that value."
    raise ValueError(f"unknown administration action {what!r}")


class AdminController(Controller):
    path = "/admin"
    guards = [role_guard(*ADMINS)]

    @get("/")
    async def admin(self, request: Req) -> Template:
        session = request.scope.get("session")
        created = session.pop(_NEW_TOKEN, None) if isinstance(session, dict) else None
        return page(request, "admin.html", title="Administration", created_token=created,
                    token_account=(created or {}).get("account", ""), **await _context(request))

    @post("/{what:str}")
    async def change(self, request: Req, what: Annotated[str, PathParameter()],
                     data: Form) -> Template | Redirect:
        try:
            done = await _change(request, what, data)
        except (ValueError, AppError, LedgerError) as e:
            status, detail = (400, str(e)) if isinstance(e, ValueError) else classify(e)
            if status >= 500:  # the database failed: the error page, without the driver's words
                raise
            return page(request, "admin.html", status_code=status, error=detail, form=data,
                        **await _context(request))
        if isinstance(done, str):
            return redirect("/admin", done, "success", request)
        # POST-redirect-GET: the secret waits in the (server-side) session for the next page only,
        # so a reload shows the page without it and creates nothing
        session = request.scope.get("session")
        if isinstance(session, dict):
            expires = None if done.expires_at is None else done.expires_at.isoformat()
            session[_NEW_TOKEN] = {"token": done.token, "scopes": list(done.scopes), "expires_at": expires,
                                   "account": data.get("name", "").strip()}
        return redirect("/admin#newtoken-h", f"Token {done.prefix} created.", "success", request)
