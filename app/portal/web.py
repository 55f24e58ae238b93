"""What every portal page shares: who is signed in, flash messages, rendering, role checks.

The portal has no sessions or accounts of its own: it asks ``app.auth`` (sessions, TOTP, CSRF)
who is signed in (:func:`resolve_viewer`, once per request, in the router's ``before_request``),
and the domain services (jobs, oversight, datasets, compliance, evidence) to do the work. Pages
are plain server-rendered HTML; htmx only refreshes parts of them, so every read page works
without JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect, Template

from ledger.log import Log

from ..core import deps
from ..core.roles import ADMINS, OVERSIGHT_ROLES
from ..events.recording import Actor

if TYPE_CHECKING:
    from ..core.database import Database
    from ..jobs.queue import Queue

__all__ = [
    "OVERSIGHT_ROLES",
    "NeedsEnrolment",
    "Viewer",
    "before_request",
    "resolve_viewer",
    "actor_of",
    "db_of",
    "flash",
    "get_flashes",
    "log_of",
    "page",
    "queue_of",
    "redirect",
    "role_guard",
    "sign_in_url",
    "signed_in",
    "viewer",
]

Req = Request[Any, Any, Any]
Conn = ASGIConnection[Any, Any, Any, Any]
NAV = (("/", "Dashboard"), ("/runs", "Training runs"), ("/datasets", "Datasets"),
       ("/explorer", "Log explorer"), ("/reports", "Reports & evidence"), ("/admin", "Administration"))


_CACHE = "rlhf_portal.viewer"


class NeedsEnrolment(PermissionDeniedException):
    """An admin or overseer signed in without a second factor: only enrolment is open to them."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person as the pages need them (the log shows a pseudonym instead)."""

    account: str
    role: str
    needs_totp: bool = False

    def may(self, *roles: str) -> bool:
        return self.role in roles and not self.needs_totp


async def resolve_viewer(connection: Conn) -> Viewer | None:
    """Ask ``app.auth`` who is signed in (session, or a Bearer token); cached per request."""
    if _CACHE in connection.scope:
        return connection.scope[_CACHE]  # type: ignore[literal-required,no-any-return]
    from app.auth import current_principal

    principal = await current_principal(connection)
    found = None if principal is None else Viewer(
        principal.account, principal.role, bool(getattr(principal, "needs_totp_enrolment", False)))
    connection.scope[_CACHE] = found  # type: ignore[literal-required]
    return found


def viewer(connection: Conn) -> Viewer | None:
    """The signed-in account as resolved for this request (see :func:`resolve_viewer`), or None."""
    return connection.scope.get(_CACHE)  # type: ignore[return-value]


async def before_request(request: Req) -> None:
    """The portal router's hook: resolve who is signed in before any page renders."""
    await resolve_viewer(request)


async def signed_in(connection: Conn, _: BaseRouteHandler) -> None:
    """Guard: a signed-in account, else 401 (which the error pages turn into the sign-in page);
    an admin or overseer still without a second factor is sent to enrol one."""
    who = await resolve_viewer(connection)
    if who is None:
        raise NotAuthorizedException("sign in to use the portal")
    if who.needs_totp:
        raise NeedsEnrolment(f"{who.role} accounts need a second factor: enrol one first")


signed_in.permission = {"login": True}  # type: ignore[attr-defined]  # read by app.auth.declared_permission


def role_guard(*roles: str) -> Any:
    """Guard factory: signed in, with one of ``roles``, else 403."""

    async def guard(connection: Conn, handler: BaseRouteHandler) -> None:
        await signed_in(connection, handler)
        who = viewer(connection)
        if who is None or who.role not in roles:
            raise PermissionDeniedException(
                f"only {' or '.join(roles)} accounts may do this; you are signed in as "
                f"{'an' if who and who.role[0] in 'aeiou' else 'a'} {who.role if who else '-'}")

    guard.permission = {"roles": tuple(roles)}  # type: ignore[attr-defined]
    return guard


def actor_of(connection: Conn) -> Actor:
    """The signed-in account as the log shows it: its pseudonym (keyed off-log) and role."""
    from ..core.deps import keyring_of

    who = viewer(connection)
    if who is None:
        raise NotAuthorizedException("sign in to use the portal")
    return Actor.of_account(keyring_of(connection).pseudonymizer, who.account, who.role)  # type: ignore[arg-type]


def queue_of(connection: Conn) -> Queue:
    """The job queue the server uses (``app.state.queue``, set up by ``app.jobs``)."""
    from ..core.deps import queue_of as the_queue

    return the_queue(connection)  # type: ignore[arg-type]


def log_of(connection: Conn) -> Log:
    """The server's log (pages hold a request, not declared dependencies)."""
    return deps.log_of(connection)


def db_of(connection: Conn) -> Database:
    """The server's database: the application's own tables (accounts, jobs, the event index...)."""
    return deps.db_of(connection)


def _session(connection: Conn) -> dict[str, Any] | None:
    session = connection.scope.get("session")
    return session if isinstance(session, dict) else None


def flash(connection: Conn, message: str, category: str = "info") -> None:
    """A message shown on the next page rendered in this session; dropped without a signed-in
    session (a token caller must not get a session cookie just for a message)."""
    session = _session(connection)
    if session:
        session.setdefault("_messages", []).append({"message": message, "category": category})


def get_flashes(connection: Conn) -> list[dict[str, str]]:
    session = _session(connection)
    if not session:
        return []
    messages: list[dict[str, str]] = session.pop("_messages", [])
    return messages


def page(request: Req, template: str, status_code: int = 200, **context: Any) -> Template:
    """Render ``template`` with what the layout needs: the viewer, the navigation, flashes."""
    who = viewer(request)
    base: Mapping[str, Any] = {
        "viewer": who, "path": request.url.path,
        "nav": [(href, label) for href, label in NAV if who and (href != "/admin" or who.may(*ADMINS))],
        "flashes": get_flashes(request), "is_htmx": request.headers.get("hx-request") == "true",
    }
    return Template(template_name=template, context={**base, **context}, status_code=status_code,
                    headers={"Cache-Control": "no-store"})


def redirect(path: str, message: str | None = None, category: str = "info",
             request: Conn | None = None) -> Redirect:
    """303 to ``path`` with an optional flash message (POST-redirect-GET)."""
    if message and request is not None:
        flash(request, message, category)
    return Redirect(path=path, status_code=303)


def sign_in_url(next_path: str, reason: str | None = None) -> str:
    url = "/login?next=" + quote(next_path, safe="/")
    return url + ("&error=" + quote(reason) if reason else "")
