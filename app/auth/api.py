"""Sign-in, sign-out and second-factor enrolment for the portal: ``/auth/...``.

- ``POST /auth/login`` (form: ``username``, ``password``, ``totp`` when enrolled, ``next``; the
  CSRF token as ``_csrf_token`` or ``X-CSRFToken``): with ``Accept: application/json`` answers
  JSON (200, or a 401/429 problem detail); otherwise a 303 redirect, to ``next`` (a local path)
  on success and to ``/login?error=invalid|throttled&next=...`` on failure.
  A code is required for every account with a confirmed factor. A right password without the
  code (or with a wrong one) gets exactly the answer a wrong password gets, and counts as a
  failed sign-in like one: nothing tells a guesser that a password was right, nor which accounts
  have a factor (the sign-in page always offers the code field). Admins and overseers without one
  may sign in, flagged ``needs_totp_enrolment``: the portal sends them to enrolment and the
  guards grant them nothing else until they confirm (we chose this over refusing sign-in, which
  would lock out the first admin, who can only enrol once signed in).
- ``GET /auth/login``: a browser (``Accept: text/html``) is sent to the portal's sign-in page
  (``/login``, keeping a local ``next``); anyone else gets the 405 problem detail as before.
- ``POST /auth/logout``: ends the session (JSON 200, or 303 to ``/login``).
- ``GET /auth/session``: who is signed in, and the CSRF token for scripts and htmx.
- ``POST /auth/totp/enroll`` -> ``{secret, otpauth_uri}`` once; ``POST /auth/totp/confirm``
  (form: ``code``) makes the factor required (``account.totp_enrolled`` on the log).

Failed sign-ins are counted per account name and client address (run-time setting
``login_failures_per_minute``) and per account name from any address
(``account_login_failures_per_minute``, higher); over either, 429 with ``Retry-After``, even with
the right password (:class:`app.auth.throttle.LoginThrottle` says why the two). The client address
is the connection's, or a trusted proxy's ``X-Forwarded-For`` (``rlhf-audit serve
--trusted-proxies``): a forwarded address from anyone else is ignored.
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import MethodNotAllowedException, NotAuthorizedException
from litestar.params import Body
from litestar.response import Redirect
from litestar.utils.scope.state import ScopeState

from ..accounts import get_account, verify_password
from ..core.database import Database

# Litestar reads the handlers' annotations at run time: these are real imports.
from ..core.deps import CallerDep, DbDep, KeyringDep, LogDep, PrincipalDep, SettingsDep
from ..core.keyring import Keyring
from ..core.roles import TOTP_ROLES
from .principal import current_principal, enrolment_allowed
from .sessions import rotate
from .throttle import LoginThrottle, too_many
from .totp import begin, confirm, verify

__all__ = ["AuthController", "LoginForm", "SessionInfo", "TotpCode", "TotpEnrolment"]

Req = Request[Any, Any, Any]
_NO_STORE = {"Cache-Control": "no-store"}
_INVALID = ("wrong account name, password or code (an account with a second factor needs its "
            "current code as 'totp')")


class LoginForm(msgspec.Struct):
    username: Annotated[str, msgspec.Meta(max_length=64)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]
    totp: Annotated[str, msgspec.Meta(max_length=16)] = ""
    next: Annotated[str, msgspec.Meta(max_length=2000)] = "/"


class TotpCode(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(max_length=16)]


class SessionInfo(msgspec.Struct):
    authenticated: bool
    csrf_token: str
    account: str | None = None
    role: str | None = None
    via: str | None = None
    needs_totp_enrolment: bool = False


class TotpEnrolment(msgspec.Struct):
    secret: str
    otpauth_uri: str


def _wants_json(request: Req) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _local(path: str) -> str:
    """``next`` only ever leads within this site (no open redirect)."""
    if path.startswith("/") and not path.startswith(("//", "/\\")) and "\n" not in path and "\r" not in path:
        return path
    return "/"


def _failures(request: Req) -> LoginThrottle:
    state = request.app.state
    counter = state.get("login_failures")
    if counter is None:
        counter = state["login_failures"] = LoginThrottle()
    return counter  # type: ignore[no-any-return]


def _csrf(request: Req) -> str:
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


async def _check_credentials(db: Database, keyring: Keyring, form: LoginForm) -> str | None:
    """None when the name, password and (if enrolled) code are right; else ``"invalid"``.

    A missing code is as ``"invalid"`` as a wrong password: a distinct answer would confirm a
    guessed password (issue 15)."""
    if not await verify_password(db, form.username, form.password):
        return "invalid"
    account = await get_account(db, form.username)
    if account.totp_enrolled and not (form.totp and await verify(db, keyring, account.id, form.totp)):
        return "invalid"
    return None


class AuthController(Controller):
    path = "/auth"
    tags = ["portal sign-in"]

    @post("/login", opt={"public": True}, status_code=200)
    async def login(
        self, request: Req, db: DbDep, keyring: KeyringDep, settings: SettingsDep,
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Sign in with an account name, password and (once enrolled) a TOTP code."""
        as_json = _wants_json(request)
        client = request.client.host if request.client else "unknown"
        failures = _failures(request)
        held = failures.retry_after(data.username, client, settings["login_failures_per_minute"],
                                    settings["account_login_failures_per_minute"])
        error = "throttled" if held is not None else await _check_credentials(db, keyring, data)
        if error == "invalid":
            failures.failed(data.username, client)
        if error is not None:
            if not as_json:
                return Redirect(f"/login?error={error}&next={quote(_local(data.next), safe='/')}",
                                status_code=303, headers=_NO_STORE)
            if held is not None:
                what, wait = held
                raise too_many("too many failed sign-ins for this account"
                               + (" from this address" if what == "address" else ""), wait)
            raise NotAuthorizedException(_INVALID)
        failures.succeeded(data.username, client)
        account = await get_account(db, data.username)
        await rotate(request)
        now = time.time()
        request.set_session({"aid": account.id, "name": account.name, "pw": account.password_tag,
                             "iat": now, "seen": now})
        needs = account.role in TOTP_ROLES and not account.totp_enrolled
        if not as_json:
            return Redirect(_local(data.next), status_code=303, headers=_NO_STORE)
        return Response({"account": account.name, "role": account.role, "needs_totp_enrolment": needs},
                        headers=_NO_STORE)

    @get("/login", opt={"public": True}, include_in_schema=False)  # a browser convenience, not API
    async def login_page(self, request: Req) -> Response[Any]:
        """Browsers asking for the sign-in URL get the portal's sign-in page; scripts the 405."""
        if "text/html" not in request.headers.get("accept", ""):
            raise MethodNotAllowedException(headers={"Allow": "OPTIONS, POST"})
        wanted = _local(request.query_params.get("next") or "/")
        target = "/login" if wanted == "/" else f"/login?next={quote(wanted, safe='/')}"
        return Redirect(target, status_code=303, headers=_NO_STORE)

    @post("/logout", opt={"public": True}, status_code=200)
    async def logout(self, request: Req) -> Response[Any]:
        """End the portal session (if any)."""
        request.scope["session"] = {}  # type: ignore[typeddict-unknown-key]
        if not _wants_json(request):
            return Redirect("/login", status_code=303, headers=_NO_STORE)
        return Response({"signed_out": True}, headers=_NO_STORE)

    @get("/session", opt={"public": True})
    async def session(self, request: Req) -> Response[SessionInfo]:
        """Who is signed in, and the CSRF token to send with state-changing requests."""
        p = await current_principal(request)
        info = SessionInfo(authenticated=False, csrf_token=_csrf(request)) if p is None else SessionInfo(
            True, _csrf(request), p.account, p.role, p.via, p.needs_totp_enrolment)
        return Response(info, headers=_NO_STORE)

    @post("/totp/enroll", guards=[enrolment_allowed], status_code=200)
    async def totp_enroll(self, db: DbDep, keyring: KeyringDep,
                          principal: PrincipalDep) -> Response[TotpEnrolment]:
        """Start enrolling a second factor: the secret and otpauth:// URI, shown this once."""
        account = await get_account(db, principal.account)
        secret, uri = await begin(db, keyring, account)
        return Response(TotpEnrolment(secret, uri), headers=_NO_STORE)

    @post("/totp/confirm", guards=[enrolment_allowed], status_code=200)
    async def totp_confirm(
        self, db: DbDep, log: LogDep, keyring: KeyringDep, principal: PrincipalDep, caller: CallerDep,
        data: Annotated[TotpCode, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> dict[str, bool]:
        """Confirm enrolment with a first code; from now on sign-in asks for one."""
        account = await get_account(db, principal.account)
        await confirm(db, log, keyring, account, data.code, by=caller)
        return {"totp_enrolled": True}


