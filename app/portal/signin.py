"""Sign-in, TOTP enrolment and the account page, over ``app.auth``'s sessions.

The portal only draws the forms: checking passwords and codes, the session and its expiry are
``app.auth``'s. The sign-in form posts to ``/auth/login``, which redirects back here with
``?error=invalid|throttled`` on failure; an expired session comes here with
``error=expired`` (see ``app.portal.errors``) and the page it was on as ``next``. The code field
is always on the form and a missing code reads like a wrong password, so the page never tells
whether a password was right or which accounts have a second factor.
Enrolment calls ``app.auth.totp`` (``begin``, ``confirm``, ``pending``) so it works without
JavaScript: the otpauth URI is shown as text, as a link and as a QR code (inline SVG drawn on the
server), and a refused first code shows the same pending secret again to retry with.
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
    "invalid": ("error", "The account name, password or one-time code is not right. Accounts with "
                         "a second factor need the 6-digit code from the authenticator app too. "
                         "Try again."),
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
        # an old link's ``totp_required`` reads as ``invalid``: the same words for every failure
        category, message = MESSAGES.get("invalid" if error == "totp_required" else error or "", ("", None))
        return page(request, "sign_in.html", title="Sign in", next=safe_next(next), message=message,
                    category=category)

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
        return page(request, "account.html", account=account, secret=secret, otpauth_uri=uri,
                    qr_svg=totp.qr_svg(uri))

    @post("/account/totp/confirm", guards=[_any_signed_in])
    async def confirm(self, request: Req, data: Form) -> Template | Redirect:
        """Confirm enrolment with the first code; sign-in asks for a code from now on."""
        account = await _account(request)
        try:
            await totp.confirm(db_of(request), log_of(request), keyring_of(request), account,
                               data.get("code", "").strip(), by=actor_of(request))
        except (AppError, LedgerError) as e:
            still = await totp.pending(db_of(request), keyring_of(request), account)
            if still is None:
                return page(request, "account.html", status_code=400, account=account,
                            error=f"The code was not accepted: {client_detail(e)}.")
            secret, uri = still
            return page(request, "account.html", status_code=400, account=account, secret=secret,
                        otpauth_uri=uri, qr_svg=totp.qr_svg(uri),
                        error="The code was not accepted: it is not the current code for this secret. "
                              "Keep the same entry in your authenticator app (the secret below is "
                              "unchanged), check the phone's clock, and enter the code it shows now.")
        return redirect("/account", "Second factor enrolled: sign-in now asks for a code.", "success",
                        request)
