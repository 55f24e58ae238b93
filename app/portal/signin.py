"""Sign-in, TOTP enrolment and the account page, over ``app.auth``'s sessions.

The portal only draws the forms: checking passwords and codes, the session and its expiry are
``app.auth``'s. The sign-in form posts to ``/auth/login``, which redirects back here with
``?error=invalid|totp_required|throttled`` on failure; an expired session comes here with
``error=expired`` (see ``app.portal.errors``) and the page it was on as ``next``.
Enrolment calls ``app.auth.totp`` (``begin``, ``confirm``) so it works without JavaScript.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from ledger.errors import LedgerError

from ..accounts import get_account
from ..auth import totp
from ..core.deps import keyring_of
from ..core.errors import AppError
from ..core.problems import client_detail
from .web import Conn, Req, actor_of, db_of, log_of, page, redirect, resolve_viewer, viewer

__all__ = ["SignInController", "safe_next"]

Text = Annotated[str | None, QueryParameter(required=False)]
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
MESSAGES = {
    "expired": ("info", "Your session has ended; please sign in again."),
    "invalid": ("error", "The account name, password or one-time code is not right. Try again."),
    "totp_required": ("error", "This account has a second factor: enter the 6-digit code from your "
                               "authenticator app."),
    "throttled": ("error", "Too many failed sign-ins for this account; wait a minute and try "
                           "again."),
}


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def _any_signed_in(connection: Conn, _: Any) -> None:
    """Guard: signed in, second factor or not (enrolment must stay reachable)."""
    from litestar.exceptions import NotAuthorizedException

    if await resolve_viewer(connection) is None:
        raise NotAuthorizedException("sign in to use the portal")


_any_signed_in.permission = {"login": True, "enrolment": True}  # type: ignore[attr-defined]


async def _account(request: Req) -> Any:
    who = viewer(request)
    assert who is not None  # the guard saw to it
    return await get_account(db_of(request), who.account)


class SignInController(Controller):
    path = "/"

    @get("/login", opt={"public": True})
    async def sign_in(self, request: Req, next: Text = None, error: Text = None) -> Template | Redirect:  # noqa: A002
        """The sign-in form (already signed in: straight on to ``next``)."""
        if viewer(request) is not None and error != "expired":
            return Redirect(safe_next(next), status_code=303)
        category, message = MESSAGES.get(error or "", ("", None))
        return page(request, "sign_in.html", title="Sign in", next=safe_next(next), message=message,
                    category=category, ask_code=error == "totp_required")

    @get("/account", guards=[_any_signed_in])
    async def account(self, request: Req) -> Template:
        """The signed-in account: role and second factor."""
        return page(request, "account.html", title="Your account", account=await _account(request))

    @post("/account/totp", guards=[_any_signed_in])
    async def enrol(self, request: Req) -> Template:
        """Start enrolling a second factor: the secret and otpauth URI, shown once."""
        account = await _account(request)
        try:
            secret, uri = await totp.begin(db_of(request), keyring_of(request), account)
        except (AppError, LedgerError) as e:
            return page(request, "account.html", status_code=400, account=account, error=client_detail(e))
        return page(request, "account.html", account=account, secret=secret, otpauth_uri=uri)

    @post("/account/totp/confirm", guards=[_any_signed_in])
    async def confirm(self, request: Req, data: Form) -> Template | Redirect:
        """Confirm enrolment with the first code; sign-in asks for a code from now on."""
        account = await _account(request)
        try:
            await totp.confirm(db_of(request), log_of(request), keyring_of(request), account,
                               data.get("code", "").strip(), by=actor_of(request))
        except (AppError, LedgerError) as e:
            return page(request, "account.html", status_code=400, account=account,
                        error=f"The code was not accepted: {client_detail(e)}. "
                              "Start again if the secret is lost.")
        return redirect("/account", "Second factor enrolled: sign-in now asks for a code.", "success",
                        request)
