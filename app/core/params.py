"""What every route's parameters must satisfy before a handler sees them.

Integers: every index, size and version is stored as a signed 64-bit integer (SQLite's INTEGER,
PostgreSQL's BIGINT). A larger number in a URL would reach the database and fail there (SQLite
raises ``OverflowError``, PostgreSQL a data error), so every ``int`` path or query parameter
declares the bound (:data:`PathIndex`, :data:`QueryIndex`, or ``le=MAX_INT``) and Litestar answers
400 before the handler runs; ``tests/app/core/test_http_errors.py`` checks that no route omits it.

Text: no name, run, model or filter holds a NUL character, and PostgreSQL cannot store one (SQLite
can). :class:`UrlTextGuard` refuses a NUL anywhere in the path or the query with 400 on every route
and either database. NUL in a body reaching PostgreSQL is refused by ``app.core.problems`` (its data
error is a 400).
"""

from __future__ import annotations

from typing import Annotated

from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.middleware import ASGIMiddleware
from litestar.params import PathParameter, QueryParameter
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["MAX_INT", "PathIndex", "QueryIndex", "UrlTextGuard"]

MAX_INT = (1 << 63) - 1

PathIndex = Annotated[int, PathParameter(ge=0, le=MAX_INT)]
"""A non-negative integer path segment (an index, a size, a version)."""

QueryIndex = Annotated[int | None, QueryParameter(required=False, ge=0, le=MAX_INT)]
"""An optional non-negative integer query parameter."""


class UrlTextGuard(ASGIMiddleware):
    """400 for a NUL in the request's path or query string, on every routed request."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            raise ClientException("the URL holds a NUL character, which no name, value or filter may contain")
        await next_app(scope, receive, send)
