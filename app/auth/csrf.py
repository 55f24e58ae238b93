"""CSRF protection for cookie-authenticated requests, and the sound exemption for the API.

Litestar's :class:`CSRFMiddleware` (double-submit: the ``csrftoken`` cookie, and the same token
in the ``X-CSRFToken`` header or the ``_csrf_token`` form field) checks every POST, PUT, PATCH
and DELETE, except those that cannot ride on a browser's ambient credentials:

- requests with ``Authorization: Bearer ...``: a cross-site page cannot make a browser add that
  header (CORS preflight), and :func:`app.auth.current_principal` then uses the token alone,
  never the session cookie that may come along;
- requests without a session cookie: they carry no credential a forger could borrow; nothing
  they reach is authenticated. Sign-in (``/auth/login``) is still checked, so nobody can sign a
  victim's browser into the forger's account.

Safe requests pass through the middleware too, which sets the cookie and puts the token in the
scope where templates find it (``csrf_input``, ``csrf_token()``), except machine paths (the
public log, metrics, probes, schema, static files, and Bearer API calls): their responses stay
cookie-free and cacheable.
"""

from __future__ import annotations

from litestar.config.csrf import CSRFConfig
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from ..core.settings import Settings
from .keys import csrf_secret
from .sessions import SESSION_COOKIE
from .throttle import SAFE_METHODS

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "CSRFGate", "exempt"]

CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
LOGIN_PATH = "/auth/login"
_MACHINE = ("/log/", "/metrics", "/healthz", "/readyz", "/schema", "/static/")


def _cookies(scope: Scope) -> bytes:
    """Every Cookie header (HTTP/2 may send several), joined: no cookie can hide in a second one."""
    return b";".join(v for k, v in scope.get("headers") or [] if k == b"cookie")


def _has_cookie(cookie_header: bytes, name: str) -> bool:
    for part in cookie_header.split(b";"):
        key, _, value = part.strip().partition(b"=")
        if key.decode("latin-1") == name and value and value != b"null":
            return True
    return False


def _bearer(scope: Scope) -> bool:
    """An Authorization header is present (current_principal then ignores the session cookie)."""
    return any(k == b"authorization" and v[:7].lower() == b"bearer " for k, v in scope.get("headers") or [])


def exempt(scope: Scope) -> bool:
    """Whether an unsafe request may skip the CSRF check (see the module docstring)."""
    if _bearer(scope):
        return True
    return not _has_cookie(_cookies(scope), SESSION_COOKIE) and scope["path"] != LOGIN_PATH


class CSRFGate:
    """ASGI middleware: Litestar's CSRF check on the requests that need it; ``settings`` (the
    app's, handed in by ``create_app``) say whether the cookie is Secure."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self._inner: CSRFMiddleware | None = None

    def _middleware(self, scope: Scope) -> CSRFMiddleware:
        if self._inner is None:
            config = CSRFConfig(secret=csrf_secret(scope["app"].state.keyring), cookie_name=CSRF_COOKIE,
                                header_name=CSRF_HEADER, cookie_samesite="lax",
                                cookie_secure=self.settings.secure_cookies)
            self._inner = CSRFMiddleware(self.app, config)
        return self._inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in SAFE_METHODS:
            if scope["path"].startswith(_MACHINE) or _bearer(scope):
                await self.app(scope, receive, send)
                return
            _drop_stale_token(scope, self._middleware(scope))
        elif exempt(scope):
            await self.app(scope, receive, send)
            return
        await self._middleware(scope)(scope, receive, send)


def _drop_stale_token(scope: Scope, middleware: CSRFMiddleware) -> None:
    """Forget a CSRF cookie signed under another secret (the records key was rotated).

    Litestar reuses any cookie it is sent on safe requests, so every form of that browser would
    then fail with 403 until the cookie expired; dropped here, the page gets a fresh token.
    """
    cookies = scope["litestar_app"].request_class(scope=scope).cookies  # parsed once, kept in scope
    token = cookies.get(CSRF_COOKIE)
    if token and middleware._decode_csrf_token(token) is None:
        ScopeState.from_scope(scope).cookies = {k: v for k, v in cookies.items() if k != CSRF_COOKIE}
