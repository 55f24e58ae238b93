"""Error pages for people: HTML for browser requests, problem details for everyone else.

The API (``/api/``, ``/log/``) answers RFC 9457 JSON whatever the caller accepts: scripts rely on
its one shape. Any other request from a browser (``Accept: text/html``) gets a readable page with
the same status and message; a 401 there is the sign-in page (with ``next`` so people land where
they were going), which is also how an expired session looks.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import LedgerError

from ..core.errors import Misconfigured, Unavailable
from ..core.problems import classify, request_id
from .web import NeedsEnrolment, flash, page, redirect, sign_in_url

__all__ = ["API_PREFIXES", "error_pages", "wants_html"]

API_PREFIXES = ("/api/", "/log/", "/healthz", "/readyz", "/metrics", "/schema", "/static/", "/auth/")
Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def wants_html(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    if path.startswith(API_PREFIXES):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or request.headers.get("hx-request") == "true"


def _status_of(exc: Exception) -> tuple[int, str]:
    """The API's status and detail (``app.core.problems.classify``), worded for people on a 5xx."""
    status, detail = classify(exc)
    if status >= 500:
        rid = request_id()
        ref = f" (request {rid})" if rid else ""
        if isinstance(exc, HTTPException):
            return status, f"the server failed to answer; try again, and tell an administrator{ref}"
        if isinstance(exc, LedgerError | SQLAlchemyError | Unavailable | Misconfigured):
            return status, f"{detail}; try again, and tell an administrator if it lasts{ref}"
        return status, f"something went wrong on the server; the error has been logged{ref}"
    return status, detail


def _page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status, detail = _status_of(exc)
    if isinstance(exc, NeedsEnrolment):
        flash(request, detail, "info")
        return redirect("/account")
    if status == 401:
        reason = "expired" if request.cookies.get("rlhf_session") else None
        if request.headers.get("hx-request") == "true":  # htmx: reload the whole page into sign-in
            target = sign_in_url(request.url.path, reason)
            return Response(b"", status_code=200, headers={"HX-Redirect": target})
        return redirect(sign_in_url(request.url.path, reason))
    title = HTTPStatus(status).phrase
    if detail.strip().lower() == title.lower():  # Litestar's own (no route): say it once, in words
        detail = _PLAIN.get(status, "").format(path=request.url.path[:200])
    return page(request, "error.html", status_code=status, status=status, title=title, detail=detail)


_PLAIN = {404: "There is no page at {path}: check the address, or start from the dashboard.",
          405: "{path} does not answer that kind of request.",
          400: "The request for {path} could not be understood."}


def error_pages(handlers: ExceptionHandlersMap) -> ExceptionHandlersMap:
    """``handlers`` (the API's problem details), each answering HTML pages to browsers instead."""

    def wrap(inner: Handler) -> Handler:
        def handle(request: Request[Any, Any, Any], exc: Any) -> Response[Any]:
            if wants_html(request):
                inner(request, exc)  # keeps the API handler's logging of server errors
                return _page(request, exc)
            return inner(request, exc)

        return handle

    return {key: wrap(h) for key, h in handlers.items()}
