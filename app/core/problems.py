"""Every error the public API answers is an RFC 9457 problem detail (``application/problem+json``).

Auditors script against this API, so a bad request must say what was wrong, in one shape, with a
4xx status: a 5xx would read as "the log is down". The ledger's own errors map by meaning:
``NotFound`` (no such entry, size, tile or hash) is 404; a malformed proof or entry is 400; any
other ``LedgerError`` (storage, configuration) is 503, the log being unable to answer right now.
Litestar's own exceptions (validation of query and path parameters, unknown routes, wrong
methods) keep their status and gain the same shape.

A 5xx never carries the exception's text: a database error's message holds the SQL, its bound
parameters and the driver's words, none of which is the client's business. The body gives the
request id instead (also in ``X-Request-ID``) and the server log has the whole error under it.

A value the database refuses as data (PostgreSQL's class 22 "data exception", SQLAlchemy's
``DataError``: text holding NUL, a number beyond its column) came from the request, whatever
module stored it: that is the client's 400, not an outage, on every route at once.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DataError, SQLAlchemyError

from ledger.errors import EntryError, LedgerError, NotFound, ProofError, StorageError

from .errors import AppError, Misconfigured, Unavailable

__all__ = ["PROBLEM_JSON", "classify", "client_detail", "exception_handlers", "problem", "request_id"]

PROBLEM_JSON = "application/problem+json"
UNSTORABLE = ("the request holds a value the database cannot store: text must not contain NUL "
              "characters, and numbers must fit in 64 bits")
_log = logging.getLogger("app")


def problem(status: int, detail: str, headers: dict[str, str] | None = None,
            **extensions: Any) -> Response[dict[str, Any]]:
    """A problem detail with ``type`` about:blank, whose title is the status phrase (RFC 9457 4.2.1)."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase,
                            "status": status, "detail": detail, **extensions}
    return Response(body, status_code=status, media_type=PROBLEM_JSON,
                    headers={**(headers or {}), "Cache-Control": "no-store"})


def request_id() -> str | None:
    """The id ``ObservabilityMiddleware`` bound for the request being answered, if any."""
    rid = structlog.contextvars.get_contextvars().get("request_id")
    return None if rid is None else str(rid)


def _unstorable(exc: BaseException) -> bool:
    """Whether the database refused a value as data, however deep the translation wrapped it."""
    seen: BaseException | None = exc
    for _ in range(8):  # StorageError from DataError from psycopg's DataError, at most
        if seen is None:
            return False
        if isinstance(seen, DataError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify(exc: BaseException) -> tuple[int, str]:
    """The status an exception is answered with and the detail a client may read.

    The detail of a 5xx is generic: the caller logs the exception itself."""
    if isinstance(exc, HTTPException):
        if exc.status_code >= 500:
            return exc.status_code, "the server failed to answer"
        return exc.status_code, str(exc.detail or HTTPStatus(exc.status_code).phrase)
    if isinstance(exc, AppError):
        if _unstorable(exc):
            return 400, UNSTORABLE
        if isinstance(exc, Unavailable):
            return 503, "the log's database cannot answer right now"
        if isinstance(exc, Misconfigured):  # as the ledger's ConfigError
            return 503, "the log cannot answer right now"
        return exc.status, (str(exc) if exc.status < 500 else "internal server error")
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, ProofError | EntryError):
        return 400, str(exc)
    if isinstance(exc, StorageError | SQLAlchemyError):
        if _unstorable(exc):
            return 400, UNSTORABLE
        return 503, "the log's database cannot answer right now"
    if isinstance(exc, LedgerError):
        return 503, "the log cannot answer right now"
    return 500, "internal server error"


def client_detail(exc: BaseException) -> str:
    """What a client may read of an error a handler caught and shows itself (a portal page's
    message): the message of a refusal, the generic detail of a failure inside."""
    if isinstance(exc, LedgerError | SQLAlchemyError | HTTPException | AppError):
        return classify(exc)[1]
    return str(exc)


def _answer(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    status, detail = classify(exc)
    rid = request_id()
    if status < 500:
        if isinstance(exc, HTTPException):  # the exception's headers survive (a 401's challenge)
            extra = {"errors": exc.extra} if isinstance(exc.extra, list) and exc.extra else {}
            return problem(status, detail, headers=dict(exc.headers or {}), **extra)
        if detail == UNSTORABLE:
            _log.info("refused an unstorable value (request %s): %s", rid, exc)
        extensions = getattr(exc, "extensions", None) if isinstance(exc, AppError) else None
        return problem(status, detail, **(extensions or {}))  # a refusal's numbers (a job's budget)
    if isinstance(exc, LedgerError | SQLAlchemyError | Unavailable | Misconfigured):
        _log.warning("log unavailable (request %s): %s: %s", rid, type(exc).__name__, exc)
    else:
        _log.error("server error (request %s)", rid, exc_info=exc)
    ids = {} if rid is None else {"request_id": rid}
    return problem(status, f"{detail}; the server log has the details under this request id"
                   if rid else detail, **ids)


def exception_handlers() -> ExceptionHandlersMap:
    """The handlers ``create_app`` installs: one for everything, through :func:`classify`."""
    return {Exception: _answer}
